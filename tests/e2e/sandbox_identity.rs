//! Sandbox identities on Docker (push bootstrap), end to end: `gatehouse-backend` on the
//! real engine with the in-sandbox agent, sandboxes in host network mode (so they reach
//! the gateway on 127.0.0.1), and a gateway with `[sandbox_identity]` whose signing keys
//! live in its SQLite governance store.
//!
//! A process inside the sandbox reads `$GATEHOUSE_SANDBOX_TOKEN_FILE` and calls the
//! gateway with it (raw HTTP over busybox `nc`): it lists sandboxes (only itself), reads
//! and renews itself, gets 404 for another sandbox, and refreshes its token. From outside,
//! forged tokens (expired, tampered, wrong `aud`, `alg` swapped) are refused with 401, the
//! token refreshes until the sandbox is deleted and then no longer, and it appears in no
//! create response, metadata, `docker inspect` environment, log or audit event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::send;
use gatehouse_tests::docker::docker;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::principals::keyed as keyed_client;
use gatehouse_tests::sandbox::{create, script_body, wait_state};
use gatehouse_tests::stacks::ADMIN_KEY;
use gatehouse_tests::{test_image, wait_for, Backend, BackendOptions};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

const TYP: &str = "gatehouse-sandbox+jwt";

/// The script the sandbox runs: wait for the token file, then call the gateway as itself.
const SCRIPT: &str = r#"
F="$GATEHOUSE_SANDBOX_TOKEN_FILE"
# Section markers, spelled so that the script (listed in its own metadata) never
# contains them.
M="=""=="
while [ ! -s "$F" ]; do sleep 0.2; done
T=$(cat "$F")
# busybox nc stops reading once its input ends: keep the input open until the gateway
# has answered and closed the connection.
req() {
  { printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nAuthorization: Bearer %s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' \
    "$1" "$2" "$GW_PORT" "$T" "${#3}" "$3"; sleep 2; } | nc 127.0.0.1 "$GW_PORT"
}
LIST=$(req GET /v1/sandboxes "")
echo "$M list"; echo "$LIST"
rest=${LIST#*\"id\":\"}; SELF=${rest%%\"*}
echo "$M self"; req GET "/v1/sandboxes/$SELF" "" | head -1
echo "$M renew"; req POST "/v1/sandboxes/$SELF/renew-expiration" "{\"expiresAt\":\"$RENEW_TO\"}" | head -1
echo "$M other"; req GET "/v1/sandboxes/$OTHER" ""; echo
echo "$M missing"; req GET "/v1/sandboxes/no-such-sandbox" ""; echo
echo "$M refresh"; req POST /auth/sandbox/refresh "" | head -1
echo "$M done"
sleep 600
"#;

struct Stack {
    backend: Backend,
    gw: Gateway,
}

async fn stack() -> Stack {
    let backend = Backend::start(BackendOptions {
        execd: true,
        network_mode: Some("host".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let extra = format!(
        "[[auth.api_keys]]\nname = \"ci-admin\"\nsha256 = \"{}\"\nrole = \"service_admin\"\n\n\
         [sandbox_identity]\nissuer = \"gatehouse-e2e\"\naudience = \"gatehouse-e2e\"\ntoken_minutes = 5\n",
        hex::encode(Sha256::digest(ADMIN_KEY)),
    );
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    Stack { backend, gw }
}

/// The section of the sandbox's output after `=== name`.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out
        .find(&format!("=== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in {out}"));
    let rest = &out[start + name.len() + 5..];
    rest.split("=== ").next().unwrap_or_default()
}

/// The JSON body of a raw HTTP response.
fn body_of(raw: &str) -> Value {
    // The headers hold no braces; the body is the one JSON object.
    let (start, end) = (raw.find('{'), raw.rfind('}'));
    let body = match (start, end) {
        (Some(a), Some(b)) if a < b => &raw[a..=b],
        _ => "",
    };
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {raw}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The gateway's current signing key (from its SQLite store, as an operator could read
/// it): its kid and encoding key.
async fn signing_key(gw: &Gateway) -> (String, EncodingKey) {
    use gatehouse_store::SigningKeyStore;
    let store = gatehouse_store::SqliteStore::open(&gw.dir().join("gatehouse.db"))
        .await
        .unwrap();
    let keys = store.signing_keys(0).await.unwrap();
    let now_ms = i64::try_from(now()).unwrap() * 1000;
    let k = keys
        .iter()
        .rev()
        .find(|k| k.active_ms <= now_ms)
        .expect("an active key");
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&k.seed);
    (k.kid.clone(), EncodingKey::from_ed_der(&der))
}

fn forged(kid: &str, key: &EncodingKey, alg: Algorithm, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    h.typ = Some(TYP.into());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

#[tokio::test]
async fn a_sandbox_calls_the_gateway_as_itself() {
    let st = stack().await;
    let admin = keyed_client(ADMIN_KEY);
    let gw_port = st.gw.url.rsplit(':').next().unwrap().to_owned();

    // Another sandbox of the same backend. In host network mode every agent listens on
    // the host's execd port, so this one ends at once (its id stays) and frees it.
    let other = create(&admin, &st.gw.url, &script_body("exit 0"))
        .await
        .unwrap();
    let other_id = other["id"].as_str().unwrap().to_owned();
    wait_for("the other sandbox to end", Duration::from_secs(60), || {
        let (c, u) = (
            admin.clone(),
            format!("{}/v1/sandboxes/{other_id}", st.gw.url),
        );
        async move {
            let (_, v) = send(&c, "GET", &u, None).await;
            let state = v["status"]["state"].as_str().unwrap_or_default().to_owned();
            (state != "Running" && state != "Pending" && !state.is_empty()).then_some(())
        }
    })
    .await
    .unwrap();
    let renew_to = (chrono::Utc::now() + chrono::Duration::minutes(20))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({
        "image": {"uri": test_image()},
        "entrypoint": ["sh", "-c", SCRIPT],
        "timeout": 600,
        "env": {"GW_PORT": gw_port, "OTHER": other_id, "RENEW_TO": renew_to},
        "metadata": {"project": "identity"},
    });
    let created = create(&admin, &st.gw.url, &body).await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    wait_state(&admin, &st.gw.url, &id, "Running")
        .await
        .unwrap();

    // The agent listens on the backend's host_execd_port, not 44772: the server proxy of
    // port 44772 reaches it there.
    let ping = format!("{}/v1/sandboxes/{id}/proxy/44772/ping", st.backend.url);
    wait_for(
        &format!("200 from GET {ping}"),
        Duration::from_secs(30),
        || {
            let (c, u) = (keyed_client(&st.backend.api_key), ping.clone());
            async move { (c.get(&u).send().await.ok()?.status() == 200).then_some(()) }
        },
    )
    .await
    .unwrap();

    // The token, as the sandbox holds it (the test reads the sandbox's run directory on
    // the host, where the backend wrote it).
    let token_file = st
        .backend
        .config_path
        .parent()
        .unwrap()
        .join("execd")
        .join(&id)
        .join("sandbox-token");
    let token = wait_for("the sandbox token file", Duration::from_secs(30), || {
        let p = token_file.clone();
        async move { std::fs::read_to_string(p).ok().filter(|t| !t.is_empty()) }
    })
    .await
    .unwrap();

    // What the process inside did.
    let logs_url = format!("{}/v1/sandboxes/{id}/diagnostics/logs", st.backend.url);
    let backend = keyed_client(&st.backend.api_key);
    let out = wait_for("the sandbox's calls", Duration::from_secs(60), || {
        let (c, u) = (backend.clone(), logs_url.clone());
        async move {
            let t = c.get(&u).send().await.ok()?.text().await.ok()?;
            t.contains("=== done").then_some(t)
        }
    })
    .await
    .unwrap();
    assert!(
        section(&out, "list").contains("HTTP/"),
        "sandbox output: {out}"
    );
    let list = body_of(section(&out, "list"));
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "a sandbox lists only itself: {list}");
    assert_eq!(list["pagination"]["totalItems"], 1);
    assert!(section(&out, "self").contains(" 200 "), "{out}");
    assert!(section(&out, "renew").contains(" 200 "), "{out}");
    assert!(section(&out, "refresh").contains(" 200 "), "{out}");
    let other_answer = section(&out, "other");
    let missing_answer = section(&out, "missing");
    let status_line = |a: &str| a.trim_start().lines().next().unwrap_or_default().to_owned();
    assert!(
        status_line(other_answer).contains(" 404 "),
        "{other_answer}"
    );
    assert!(
        status_line(missing_answer).contains(" 404 "),
        "{missing_answer}"
    );
    let (o, m) = (body_of(other_answer), body_of(missing_answer));
    assert_eq!(
        o["code"], m["code"],
        "another sandbox looks exactly like a missing one"
    );
    assert_eq!(
        o["message"].as_str().unwrap().replace(&other_id, "ID"),
        m["message"]
            .as_str()
            .unwrap()
            .replace("no-such-sandbox", "ID")
    );

    // The renewal took effect.
    let (_, me) = send(
        &admin,
        "GET",
        &format!("{}/v1/sandboxes/{id}", st.gw.url),
        None,
    )
    .await;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    assert_eq!(at(me["expiresAt"].as_str().unwrap()), at(&renew_to));

    // Forged tokens: 401 in the error shape.
    let (kid, key) = signing_key(&st.gw).await;
    let claims = |aud: &str, exp: u64| json!({"iss": "gatehouse-e2e", "sub": id, "aud": aud, "iat": now(), "exp": exp, "jti": "x"});
    let good = forged(
        &kid,
        &key,
        Algorithm::EdDSA,
        &claims("gatehouse-e2e", now() + 60),
    );
    let expired = forged(
        &kid,
        &key,
        Algorithm::EdDSA,
        &claims("gatehouse-e2e", now() - 5),
    );
    let wrong_aud = forged(
        &kid,
        &key,
        Algorithm::EdDSA,
        &claims("someone-else", now() + 60),
    );
    let jwks: Value = reqwest::get(st.gw.at("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let public = data_encoding::BASE64URL_NOPAD.decode(x.as_bytes()).unwrap();
    let swapped = forged(
        &kid,
        &EncodingKey::from_secret(&public),
        Algorithm::HS256,
        &claims("gatehouse-e2e", now() + 60),
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(parts[1].as_bytes())
            .unwrap(),
    )
    .unwrap();
    payload["sub"] = json!(other_id);
    parts[1] = data_encoding::BASE64URL_NOPAD.encode(payload.to_string().as_bytes());
    let tampered = parts.join(".");
    let bearer = |t: &str| {
        reqwest::Client::new()
            .get(st.gw.at(&format!("/v1/sandboxes/{id}")))
            .bearer_auth(t)
    };
    let (s, _) = gatehouse_tests::api::send_req(bearer(&good)).await;
    assert_eq!(s, 200, "the test's own signature is right");
    for (name, t) in [
        ("expired", &expired),
        ("wrong aud", &wrong_aud),
        ("alg swapped", &swapped),
        ("tampered", &tampered),
    ] {
        let (s, v) = gatehouse_tests::api::send_req(bearer(t)).await;
        assert_eq!(s, 401, "{name}: {v}");
        assert_eq!(v["code"], "GATEWAY::INVALID_SANDBOX_TOKEN", "{name}: {v}");
        assert!(v["message"].is_string(), "{name}");
    }

    // Refresh works while the sandbox exists, and the new token works.
    let refresh = |t: &str| {
        reqwest::Client::new()
            .post(st.gw.at("/auth/sandbox/refresh"))
            .bearer_auth(t)
    };
    let (s, v) = gatehouse_tests::api::send_req(refresh(&token)).await;
    assert_eq!(s, 200, "{v}");
    let fresh = v["token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, token);
    assert_eq!(v["sandboxId"], id.as_str());
    let (s, _) = gatehouse_tests::api::send_req(bearer(&fresh)).await;
    assert_eq!(s, 200);
    // A sandbox may not delete itself (not in the sandbox role).
    let (s, _) = gatehouse_tests::api::send_req(
        reqwest::Client::new()
            .delete(st.gw.at(&format!("/v1/sandboxes/{id}")))
            .bearer_auth(&fresh),
    )
    .await;
    assert_eq!(s, 403);

    // The token is nowhere a user or operator could see it.
    let (_, md) = send(
        &admin,
        "GET",
        &format!("{}/v1/sandboxes/{id}", st.gw.url),
        None,
    )
    .await;
    let inspect = docker(&[
        "inspect",
        &gatehouse_tests::docker::containers_of(&id).unwrap()[0],
    ])
    .unwrap();
    assert!(inspect.contains("GATEHOUSE_SANDBOX_TOKEN_FILE=/run/gatehouse/sandbox-token"));
    for (what, text) in [
        ("create response", created.to_string()),
        ("sandbox read", md.to_string()),
        ("docker inspect", inspect),
        ("backend log", st.backend.log()),
        (
            "gateway log and audit",
            st.gw.settled_log() + &st.gw.audit_raw(),
        ),
    ] {
        for t in [&token, &fresh] {
            assert!(
                !text.contains(t.as_str()),
                "the token appears in the {what}"
            );
        }
    }

    // Deleted: the token no longer refreshes, and reads answer 404.
    let (s, _) = send(
        &admin,
        "DELETE",
        &format!("{}/v1/sandboxes/{id}", st.gw.url),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = gatehouse_tests::api::send_req(refresh(&fresh)).await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["code"], "GATEWAY::SANDBOX_GONE");
    let (s, _) = gatehouse_tests::api::send_req(bearer(&fresh)).await;
    assert_eq!(s, 404);
}
