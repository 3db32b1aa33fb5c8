use proptest::prelude::*;

use super::*;

fn pat(s: &str) -> Pattern {
    Pattern::parse(s).unwrap()
}

fn caps(p: &str, path: &str) -> Option<Vec<(String, String)>> {
    pat(p).captures(&split_path(path))
}

#[test]
fn literal_and_params() {
    assert_eq!(caps("/", "/"), Some(vec![]));
    assert_eq!(caps("/", "/a"), None);
    assert_eq!(caps("/sandboxes", "/sandboxes"), Some(vec![]));
    assert_eq!(caps("/sandboxes", "/sandboxes/x"), None);
    assert_eq!(
        caps("/sandboxes/{sandboxId}", "/sandboxes/sbx-1"),
        Some(vec![("sandboxId".into(), "sbx-1".into())])
    );
    assert_eq!(caps("/sandboxes/{sandboxId}", "/sandboxes"), None);
    assert_eq!(caps("/sandboxes/{sandboxId}", "/sandboxes/"), None);
    assert_eq!(caps("/sandboxes/{sandboxId}", "/sandboxes//x"), None);
    assert_eq!(caps("/sandboxes/{sandboxId}", "/sandboxes/a/b"), None);
}

#[test]
fn tails() {
    let p = "/sandboxes/{sandboxId}/proxy/{port}/{path*}";
    assert_eq!(caps(p, "/sandboxes/s/proxy/8080"), None);
    assert_eq!(
        caps(p, "/sandboxes/s/proxy/8080/a/b").unwrap()[2],
        ("path".into(), "a/b".into())
    );
    assert_eq!(
        caps(p, "/sandboxes/s/proxy/8080/a").unwrap()[2],
        ("path".into(), "a".into())
    );
    assert_eq!(caps(p, "/sandboxes/s/proxy/8080/a//b"), None);
}

#[test]
fn parse_errors() {
    for bad in [
        "sandboxes",
        "/sandboxes/",
        "//sandboxes",
        "/a/{}",
        "/a/{1x}",
        "/a/{x*}/b",
        "/a/{x}/{x}",
        "/a/x{y}",
        "/a/./b",
        "/a/../b",
        "/a/%2F",
        "/a/%7e",
        "/a b",
        "/v1/sandboxes",
    ] {
        assert!(Pattern::parse(bad).is_err(), "{bad} should be rejected");
    }
    assert!(Pattern::parse("/v1x/{id_2}/{rest*}").is_ok());
}

#[test]
fn shapes_and_overlaps() {
    assert_eq!(pat("/a/{x}/{y*}").shape(), "/a/{}/{*}");
    assert_eq!(pat("/").shape(), "/");
    let yes = [
        ("/a/{x}", "/a/{y}"),
        ("/a/{x}", "/a/b"),
        ("/a/{x*}", "/a/b/c"),
        ("/a/{x*}", "/{y}/{z*}"),
        ("/{x}", "/a"),
    ];
    for (a, b) in yes {
        assert!(pat(a).overlaps(&pat(b)), "{a} ~ {b}");
        assert!(pat(b).overlaps(&pat(a)), "{b} ~ {a}");
    }
    let no = [
        ("/a/{x}", "/b/{y}"),
        ("/a/{x}", "/a/{x}/c"),
        ("/a/{p}", "/a/{p}/{t*}"),
        ("/", "/{t*}"),
        ("/a/{x*}", "/b/{x*}"),
    ];
    for (a, b) in no {
        assert!(!pat(a).overlaps(&pat(b)), "{a} !~ {b}");
        assert!(!pat(b).overlaps(&pat(a)), "{b} !~ {a}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn matcher_never_panics_and_params_are_single_nonempty_segments(
        path in "(/[a-z0-9/.%{}*-]{0,5}){0,6}|[^/]{0,8}",
    ) {
        for p in ["/", "/{a}", "/x/{a}", "/{a}/{b}", "/{a}/{t*}", "/x/{a}/y/{b}/{t*}"] {
            if let Some(caps) = pat(p).captures(&split_path(&path)) {
                for (name, value) in caps {
                    prop_assert!(!value.is_empty());
                    if name != "t" {
                        prop_assert!(!value.contains('/'), "{} captured {:?} from {:?}", name, value, path);
                    } else {
                        prop_assert!(value.split('/').all(|s| !s.is_empty()));
                    }
                }
            }
        }
    }

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = Pattern::parse(&s);
        let _ = Pattern::parse(&format!("/{s}"));
    }
}
