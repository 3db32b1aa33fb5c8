#!/usr/bin/env bash
# `make soak`: fault drills and a soak run against the release binaries (not part of
# `make test`: it takes 15+ minutes). Runs as root on Debian (like `make test`): it starts
# its own Docker engine (dev/scripts/docker-engine.sh), a throwaway PostgreSQL cluster
# (the governance store) and the dev IdP, and needs wrk and hey (installed with apt when
# missing).
#
# Drills, each checked (the run fails on the first one that does not hold):
# 1. backend down and back: the gateway stays live (/livez 200), reports not ready
#    (/readyz 503), answers API calls with 502, and recovers by itself.
# 2. SIGHUP twice under load: the gateway reloads; no request fails.
# 3. governance store (PostgreSQL) down: fail-static. Named keys and the bindings read
#    before keep working (200 audited mutations: deletes of missing sandboxes), /readyz says `store: unreachable` (still 200: the gateway
#    serves), audit events are spooled; PostgreSQL back: the spool is replayed and every
#    request of the outage is in the store (0 lost).
# 4. IdP down: an existing console session keeps working, a new login gets a clear 503
#    (GATEWAY::IDP_UNAVAILABLE); IdP back: logins work again.
# 5. Docker engine restarted: reads keep working, creates get 503
#    DOCKER::ENGINE_UNAVAILABLE; engine back: creates work, the sandbox made before the
#    restart is still listed.
# 6. gateway upgraded under load: a new gateway process started with --upgrade takes the
#    listening socket over (Pingora's graceful upgrade; SIGQUIT to the old one), the old
#    one drains; wrk must see 0 failed requests.
# 7. Soak: the maximum rate is measured (wrk, SOAK_CONNECTIONS connections, 10 s), then hey
#    holds 80 % of it for SOAK_SECONDS (default 600) in SOAK_CHUNK-second chunks; after
#    every chunk it records req/s, p99, the gateway's RSS and open descriptors. Fails on a
#    failed request, RSS growth over 20 % after the first chunk, descriptor growth over
#    16, or a p99 above 3x the first chunk's.
#
# Figures go to target/soak/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${GATEHOUSE_BIN_DIR:-$root/target/release}
out=$root/target/soak
soak_seconds=${SOAK_SECONDS:-600}
chunk=${SOAK_CHUNK:-30}
conns=${SOAK_CONNECTIONS:-16}
python=${GATEHOUSE_PYTHON:-$root/.venv/bin/python}
mkdir -p "$out"
for tool in wrk hey; do
  command -v "$tool" >/dev/null || apt-get install -y -q "$tool" >/dev/null \
    || { echo "$tool is needed (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$python" ] || { echo "the SDK venv is missing: dev/scripts/python-venv.sh .venv" >&2; exit 1; }
[ -d dev/idp/node_modules ] || (cd dev/idp && npm ci --no-audit --no-fund --loglevel=error)
if [ -z "${GATEHOUSE_BIN_DIR:-}" ]; then
  cargo build --release -q -p gatehouse -p gatehouse-backend
fi

work=$(mktemp -d)
chmod 755 "$work"
engine=gh-soak-$$
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port); gport=$(free_port); aport=$(free_port); iport=$(free_port); pport=$(free_port)
key=soak-backend-key-$RANDOM$RANDOM
gwkey=soak-gateway-key-0123456789
storekey=soak-store-key-0123456789
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
g=http://127.0.0.1:$gport

# The Docker engine (its own, so the restart drill disturbs nothing else).
DOCKER_HOST=$(dev/scripts/docker-engine.sh start "$engine")
export DOCKER_HOST
dev/scripts/test-image.sh gatehouse/busybox:latest >/dev/null

# PostgreSQL (as nobody when root: it refuses to run as root).
pg_bin=${GATEHOUSE_PG_BIN:-/usr/lib/postgresql/15/bin}
pgdir=$work/pg
mkdir -p "$pgdir"
as_pg=()
if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$pgdir"; as_pg=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pgdir/data" -U postgres --auth=trust >/dev/null
pg_start() { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-k $pgdir -p $pport -c listen_addresses=127.0.0.1" start >/dev/null; }
pg_stop() { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null; }
psql_q() { "$pg_bin/psql" -h 127.0.0.1 -p "$pport" -U postgres -d postgres -tAc "$1"; }
pg_start

# The dev IdP.
start_idp() {
  IDP_PORT=$iport IDP_REDIRECT_URIS=$g/auth/callback IDP_BACKCHANNEL_LOGOUT_URI=none \
    IDP_JWKS_FILE=$work/idp-jwks.json node dev/idp/server.mjs >>"$work/idp.log" 2>&1 &
  idp=$!
}
start_idp

cat > "$work/backend.toml" <<CONF
[server]
host = "127.0.0.1"
port = $bport
api_key = "$key"
[docker]
publish_host = "127.0.0.1"
instance = "soak-$RANDOM"
[store]
path = "backend.db"
CONF
cat > "$work/gatehouse.toml" <<CONF
[server]
listen = "127.0.0.1:$gport"
grace_period_seconds = 2
graceful_shutdown_timeout_seconds = 2
[upstream]
url = "http://127.0.0.1:$bport"
api_key = "$key"
[policy]
path = "$root/policies/roles.toml"
[audit]
sink = "file"
path = "$work/audit.jsonl"
[admin]
listen = "127.0.0.1:$aport"
[store]
type = "postgres"
url = "postgres://postgres@127.0.0.1:$pport/postgres"
spool_dir = "$work/spool"
retry_ms = 200
[oidc]
issuer = "http://127.0.0.1:$iport"
client_id = "gatehouse"
client_secret = "gatehouse-dev-secret"
redirect_url = "$g/auth/callback"
scopes = ["openid", "profile", "email"]
[console]
dir = "$work/console"
[[auth.api_keys]]
name = "soak"
sha256 = "$(sha "$gwkey")"
role = "service_admin"
[[auth.api_keys]]
name = "soak-store"
sha256 = "$(sha "$storekey")"
role = "service_admin"
CONF
mkdir -p "$work/console"; echo '<html></html>' > "$work/console/index.html"

start_backend() { "$bin/gatehouse-backend" --config "$work/backend.toml" >>"$work/backend.log" 2>&1 & backend=$!; }
start_backend
"$bin/gatehouse" --config "$work/gatehouse.toml" >"$work/gateway.log" 2>&1 &
gateway=$!
cleanup() {
  rc=$?
  kill "$gateway" "$backend" "$idp" 2>/dev/null || true
  [ -n "${new_gateway:-}" ] && kill "$new_gateway" 2>/dev/null || true
  wait 2>/dev/null || true
  pg_stop 2>/dev/null || true
  DOCKER_HOST=$DOCKER_HOST docker rm -f $(docker ps -aq) >/dev/null 2>&1 || true
  dev/scripts/docker-engine.sh stop "$engine" >/dev/null 2>&1 || true
  if [ "$rc" != 0 ]; then
    echo "--- gateway log (tail)"; tail -20 "$work/gateway.log"; echo "--- backend log (tail)"; tail -10 "$work/backend.log"
  fi
  rm -rf "$work" "${GATEHOUSE_STATE_DIR:-/tmp}/$engine"
}
trap cleanup EXIT
code() { curl -s -o /dev/null -w '%{http_code}' -H "OPEN-SANDBOX-API-KEY: $gwkey" "$@"; }
body() { curl -s -H "OPEN-SANDBOX-API-KEY: $gwkey" "$@"; }
wait_code() { # wait_code WANT URL: up to 30 s
  for _ in $(seq 1 150); do [ "$(code "$2")" = "$1" ] && return 0; sleep 0.2; done
  echo "timed out waiting for $1 from $2" >&2; return 1
}
metric() { curl -s "http://127.0.0.1:$aport/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
wrk_failed() { grep -E 'Non-2xx|Socket errors' "$1" || true; }
fail() { cat "$report"; echo "drill failed: $*" >&2; exit 1; }
wait_code 200 "$g/readyz"

report=$out/report.md
{
  echo "# Soak and fault drills ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $("$bin/gatehouse" --version))"
  echo
} > "$report"

# Drill 1: backend down and back.
kill "$backend"; wait "$backend" 2>/dev/null || true
t0=$(date +%s.%N)
live=$(code "$g/livez"); ready=$(code "$g/readyz"); api=$(code "$g/v1/sandboxes")
start_backend
wait_code 200 "$g/v1/sandboxes"
recovered=$(python3 -c "import time; print(f'{time.time()-$t0:.2f}')")
echo "- backend down: /livez $live, /readyz $ready, API $api; back: API 200 again ${recovered} s after the kill (restart included)" >> "$report"
[ "$live" = 200 ] && [ "$ready" = 503 ] && [ "$api" = 502 ] || fail "backend down"

# Drill 2: SIGHUP under load.
wrk -t1 -c"$conns" -d6s -H "OPEN-SANDBOX-API-KEY: $gwkey" "$g/v1/sandboxes" > "$work/hup.txt" &
wrk_pid=$!
sleep 2; kill -HUP "$gateway"; sleep 1; kill -HUP "$gateway"
wait "$wrk_pid"
kill -0 "$gateway" || fail "the gateway died on SIGHUP"
errors=$(wrk_failed "$work/hup.txt")
echo "- SIGHUP twice under load: gateway alive, $(awk '/Requests\/sec/ {print $2}' "$work/hup.txt") req/s, ${errors:-no failed request}" >> "$report"
[ -z "$errors" ] || fail "SIGHUP under load"

# Drill 3: the governance store down (fail-static).
wait_code 200 "$g/readyz"
[ "$(metric gatehouse_audit_spool_depth)" = 0 ] || fail "spool not empty before the store drill"
pg_stop
# Mutations (each audited): deletes of sandboxes that do not exist, answered 404 by the
# backend while the store is down.
n=200; ok=0
for i in $(seq 1 "$n"); do
  id=00000000-0000-4000-8000-$(printf %012d "$i")
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "OPEN-SANDBOX-API-KEY: $storekey" "$g/v1/sandboxes/$id")" = 404 ] && ok=$((ok + 1))
done
ready_body=$(curl -s "$g/readyz"); ready_code=$(code "$g/readyz")
spooled=$(metric gatehouse_audit_spool_depth)
t0=$(date +%s.%N)
pg_start
for _ in $(seq 1 150); do [ "$(metric gatehouse_audit_spool_depth)" = 0 ] && break; sleep 0.2; done
replayed=$(python3 -c "import time; print(f'{time.time()-$t0:.2f}')")
stored=$(psql_q "SELECT count(*) FROM audit_events WHERE key_name = 'soak-store'")
echo "- store down: $ok/$n audited API-key requests (deletes of missing sandboxes) answered 404 by the backend, /readyz $ready_code \`$ready_body\`, $spooled events spooled; back: spool replayed in ${replayed} s, $stored/$n events in PostgreSQL (0 lost)" >> "$report"
[ "$ok" = "$n" ] && [ "$ready_code" = 200 ] && [ "$stored" = "$n" ] && [ "${spooled:-0}" -gt 0 ] \
  && echo "$ready_body" | grep -q '"store":"unreachable' || fail "store down"

# Drill 4: the IdP down.
session=$("$python" benches/scripts/oidc_login.py "$g" alice) || fail "login with the IdP up"
kill "$idp"; wait "$idp" 2>/dev/null || true
sleep 2.5   # the last answer of the gateway's IdP probe expires
with_session=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: gatehouse_session=$session" "$g/auth/me")
login_code=$(curl -s -o "$work/login.json" -w '%{http_code}' "$g/auth/login")
login_err=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['code'])" "$work/login.json" 2>/dev/null || echo none)
start_idp
relogin=fail
for _ in $(seq 1 50); do "$python" benches/scripts/oidc_login.py "$g" bob >/dev/null 2>&1 && { relogin=ok; break; }; sleep 0.2; done
echo "- IdP down: existing session $with_session, new login $login_code $login_err; IdP back: new login $relogin" >> "$report"
[ "$with_session" = 200 ] && [ "$login_code" = 503 ] && [ "$login_err" = GATEWAY::IDP_UNAVAILABLE ] && [ "$relogin" = ok ] \
  || fail "IdP down"

# Drill 5: the Docker engine restarted.
create='{"image":{"uri":"gatehouse/busybox:latest"},"entrypoint":["sleep","600"],"timeout":600,"resourceLimits":{"cpu":"250m","memory":"64Mi"}}'
before=$(curl -s -H "OPEN-SANDBOX-API-KEY: $gwkey" -H 'Content-Type: application/json' -d "$create" "$g/v1/sandboxes" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
dev/scripts/docker-engine.sh stop "$engine" >/dev/null
list_down=$(code "$g/v1/sandboxes")
create_down=$(curl -s -o "$work/create.json" -w '%{http_code}' -H "OPEN-SANDBOX-API-KEY: $gwkey" -H 'Content-Type: application/json' -d "$create" "$g/v1/sandboxes")
create_err=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['code'])" "$work/create.json" 2>/dev/null || echo none)
t0=$(date +%s.%N)
dev/scripts/docker-engine.sh start "$engine" >/dev/null
create_up=000
for _ in $(seq 1 100); do
  create_up=$(curl -s -o /dev/null -w '%{http_code}' -H "OPEN-SANDBOX-API-KEY: $gwkey" -H 'Content-Type: application/json' -d "$create" "$g/v1/sandboxes")
  case $create_up in 2*) break ;; esac; sleep 0.3
done
engine_back=$(python3 -c "import time; print(f'{time.time()-$t0:.2f}')")
still=$(code "$g/v1/sandboxes/$before")
echo "- Docker engine restarted: while down, list $list_down, create $create_down $create_err; back: create $create_up ${engine_back} s after the restart began, earlier sandbox $still" >> "$report"
[ "$list_down" = 200 ] && [ "$create_down" = 503 ] && [ "$create_err" = DOCKER::ENGINE_UNAVAILABLE ] \
  && case $create_up in 2*) true ;; *) false ;; esac && [ "$still" = 200 ] || fail "engine restart"

# Drill 6: the gateway upgraded under load (zero downtime).
wrk -t1 -c"$conns" -d15s -H "OPEN-SANDBOX-API-KEY: $gwkey" "$g/v1/sandboxes" > "$work/upgrade.txt" &
wrk_pid=$!
sleep 3
old=$gateway
"$bin/gatehouse" --config "$work/gatehouse.toml" --upgrade >"$work/gateway-new.log" 2>&1 &
new_gateway=$!
sleep 0.5
kill -QUIT "$old"
wait "$wrk_pid"
t0=$(date +%s.%N)
wait "$old" 2>/dev/null || true
old_exit=$(python3 -c "import time; print(f'{time.time()-$t0:.1f}')")
kill -0 "$new_gateway" || fail "the new gateway is not running"
gateway=$new_gateway; new_gateway=
errors=$(wrk_failed "$work/upgrade.txt")
after=$(code "$g/v1/sandboxes")
echo "- upgrade under load (new process --upgrade, SIGQUIT to the old): $(awk '/Requests\/sec/ {print $2}' "$work/upgrade.txt") req/s over 15 s, $(awk '/requests in/ {print $1}' "$work/upgrade.txt") requests, ${errors:-0 failed}; the old process exited ${old_exit} s after the load ended; API $after from the new one" >> "$report"
[ -z "$errors" ] && [ "$after" = 200 ] || fail "upgrade under load"

# Soak: 80 % of the measured maximum rate.
wrk -t1 -c"$conns" -d10s --latency -H "OPEN-SANDBOX-API-KEY: $gwkey" "$g/v1/sandboxes" > "$work/max.txt"
max=$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/max.txt")
rate=$((max * 8 / 10))
per_conn=$(( (rate + conns - 1) / conns ))
{
  echo
  echo "Soak: maximum ${max} req/s (wrk, $conns connections, API-key list of an empty engine through the gateway); hey holds 80 % = $((per_conn * conns)) req/s for ${soak_seconds} s in ${chunk} s chunks."
  echo
  echo "| t (s) | req/s | p99 | gateway RSS (MB) | open fds |"
  echo "|---|---|---|---|---|"
} >> "$report"
elapsed=0; first_rss=""; first_fds=""; first_p99=""; failed=0; worst_p99=0
while [ "$elapsed" -lt "$soak_seconds" ]; do
  hey -z "${chunk}s" -c "$conns" -q "$per_conn" -H "OPEN-SANDBOX-API-KEY: $gwkey" "$g/v1/sandboxes" > "$work/chunk.txt"
  elapsed=$((elapsed + chunk))
  rps=$(awk '/Requests\/sec:/ {printf "%.0f", $2}' "$work/chunk.txt")
  p99=$(awk '/99% in/ {printf "%.2f", $3 * 1000}' "$work/chunk.txt")
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$gateway/status")
  fds=$(ls "/proc/$gateway/fd" | wc -l)
  codes=$(awk '/Status code distribution/ {s=1; next} s && /\[/ {print $1}' "$work/chunk.txt" | tr -d '[]' | sort -u | tr '\n' ' ')
  [ "$codes" = "200 " ] || failed=1
  grep -q '^Error distribution' "$work/chunk.txt" && failed=1
  echo "| $elapsed | $rps | ${p99} ms | $rss | $fds |" >> "$report"
  [ -n "$first_rss" ] || { first_rss=$rss; first_fds=$fds; first_p99=$p99; }
done
cat "$report"
python3 - "$first_rss" "$rss" "$first_fds" "$fds" "$failed" "$first_p99" "$report" <<'PY'
import re, sys
r0, r1, f0, f1, failed, p0 = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
p99s = [float(m) for m in re.findall(r"\| ([0-9.]+) ms \|", open(sys.argv[7]).read())]
problems = []
if failed: problems.append("requests failed")
if r1 > r0 * 1.2: problems.append(f"RSS grew from {r0} to {r1} MB")
if f1 > f0 + 16: problems.append(f"open fds grew from {f0} to {f1}")
if p99s and max(p99s) > max(p0, 1.0) * 3: problems.append(f"p99 rose from {p0} to {max(p99s)} ms")
if problems:
    sys.exit("soak failed: " + "; ".join(problems))
print("soak passed")
PY
