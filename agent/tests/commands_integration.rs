//! `/command`, `/session`, auth and error shapes over real HTTP against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{texts, Agent, TOKEN};
use serde_json::json;

#[tokio::test]
async fn echo_hi_streams_init_stdout_complete() {
    let a = Agent::start(&[]).await;
    let ev = a.events("/command", json!({"command": "echo hi"})).await;
    assert_eq!(ev[0]["type"], "init");
    assert!(!ev[0]["text"].as_str().unwrap().is_empty());
    assert_eq!(texts(&ev, "stdout"), vec!["hi"]);
    assert_eq!(ev.last().unwrap()["type"], "execution_complete");
    assert!(ev.iter().all(|e| e["timestamp"].as_i64().unwrap() > 0));
}

#[tokio::test]
async fn failing_command_reports_exit_code_in_error_event() {
    let a = Agent::start(&[]).await;
    let ev = a
        .events("/command", json!({"command": "echo oops >&2; exit 3"}))
        .await;
    assert_eq!(texts(&ev, "stderr"), vec!["oops"]);
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["ename"], "CommandExecError");
    assert_eq!(last["error"]["evalue"], "3");
    let id = ev[0]["text"].as_str().unwrap();
    let st: serde_json::Value = a
        .get(&format!("/command/status/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["running"], false);
    assert_eq!(st["exit_code"], 3);
}

/// Poll `/command/{id}/logs?cursor=` until it returns something (or 10 s pass).
async fn poll_logs(a: &Agent, id: &str, cursor: u64) -> (String, u64) {
    for _ in 0..200 {
        let r = a
            .get(&format!("/command/{id}/logs?cursor={cursor}"))
            .send()
            .await
            .unwrap();
        let next: u64 = r.headers()["EXECD-COMMANDS-TAIL-CURSOR"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let text = r.text().await.unwrap();
        if !text.is_empty() {
            return (text, next);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no output");
}

#[tokio::test]
async fn background_logs_tail_with_cursor() {
    let a = Agent::start(&[]).await;
    let ev = a
        .events(
            "/command",
            json!({"command": "echo one; sleep 0.5; echo two", "background": true}),
        )
        .await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["type"], "execution_complete");
    let id = ev[0]["text"].as_str().unwrap().to_owned();
    let (first, cursor) = poll_logs(&a, &id, 0).await;
    assert_eq!((first.as_str(), cursor), ("one\n", 4));
    let (second, next) = poll_logs(&a, &id, cursor).await;
    assert_eq!((second.as_str(), next), ("two\n", 8));
    let all = a
        .get(&format!("/command/{id}/logs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(all, "one\ntwo\n");
    let mut st = serde_json::Value::Null;
    for _ in 0..100 {
        st = a
            .get(&format!("/command/status/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["running"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (st["running"].clone(), st["exit_code"].clone()),
        (json!(false), json!(0))
    );
    assert!(st["finished_at"].is_string());
}

#[tokio::test]
async fn interrupt_kills_the_process_group() {
    let a = Agent::start(&[]).await;
    let ev = a
        .events(
            "/command",
            json!({"command": "sleep 30 & sleep 30", "background": true}),
        )
        .await;
    let id = ev[0]["text"].as_str().unwrap().to_owned();
    let r = a.delete(&format!("/command?id={id}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let st: serde_json::Value = a
        .get(&format!("/command/status/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["running"], false);
    assert_eq!(st["exit_code"], 143);
    let missing = a.delete("/command?id=nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn foreground_timeout_is_enforced() {
    let a = Agent::start(&[]).await;
    let ev = a
        .events("/command", json!({"command": "sleep 10", "timeout": 200}))
        .await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["evalue"], "137");
}

#[tokio::test]
async fn session_keeps_state_between_runs() {
    let a = Agent::start(&[]).await;
    let r: serde_json::Value = a
        .post("/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = r["session_id"].as_str().unwrap().to_owned();
    let run = format!("/session/{sid}/run");
    let ev = a
        .events(&run, json!({"command": "cd /tmp; V=abc; export E=1"}))
        .await;
    assert_eq!(ev.last().unwrap()["type"], "execution_complete");
    let ev = a.events(&run, json!({"command": "pwd; echo $V$E"})).await;
    assert_eq!(texts(&ev, "stdout"), vec!["/tmp", "abc1"]);
    let ev = a.events(&run, json!({"command": "exit 4"})).await;
    assert_eq!(ev.last().unwrap()["error"]["evalue"], "4");
    let ev = a.events(&run, json!({"command": "echo again"})).await;
    assert_eq!(texts(&ev, "stdout"), vec!["again"]);
    assert_eq!(
        a.delete(&format!("/session/{sid}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let gone = a
        .post(&run)
        .json(&json!({"command": "true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let body: serde_json::Value = gone.json().await.unwrap();
    assert_eq!(body["code"], "SESSION_NOT_FOUND");
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_in_error_shape() {
    let a = Agent::start(&[]).await;
    for token in [None, Some("wrong")] {
        for path in [
            "/ping",
            "/command/status/x",
            "/files/info?path=/",
            "/proxy/1/x",
        ] {
            let mut req = a.http.get(a.url(path));
            if let Some(t) = token {
                req = req.header("X-EXECD-ACCESS-TOKEN", t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["code"], "UNAUTHORIZED");
            assert!(!body["message"].as_str().unwrap().contains(TOKEN));
        }
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let a = Agent::start(&[]).await;
    let r = a.post("/command").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["code"], "INVALID_REQUEST_BODY");
    assert!(b["message"].as_str().unwrap().contains("invalid JSON"));
    let r = a
        .post("/command")
        .json(&json!({"command": "x", "gid": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = a
        .post("/code")
        .json(&json!({"code": "print(1)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["code"], "NOT_SUPPORTED");
    assert!(b["message"].as_str().unwrap().contains("Jupyter"));
    let r = a.get("/no/such/route").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = a.get("/command/status/unknown").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn client_disconnect_kills_a_foreground_command() {
    let a = Agent::start(&[]).await;
    let resp = a
        .post("/command")
        .json(&json!({"command": "sleep 30"}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    let init: serde_json::Value = serde_json::from_slice(first.trim_ascii()).unwrap();
    let id = init["text"].as_str().unwrap().to_owned();
    drop(stream);
    let mut st = serde_json::Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        st = a
            .get(&format!("/command/status/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["running"] == false {
            break;
        }
    }
    assert_eq!(st["running"], false);
    assert_eq!(st["exit_code"], 137);
}
