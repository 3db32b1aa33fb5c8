//! Talking to the services over HTTP the way a user's client does: one request, one
//! `(status, body)` answer, with the body as JSON (or as a JSON string when it is not).

use serde_json::Value;

/// Sends `rb` and returns the status and the body: parsed JSON, else the text as a JSON
/// string. Panics (failing the test) when the request cannot be sent at all.
pub async fn send_req(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let r = match rb.send().await {
        Ok(r) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `method url` with `c`, with `body` as JSON when given; see [`send_req`].
pub async fn send(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = match method.parse::<reqwest::Method>() {
        Ok(m) => m,
        Err(e) => panic!("bad method {method}: {e}"),
    };
    let mut rb = c.request(method, url);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    send_req(rb).await
}

/// Polls `GET url` as `c` for up to 30 s until it answers 200; that body.
pub async fn wait_ok(c: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let what = format!("{url} to answer 200");
    crate::wait_for(&what, std::time::Duration::from_secs(30), || async {
        let (s, v) = send(c, "GET", url, None).await;
        (s == 200).then_some(v)
    })
    .await
}

/// The `id`s of a list answer's `items`, in order.
pub fn item_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The body of a successful `GET url` without credentials, or `None` (to poll with
/// [`crate::wait_for`]).
pub async fn get_text(url: String) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

/// `host:port` of an `http://` base URL (the form endpoints are reported in).
pub fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}
