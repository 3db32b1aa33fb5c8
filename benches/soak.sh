#!/usr/bin/env bash
# `make soak`: fault drills and a soak run against the release binaries (not part of
# `make test`: it takes minutes). Needs a Docker engine at DOCKER_HOST (the backend's
# runtime) and wrk.
#
# 1. Drill "backend down and back": the gateway stays live (/livez 200), reports not ready
#    (/readyz 503) and answers API calls with 502 while the backend is down, and recovers
#    by itself once it is back.
# 2. Drill "SIGHUP under load": the gateway reloads its configuration while wrk runs;
#    no request fails.
# 3. Soak: wrk on the API-key path in SOAK_CHUNK-second chunks for SOAK_SECONDS (default
#    600) with SOAK_CONNECTIONS connections; after every chunk it records req/s, p99, the
#    gateway's RSS and open file descriptors. The run fails if a request fails, if RSS
#    grows by more than 20 % after the first chunk, or if descriptors grow by more than 16.
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
mkdir -p "$out"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
[ -n "${DOCKER_HOST:-}" ] || { echo "set DOCKER_HOST to a Docker engine (dev/scripts/docker-engine.sh start NAME)" >&2; exit 1; }
if [ -z "${GATEHOUSE_BIN_DIR:-}" ]; then
  cargo build --release -q -p gatehouse -p gatehouse-backend
fi

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port); gport=$(free_port); aport=$(free_port)
key=soak-backend-key-$RANDOM$RANDOM
gwkey=soak-gateway-key-0123456789
sha=$(printf '%s' "$gwkey" | sha256sum | cut -d' ' -f1)
cat > "$work/backend.toml" <<EOF
[server]
host = "127.0.0.1"
port = $bport
api_key = "$key"
[docker]
publish_host = "127.0.0.1"
instance = "soak-$RANDOM"
[store]
path = "backend.db"
EOF
cat > "$work/gatehouse.toml" <<EOF
[server]
listen = "127.0.0.1:$gport"
grace_period_seconds = 1
graceful_shutdown_timeout_seconds = 1
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
[[auth.api_keys]]
name = "soak"
sha256 = "$sha"
role = "service_admin"
EOF

start_backend() { "$bin/gatehouse-backend" --config "$work/backend.toml" >>"$work/backend.log" 2>&1 & backend=$!; }
start_backend
"$bin/gatehouse" --config "$work/gatehouse.toml" >"$work/gateway.log" 2>&1 &
gateway=$!
cleanup() { kill "$gateway" "$backend" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
code() { curl -s -o /dev/null -w '%{http_code}' -H "OPEN-SANDBOX-API-KEY: $gwkey" "$@"; }
wait_code() { # wait_code WANT URL: up to 20 s
  for _ in $(seq 1 100); do [ "$(code "$2")" = "$1" ] && return 0; sleep 0.2; done
  echo "timed out waiting for $1 from $2" >&2; return 1
}
g=http://127.0.0.1:$gport
wait_code 200 "$g/readyz"

report=$out/report.md
{
  echo "# Soak and fault drills ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
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
[ "$live" = 200 ] && [ "$ready" = 503 ] && [ "$api" = 502 ] || { cat "$report"; echo "drill 1 failed" >&2; exit 1; }

# Drill 2: SIGHUP under load.
wrk -t1 -c"$conns" -d6s -H "OPEN-SANDBOX-API-KEY: $gwkey" "$g/v1/sandboxes" > "$work/hup.txt" &
wrk_pid=$!
sleep 2; kill -HUP "$gateway"; sleep 1; kill -HUP "$gateway"
wait "$wrk_pid"
kill -0 "$gateway" || { echo "drill 2: the gateway died on SIGHUP" >&2; exit 1; }
errors=$(grep -E 'Non-2xx|Socket errors' "$work/hup.txt" || true)
echo "- SIGHUP twice under load: gateway alive, $(grep 'Requests/sec' "$work/hup.txt" | awk '{print $2}') req/s, ${errors:-no failed requests}" >> "$report"
[ -z "$errors" ] || { cat "$report"; exit 1; }

# Soak.
{
  echo
  echo "Soak: wrk, $conns connections, API-key list through the gateway, ${soak_seconds} s in ${chunk} s chunks."
  echo
  echo "| t (s) | req/s | p99 | gateway RSS (MB) | open fds |"
  echo "|---|---|---|---|---|"
} >> "$report"
elapsed=0; first_rss=""; first_fds=""; failed=0
while [ "$elapsed" -lt "$soak_seconds" ]; do
  wrk -t1 -c"$conns" -d"${chunk}s" --latency -H "OPEN-SANDBOX-API-KEY: $gwkey" "$g/v1/sandboxes" > "$work/chunk.txt"
  elapsed=$((elapsed + chunk))
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/chunk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/chunk.txt")
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$gateway/status")
  fds=$(ls "/proc/$gateway/fd" | wc -l)
  grep -qE 'Non-2xx|Socket errors' "$work/chunk.txt" && failed=1
  echo "| $elapsed | $rps | $p99 | $rss | $fds |" >> "$report"
  [ -n "$first_rss" ] || { first_rss=$rss; first_fds=$fds; }
done
cat "$report"
python3 - "$first_rss" "$rss" "$first_fds" "$fds" "$failed" <<'PY'
import sys
r0, r1, f0, f1, failed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
problems = []
if failed: problems.append("requests failed")
if r1 > r0 * 1.2: problems.append(f"RSS grew from {r0} to {r1} MB")
if f1 > f0 + 16: problems.append(f"open fds grew from {f0} to {f1}")
if problems:
    sys.exit("soak failed: " + "; ".join(problems))
print("soak passed")
PY
