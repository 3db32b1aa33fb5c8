"""Log one user in through the gateway and the dev IdP, like a browser, and print the
gateway's session cookie value (for benches/soak.sh's IdP drill).

Usage: python oidc_login.py GATEWAY_URL USER

Exits 1 with the HTTP status and body of the first unexpected answer (the IdP-down
drill expects the gateway's 503 here).
"""

import re
import sys

import httpx


def main() -> None:
    gateway, user = sys.argv[1].rstrip("/"), sys.argv[2]
    with httpx.Client(follow_redirects=True, timeout=15) as c:
        r = c.get(f"{gateway}/auth/login", params={"return_to": "/console/"})
        # The IdP's login form, then maybe a consent form, until the gateway's console.
        for _ in range(4):
            if r.status_code != 200 or "/interaction/" not in str(r.url):
                break
            form = {"prompt": "login", "login": user, "password": "x"}
            if re.search(r'name="prompt" value="consent"', r.text) or "consent" in r.text and "login" not in r.text:
                form = {"prompt": "consent"}
            r = c.post(str(r.url), data=form)
        cookie = c.cookies.get("gatehouse_session")
        if not cookie or not str(r.url).startswith(gateway):
            print(f"login failed: {r.status_code} {r.url} {r.text[:300]}", file=sys.stderr)
            sys.exit(1)
        print(cookie)


if __name__ == "__main__":
    main()
