//! Bad input gets the right code and a message, and leaves nothing behind: no container,
//! no record.

use gatehouse_tests::api::send_req;
use gatehouse_tests::docker::docker;
use gatehouse_tests::{test_image, Backend, BackendOptions};
use serde_json::{json, Value};

/// Create bodies the backend must refuse, with the status and code it answers. The cases
/// that reach the engine carry the label `probe`, so leftovers can be found even while
/// other tests run containers on the same engine.
fn bad_creates(probe: &str) -> Vec<(Value, u16, &'static str)> {
    let img = test_image();
    vec![
        (
            json!({"image": {"uri": img}}),
            400,
            "SANDBOX::INVALID_ENTRYPOINT",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": []}),
            400,
            "SANDBOX::INVALID_ENTRYPOINT",
        ),
        (
            json!({"entrypoint": ["sh"]}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "timeout": 59}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "timeout": 3601}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "timeout": 1.5}),
            400,
            "SANDBOX::INVALID_REQUEST_BODY",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"opensandbox.io/team": "x"}}),
            400,
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"-bad": "x"}}),
            400,
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"k": "no spaces"}}),
            400,
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"k": 1}}),
            400,
            "SANDBOX::INVALID_REQUEST_BODY",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "resourceLimits": {"cpu": "-1"}}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "resourceLimits": {"memory": "1XB"}}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "gatehouse/not-there:1"}, "entrypoint": ["sh"], "metadata": {"probe": probe}}),
            400,
            "DOCKER::SANDBOX_IMAGE_PULL_FAILED",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["/no/such/binary"], "metadata": {"probe": probe}}),
            400,
            "DOCKER::INVALID_ENTRYPOINT",
        ),
    ]
}

/// Every bad create gets its code and a message; malformed JSON too; and a failed create
/// leaves no container and no record.
#[tokio::test]
async fn bad_inputs_get_the_right_code_and_leave_nothing_behind() {
    let b = Backend::start(BackendOptions {
        server_extra: "max_sandbox_timeout_seconds = 3600".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = b.client();
    let probe = uuid::Uuid::new_v4().simple().to_string();
    for (body, status, code) in bad_creates(&probe) {
        let (s, v) = send_req(c.post(b.at("/v1/sandboxes")).json(&body)).await;
        assert_eq!(
            (s, v["code"].as_str().unwrap_or("")),
            (status, code),
            "{body} -> {v}"
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let malformed = c
        .post(b.at("/v1/sandboxes"))
        .header("content-type", "application/json")
        .body("{\"image\":");
    let (s, v) = send_req(malformed).await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "SANDBOX::INVALID_REQUEST_BODY");
    let leftovers = docker(&["ps", "-aq", "--filter", &format!("label=probe={probe}")]).unwrap();
    assert_eq!(leftovers, "", "a failed create leaves no container behind");
    let (_, v) = send_req(c.get(b.at("/v1/sandboxes"))).await;
    assert_eq!(v["pagination"]["totalItems"], 0, "and no record");
}
