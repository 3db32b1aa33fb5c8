//! A hostile sandbox page in a real browser (Chromium) while alice is signed in: it cannot
//! set or read the console's cookies, nor call the console's API as her.

use gatehouse_tests::login::login;
use gatehouse_tests::repo_root;
use gatehouse_tests::sandbox::{script_body, wait_state};
use gatehouse_tests::stacks::OidcStack;
use gatehouse_tests::wait_for;
use serde_json::Value;
use std::time::Duration;

/// Serves `/cgi-bin/evil`: a page that sets cookies named like the gateway's (by header
/// and from script), reads `document.cookie`, reads `/auth/me` for the CSRF token and
/// creates a sandbox with it, then reports what worked in `#out`.
const EVIL_SCRIPT: &str = r#"mkdir -p /tmp/www/cgi-bin
cat > /tmp/page.html <<'EOS'
<!doctype html><html><body><pre id="out"></pre><script>
(async () => {
  const r = { origin: self.origin };
  try { document.cookie = 'gatehouse_session=planted-by-js; path=/'; r.cookieWrite = 'ok'; } catch (e) { r.cookieWrite = 'blocked: ' + e.name; }
  try { r.cookieRead = document.cookie; } catch (e) { r.cookieRead = 'blocked: ' + e.name; }
  let csrf = '';
  try { const m = await fetch('/auth/me', { credentials: 'include' }); const t = await m.text(); r.me = m.status + ' ' + t; try { csrf = JSON.parse(t).csrfToken || ''; } catch (e) {} } catch (e) { r.me = 'blocked: ' + e.name; }
  try { const c = await fetch('/v1/sandboxes', { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify({ image: { uri: 'gatehouse/busybox:latest' }, entrypoint: ['sleep', '60'], timeout: 60 }) }); r.create = c.status + ' ' + (await c.text()); } catch (e) { r.create = 'blocked: ' + e.name; }
  try { const l = await fetch('/auth/logout', { method: 'POST', credentials: 'include', headers: { 'x-csrf-token': csrf } }); r.logout = l.status; } catch (e) { r.logout = 'blocked: ' + e.name; }
  const out = document.getElementById('out'); out.textContent = JSON.stringify(r); out.dataset.done = '1';
})();
</script></body></html>
EOS
cat > /tmp/www/cgi-bin/evil <<'EOS'
#!/bin/sh
printf 'Content-Type: text/html\r\nSet-Cookie: gatehouse_session=planted-by-header; Path=/\r\nSet-Cookie: gatehouse_login=planted; Path=/\r\n\r\n'
cat /tmp/page.html
EOS
chmod +x /tmp/www/cgi-bin/evil
exec httpd -f -p 8080 -h /tmp/www"#;

#[tokio::test]
async fn sandbox_page_cannot_touch_the_console_session_in_chromium() {
    let st = OidcStack::start("", "").await.unwrap();
    let alice = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    let me: Value = alice
        .client
        .get(st.gw.at("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrfToken"].as_str().unwrap().to_string();
    let r = alice
        .client
        .post(st.gw.at("/v1/sandboxes"))
        .header("X-CSRF-Token", &csrf)
        .header("Origin", &st.gw.url)
        .json(&script_body(EVIL_SCRIPT))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_state(&alice.client, &st.gw.url, &id, "Running")
        .await
        .unwrap();
    let page = st
        .gw
        .at(&format!("/v1/sandboxes/{id}/proxy/8080/cgi-bin/evil"));
    wait_for("the hostile page", Duration::from_secs(30), || async {
        let r = alice.client.get(&page).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .unwrap();
    let out = tokio::process::Command::new("node")
        .arg(repo_root().join("tests/browser/sandbox_isolation.mjs"))
        .env("GATEWAY_URL", &st.gw.url)
        .env("SESSION", &alice.session_cookie)
        .env("PAGE_URL", &page)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    println!("hostile page in chromium: {report}");
    let p = &report["sandboxPage"];
    assert_eq!(
        p["origin"], "null",
        "the page runs in an opaque origin: {p}"
    );
    let me = p["me"].as_str().unwrap_or_default();
    assert!(
        !me.contains("alice") && !me.contains("csrfToken"),
        "read /auth/me: {me}"
    );
    let create = p["create"].as_str().unwrap_or_default();
    assert!(
        !create.starts_with("202"),
        "created a sandbox as alice: {create}"
    );
    assert!(
        !p["cookieRead"]
            .as_str()
            .unwrap_or_default()
            .contains(&alice.session_cookie),
        "{p}"
    );
    assert_eq!(
        report["gatehouseCookies"],
        serde_json::json!([{"name": "gatehouse_session", "isAlices": true}]),
        "no cookie planted, alice's untouched"
    );
    assert_eq!(
        (report["meStatus"].as_u64(), report["meSubject"].as_str()),
        (Some(200), Some("alice")),
        "alice is still signed in"
    );
    let (_, list) =
        gatehouse_tests::api::send(&alice.client, "GET", &st.gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        list["items"].as_array().map_or(0, Vec::len),
        1,
        "only the hostile sandbox: {list}"
    );
}
