#!/usr/bin/env bash
# Install what the tests and `make up` need, with apt, when it is missing:
# a Docker engine (docker.io), busybox-static (the sandbox test image), cmake (Pingora's
# zlib-ng), python3-venv (the SDK venv), chromium (console tests), Node.js/npm and
# postgresql-15 (initdb/pg_ctl for the governance store tests). As non-root it only reports what is missing.
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
command -v cmake >/dev/null || need+=(cmake)
command -v ip >/dev/null || need+=(iproute2)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# PostgreSQL server binaries for the governance store tests (tests/harness/postgres.rs).
{ command -v initdb >/dev/null || [ -x /usr/lib/postgresql/15/bin/initdb ]; } || need+=(postgresql-15)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing packages: ${need[*]} (install them with: apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "installing ${need[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
