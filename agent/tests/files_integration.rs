//! `/files` and `/directories` over real HTTP against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{scratch, Agent};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

fn upload_form(path: &str, data: Vec<u8>, mode: u32) -> Form {
    let meta = json!({"path": path, "owner": null, "group": null, "mode": mode}).to_string();
    Form::new()
        .part(
            "metadata",
            Part::text(meta)
                .file_name("metadata")
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            Part::bytes(data)
                .file_name("f")
                .mime_str("application/octet-stream")
                .unwrap(),
        )
}

fn enc(p: &std::path::Path) -> String {
    form_urlencoded::byte_serialize(p.to_str().unwrap().as_bytes()).collect()
}

#[tokio::test]
async fn upload_download_one_mib_round_trip_with_range() {
    let a = Agent::start(&[]).await;
    let dir = scratch("up");
    let target = dir.join("sub/blob.bin");
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let r = a
        .post("/files/upload")
        .multipart(upload_form(target.to_str().unwrap(), data.clone(), 640))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let got = a
        .get(&format!("/files/download?path={}", enc(&target)))
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-length"], "1048576");
    assert_eq!(got.bytes().await.unwrap().to_vec(), data);
    let part = a
        .get(&format!("/files/download?path={}", enc(&target)))
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/1048576");
    assert_eq!(
        part.bytes().await.unwrap().to_vec(),
        data[100..200].to_vec()
    );
    let bad = a
        .get(&format!("/files/download?path={}", enc(&target)))
        .header("Range", "bytes=2000000-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 416);
    let missing = a
        .get(&format!("/files/download?path={}", enc(&dir.join("nope"))))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let b: Value = missing.json().await.unwrap();
    assert_eq!(b["code"], "FILE_NOT_FOUND");
}

#[tokio::test]
async fn oversized_upload_is_413_and_leaves_nothing_behind() {
    let a = Agent::start(&["--max-upload-bytes", "1000"]).await;
    let dir = scratch("big");
    let target = dir.join("big.bin");
    let r = a
        .post("/files/upload")
        .multipart(upload_form(target.to_str().unwrap(), vec![7u8; 5000], 644))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "PAYLOAD_TOO_LARGE");
    // Chunked body (no Content-Length): refused while streaming.
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        bytes::Bytes::from(
            [
                b"--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"; filename=\"metadata\"\r\n\r\n".to_vec(),
                format!("{{\"path\":\"{}\",\"mode\":644}}\r\n", target.display()).into_bytes(),
                b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n".to_vec(),
                vec![b'a'; 4000],
                b"\r\n--XyZ--\r\n".to_vec(),
            ]
            .concat(),
        ),
    )]));
    let r = a
        .post("/files/upload")
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temp files left"
    );
}

#[tokio::test]
async fn info_chmod_replace_mv_search_delete() {
    let a = Agent::start(&[]).await;
    let dir = scratch("ops");
    let f = dir.join("conf.txt");
    std::fs::write(&f, "host=localhost port=1 localhost\n").unwrap();
    let info: Value = a
        .get(&format!("/files/info?path={}", enc(&f)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fi = &info[f.to_str().unwrap()];
    assert_eq!(
        (fi["type"].clone(), fi["size"].clone()),
        (json!("file"), json!(32))
    );
    assert!(fi["modified_at"].as_str().unwrap().ends_with('Z'));
    let r = a
        .post("/files/permissions")
        .json(&json!({f.to_str().unwrap(): {"mode": 600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let r = a
        .post("/files/replace?verbose=true")
        .json(&json!({f.to_str().unwrap(): {"old": "localhost", "new": "0.0.0.0"}}))
        .send()
        .await
        .unwrap();
    let counts: Value = r.json().await.unwrap();
    assert_eq!(counts[f.to_str().unwrap()]["replacedCount"], 2);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "host=0.0.0.0 port=1 0.0.0.0\n"
    );
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600,
        "mode kept"
    );
    let r = a
        .post("/files/replace")
        .json(&json!({f.to_str().unwrap(): {"old": "", "new": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let moved = dir.join("deep/er/conf.txt");
    let r = a
        .post("/files/mv")
        .json(&json!([{"src": f, "dest": moved}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(moved.exists() && !f.exists());
    std::fs::write(dir.join("other.log"), "x").unwrap();
    let r = a
        .post("/files/mv")
        .json(&json!([{"src": dir.join("other.log"), "dest": moved}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let found: Vec<Value> = a
        .get(&format!("/files/search?path={}&pattern=*.txt", enc(&dir)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["path"], moved.to_str().unwrap());
    let all: Vec<Value> = a
        .get(&format!("/files/search?path={}", enc(&dir)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let r = a
        .delete(&format!(
            "/files?path={}&path={}",
            enc(&moved),
            enc(&dir.join("ghost"))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!moved.exists());
    let r = a
        .delete(&format!("/files?path={}", enc(&dir)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "directories are refused by DELETE /files");
}

#[tokio::test]
async fn directories_create_list_remove() {
    let a = Agent::start(&[]).await;
    let dir = scratch("dirs");
    let r = a.post("/directories").json(&json!({dir.join("b/c").to_str().unwrap(): {"mode": 700}, dir.join("a").to_str().unwrap(): {"mode": 755}})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    std::fs::write(dir.join("b/file"), "1").unwrap();
    std::os::unix::fs::symlink("/", dir.join("link")).unwrap();
    let list: Vec<Value> = a
        .get(&format!("/directories/list?path={}&depth=2", enc(&dir)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<String> = list
        .iter()
        .map(|e| e["path"].as_str().unwrap()[dir.to_str().unwrap().len() + 1..].to_owned())
        .collect();
    assert_eq!(names, vec!["a", "b", "b/c", "b/file", "link"]);
    assert_eq!(list[2]["mode"], 700);
    assert_eq!(list[4]["type"], "symlink");
    let one: Vec<Value> = a
        .get(&format!("/directories/list?path={}", enc(&dir)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one.len(), 3);
    let r = a
        .get(&format!(
            "/directories/list?path={}",
            enc(&dir.join("link"))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a symlink root is refused");
    let r = a
        .delete(&format!("/directories?path={}", enc(&dir.join("b"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!dir.join("b").exists());
}
