use proptest::prelude::*;

use super::*;

fn norm(p: &str) -> String {
    normalize(p).unwrap().path
}

#[test]
fn examples_from_the_contract() {
    assert_eq!(norm("/v1/sandboxes/x/../y"), "/v1/sandboxes/y");
    assert_eq!(norm("/v1/%73andboxes"), "/v1/sandboxes");
    assert_eq!(norm("/v1/sandboxes/"), "/v1/sandboxes");
    assert_eq!(
        normalize("/v1/sandboxes/a%2Fb"),
        Err(PathError::AmbiguousEncoding("%2F".into()))
    );
    assert_eq!(
        normalize("/v1/sandboxes/a%2fb"),
        Err(PathError::AmbiguousEncoding("%2F".into()))
    );
}

#[test]
fn mounts() {
    let p = normalize("/v1").unwrap();
    assert_eq!(
        (p.path.as_str(), p.mount, p.api_path.as_str()),
        ("/v1", Mount::V1, "/")
    );
    let p = normalize("/v1/sandboxes").unwrap();
    assert_eq!((p.mount, p.api_path.as_str()), (Mount::V1, "/sandboxes"));
    let p = normalize("/sandboxes").unwrap();
    assert_eq!((p.mount, p.api_path.as_str()), (Mount::Root, "/sandboxes"));
    let p = normalize("/v1x/sandboxes").unwrap();
    assert_eq!(
        (p.mount, p.api_path.as_str()),
        (Mount::Root, "/v1x/sandboxes")
    );
    let p = normalize("//v1//sandboxes//").unwrap();
    assert_eq!(
        (p.path.as_str(), p.api_path.as_str()),
        ("/v1/sandboxes", "/sandboxes")
    );
    let p = normalize("/%76%31/sandboxes").unwrap();
    assert_eq!(p.mount, Mount::V1);
    assert_eq!(Mount::V1.prefix(), "/v1");
    assert_eq!(Mount::Root.prefix(), "");
}

#[test]
fn dots() {
    assert_eq!(norm("/"), "/");
    assert_eq!(norm("/."), "/");
    assert_eq!(norm("/a/./b/."), "/a/b");
    assert_eq!(norm("/a/b/.."), "/a");
    assert_eq!(norm("/a/.."), "/");
    assert_eq!(norm("/v1/sandboxes/x/%2E%2E/y"), "/v1/sandboxes/y");
    assert_eq!(norm("/v1/sandboxes/x/.%2e/y"), "/v1/sandboxes/y");
    assert_eq!(norm("/a/...b/..."), "/a/...b/...");
    assert_eq!(normalize("/.."), Err(PathError::AboveRoot));
    assert_eq!(normalize("/a/../.."), Err(PathError::AboveRoot));
    assert_eq!(normalize("/v1/../../x"), Err(PathError::AboveRoot));
}

#[test]
fn escapes() {
    assert_eq!(norm("/a%7eb%41"), "/a~bA");
    assert_eq!(norm("/a%3ab"), "/a%3Ab");
    assert_eq!(norm("/a%252Fb"), "/a%252Fb");
    assert_eq!(norm("/a%252fb"), "/a%252fb");
    assert_eq!(norm("/a b"), "/a%20b");
    assert_eq!(norm("/é"), "/%C3%A9");
    assert_eq!(norm("/{x}|"), "/%7Bx%7D%7C");
    assert_eq!(norm("/a:b@c!$&'()*+,;="), "/a:b@c!$&'()*+,;=");
    assert_eq!(normalize("/a%"), Err(PathError::InvalidEscape));
    assert_eq!(normalize("/a%4"), Err(PathError::InvalidEscape));
    assert_eq!(normalize("/a%zz"), Err(PathError::InvalidEscape));
    assert_eq!(normalize("/a%+1"), Err(PathError::InvalidEscape));
    assert_eq!(
        normalize("/a%5cb"),
        Err(PathError::AmbiguousEncoding("%5C".into()))
    );
    assert_eq!(
        normalize("/a%00"),
        Err(PathError::EncodedControl("%00".into()))
    );
    assert_eq!(
        normalize("/a%0A"),
        Err(PathError::EncodedControl("%0A".into()))
    );
    assert_eq!(
        normalize("/a%7F"),
        Err(PathError::EncodedControl("%7F".into()))
    );
}

#[test]
fn rejections() {
    assert_eq!(normalize(""), Err(PathError::NotAbsolute));
    assert_eq!(normalize("sandboxes"), Err(PathError::NotAbsolute));
    assert_eq!(normalize("/a\\b"), Err(PathError::Backslash));
    assert_eq!(normalize("/a\nb"), Err(PathError::ControlChar));
    assert_eq!(normalize("/a\u{7f}"), Err(PathError::ControlChar));
    assert_eq!(normalize("/a?b=1"), Err(PathError::QueryOrFragment('?')));
    assert_eq!(normalize("/a#b"), Err(PathError::QueryOrFragment('#')));
    assert!(PathError::AmbiguousEncoding("%2F".into())
        .to_string()
        .contains("%2F"));
}

fn path_like() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("v1".to_owned()),
        Just("%2e%2E".to_owned()),
        Just("%2F".to_owned()),
        Just("%25".to_owned()),
        Just("%7e".to_owned()),
        "[a-zA-Z0-9%._~:@ {}-]{0,6}",
    ];
    prop::collection::vec(seg, 0..8).prop_map(|segs| format!("/{}", segs.join("/")))
}

fn check_canonical(p: &NormalizedPath) {
    assert!(p.path.starts_with('/'));
    assert!(!p.path.contains("//"), "{p:?}");
    assert!(p.path == "/" || !p.path.ends_with('/'), "{p:?}");
    for seg in p.path.split('/').skip(1) {
        assert!(seg != "." && seg != "..", "{p:?}");
    }
    assert!(!p.path.contains("%2F") && !p.path.contains("%5C"), "{p:?}");
    assert!(p.path.is_ascii());
    assert_eq!(
        format!("{}{}", p.mount.prefix(), p.api_path).trim_end_matches('/'),
        p.path.trim_end_matches('/')
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_string(s in any::<String>()) {
        let _ = normalize(&s);
        let _ = normalize(&format!("/{s}"));
    }

    #[test]
    fn canonical_and_idempotent(s in path_like()) {
        if let Ok(p) = normalize(&s) {
            check_canonical(&p);
            let again = normalize(&p.path).unwrap();
            prop_assert_eq!(&again, &p);
        }
    }

    #[test]
    fn idempotent_on_arbitrary_strings(s in any::<String>()) {
        if let Ok(p) = normalize(&format!("/{s}")) {
            check_canonical(&p);
            prop_assert_eq!(normalize(&p.path).unwrap(), p);
        }
    }
}
