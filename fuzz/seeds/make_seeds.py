#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/<target>/seed-*: real request paths, real
list responses (with the scope tokens props.rs checks against), real Cookie headers and
real JWT headers. Run from fuzz/: python3 seeds/make_seeds.py"""
import base64, json, os

def write(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

paths = [
    "/", "/v1", "/health", "/v1/health", "/version", "/sandboxes", "/v1/sandboxes",
    "/v1/sandboxes/sbx-1", "/v1/sandboxes/sbx-1/metadata", "/v1/sandboxes/sbx-1/pause",
    "/v1/sandboxes/sbx-1/resume", "/v1/sandboxes/sbx-1/renew-expiration",
    "/v1/sandboxes/sbx-1/endpoints/44772", "/v1/sandboxes/sbx-1/snapshots", "/v1/snapshots/snap-1",
    "/v1/sandboxes/sbx-1/diagnostics/logs", "/v1/sandboxes/sbx-1/networkpolicy",
    "/v1/sandboxes/sbx-1/proxy/8080", "/v1/sandboxes/sbx-1/proxy/8080/index.html",
    "/v1/sandboxes/sbx-1/proxy/8080/a/b/c.js", "/v1/pools/default", "/v1/templates/t-1",
    "/metrics/events", "/gatehouse/v1/session", "/v1/sandboxes/x/../y", "/v1/%73andboxes",
    "//v1//sandboxes//", "/v1/sandboxes/a%2Fb", "/v1/sandboxes/a%252Fb", "/v1/sandboxes/%2e%2e/x",
    "/v1/sandboxes/x/.%2e/../sbx-1", "/v1/sandboxes/sbx-1/proxy/8080/%2E%2E/%2E%2E/..",
    "/a b/é/{x}|", "/a%00b", "/a\\b", "/%76%31/sandboxes", "/v1x/sandboxes", "/..",
    "/v1/sandboxes/sbx-1;a=b/pause", "/v1/sandboxes/sbx%2D1%7e", "/v1/sandboxes/sbx-1/proxy/8080/?q",
]
for i, p in enumerate(paths):
    write("normalize_path", f"{i:02}", p)
methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
routes = [
    ("GET", "/v1/sandboxes"), ("POST", "/v1/sandboxes"), ("GET", "/v1/sandboxes/sbx-1"),
    ("DELETE", "/v1/sandboxes/sbx-1"), ("PATCH", "/v1/sandboxes/sbx-1/metadata"),
    ("POST", "/v1/sandboxes/sbx-1/pause"), ("POST", "/v1/sandboxes/sbx-1/resume"),
    ("POST", "/v1/sandboxes/sbx-1/renew-expiration"), ("GET", "/v1/sandboxes/sbx-1/endpoints/8080"),
    ("POST", "/v1/sandboxes/sbx-1/snapshots"), ("GET", "/v1/snapshots"), ("DELETE", "/v1/snapshots/s1"),
    ("GET", "/v1/sandboxes/sbx-1/diagnostics/events"), ("PUT", "/v1/sandboxes/sbx-1/networkpolicy"),
    ("PATCH", "/v1/sandboxes/sbx-1/networkpolicy"), ("GET", "/v1/sandboxes/sbx-1/proxy/8080"),
    ("OPTIONS", "/v1/sandboxes/sbx-1/proxy/8080/a/b"), ("GET", "/v1/pools"), ("PUT", "/v1/pools/p"),
    ("GET", "/v1/templates/t"), ("POST", "/metrics/events"), ("HEAD", "/health"), ("GET", "/version"),
    ("GET", "/v1/sandboxes/sbx-1/unknown"), ("PUT", "/v1/sandboxes"), ("GET", "/v1/sandboxes/./sbx-1/.."),
]
for i, (m, p) in enumerate(routes):
    write("route_match", f"{i:02}", bytes([methods.index(m)]) + p.encode())

owner = "alice-example-com.vu6pg6fs1o9bu394h4n4a"
team = "team-a.ir18gr2hq7fr940tjvmcu"
bob = "bob.g6r3fm7sqb3dkoqpsqb32"
def sbx(i, md):
    return {"id": f"sbx-{i}", "image": {"uri": "gatehouse/busybox:latest"},
            "entrypoint": ["/bin/sh", "-c", "sleep 3600"], "metadata": md,
            "status": {"state": "Running", "reason": None, "message": None,
                       "lastTransitionAt": "2026-12-02T10:00:00Z"},
            "createdAt": "2026-12-02T10:00:00Z", "expiresAt": "2026-12-02T11:00:00Z"}
page = lambda items: {"items": items, "pagination": {"page": 1, "pageSize": 20,
    "totalItems": len(items), "totalPages": 1, "hasNextPage": False}}
mine = {"access.owner": owner, "access.team": team, "project": "demo"}
lists = {
    "empty": page([]),
    "alice": page([sbx(1, mine), sbx(2, dict(mine, env="dev"))]),
    "mixed": page([sbx(1, mine), sbx(2, {"access.owner": bob}), sbx(3, {})]),
    "bob": page([sbx(4, {"access.owner": bob})]),
    "teammate": page([sbx(5, {"access.owner": "carol.abc", "access.team": team})]),
    "nometa": page([{"id": "sbx-6", "status": {"state": "Pending"}}]),
    "nullmeta": page([sbx(7, None)]),
    "numvalue": page([sbx(8, {"access.team": 7})]),
}
for name, body in lists.items():
    write("scope_list", name, json.dumps(body))
write("scope_list", "dupkey", '{"items":[{"metadata":{"access.team":"%s","access.team":"x"}}]}' % team)
write("scope_list", "dupitems", '{"items":[{"metadata":{"access.team":"x"}}],"items":[{"metadata":{"access.team":"%s"}}]}' % team)
write("scope_list", "escaped", '{"items":[{"metadata":{"access\\u002eteam":"%s"}}]}' % team.replace("-", "\\u002d"))
# Found by fuzzing: invalid UTF-8 in a string the fast scan skips (it passes; the strict
# filter would refuse the body).
write("scope_list", "invalid-utf8", b'{"items":[{"metadata":{"access.team":"%s","x":"\xff\xfe"}}]}' % team.encode())
write("scope_list", "control-in-key", b'{"items":[{"i\x03\x00":1,"metadata":{"access.team":"%s"}}]}' % team.encode())
write("scope_list", "big-number", b'{"items":[],"":8E444}')
write("scope_list", "lone-surrogate", b'{"items":[{"\\ud800":"\\udfff","metadata":{"access.team":"%s"}}]}' % team.encode())
write("scope_list", "trailing", json.dumps(lists["alice"]) + " x")

cookies = [
    "gatehouse_session=Zm9vYmFy; theme=dark",
    "a=1; gatehouse_session=x; b=2",
    "gatehouse_login=st4te; gatehouse_session=s3ss",
    "_ga=GA1.1.123.456;   sid=abc==; gatehouse_session",
    "gatehouse_session =x; gatehouse_login= y",
    ";;a=;=b; ;",
    'quoted="a b"; gatehouse_session=a=b=c',
]
for i, c in enumerate(cookies):
    write("cookie_header", f"raw{i}", b"\x00" + c.encode())
write("cookie_header", "pairs0", b"\x01" + b"\x00\xfeabc\xffname\xfevalue\xff\x01\xfe123")
write("cookie_header", "pairs1", b"\x01" + b"n\xfe1\xffn\xfe2\xff\x00\xfex\xff\x00\xfey")

b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
payload = b64(json.dumps({"iss": "http://127.0.0.1:9/", "sub": "alice", "aud": "gatehouse",
                          "exp": 1900000000, "iat": 1764000000}).encode())
headers = [
    {"alg": "RS256", "kid": "rsa-20261202100000-a1b2c3d4", "typ": "JWT"},
    {"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"},
    {"alg": "ES256", "kid": "ec-1"}, {"alg": "EdDSA", "kid": "ed-1", "typ": "JWT"},
    {"alg": "PS256", "kid": "rsa-1"}, {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"},
    {"alg": "none", "typ": "JWT"}, {"alg": "RS256"}, {"alg": "RS256", "kid": 7},
    {"alg": "RS256", "kid": "k", "jku": "http://127.0.0.1:1/jwks", "crit": ["exp"]},
]
for i, h in enumerate(headers):
    hj = json.dumps(h, separators=(",", ":")).encode()
    write("jwt_header", f"tok{i}", b"\x00" + f"{b64(hj)}.{payload}.c2lnbmF0dXJl".encode())
    write("jwt_header", f"hdr{i}", b"\x01" + hj)
short = b64(b'{"alg":"RS256","kid":"k"}')
write("jwt_header", "twoparts", b"\x00" + f"{short}.{payload}".encode())
write("jwt_header", "padded", b"\x00" + (base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"k"}').decode() + "." + payload + ".c2ln").encode())
