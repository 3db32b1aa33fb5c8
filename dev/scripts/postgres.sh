#!/usr/bin/env bash
# A local PostgreSQL for the governance store of `GATEHOUSE_STORE=postgres make up`
# (DEV-ONLY: trust authentication, loopback only, data under DIR).
#
#   dev/scripts/postgres.sh start DIR   starts it (or finds it running), prints its URL
#   dev/scripts/postgres.sh stop DIR    stops it
#
# Port: GATEHOUSE_PG_PORT (default 55432). Binaries: GATEHOUSE_PG_BIN, else PATH, else
# Debian's /usr/lib/postgresql/15/bin. PostgreSQL refuses to run as root, so as root the
# server runs as `nobody`, as the tests' clusters do.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}
port=${GATEHOUSE_PG_PORT:-55432}
bin=${GATEHOUSE_PG_BIN:-}
if [ -z "$bin" ]; then
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    bin=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
  else
    bin=/usr/lib/postgresql/15/bin
  fi
fi
[ -x "$bin/pg_ctl" ] || { echo "pg_ctl not found (Debian: apt-get install postgresql-15, or set GATEHOUSE_PG_BIN)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
as_owner() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid 65534 --regid 65534 --clear-groups -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown 65534:65534 "$dir"
case "$cmd" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
        -o "-k $dir -p $port -c listen_addresses=127.0.0.1" start >/dev/null \
        || { tail -20 "$dir/postgres.log" >&2; exit 1; }
    fi
    # The gateway's database (the migrations create its tables at start).
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'gatehouse'" | grep -q 1 \
      || as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE gatehouse"
    echo "postgres://postgres@127.0.0.1:$port/gatehouse"
    ;;
  stop)
    [ -f "$dir/data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: postgres.sh start|stop DIR" >&2; exit 1 ;;
esac
