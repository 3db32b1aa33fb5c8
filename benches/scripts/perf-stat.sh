#!/usr/bin/env bash
# CPU and counted events per request of one gateway build on one path: `perf stat` on the
# gateway process over a wrk run, divided by the requests wrk completed. PERF_EVENTS adds
# events: `instructions:u` where the machine has hardware counters (Firecracker VMs do
# not), or uprobes on mimalloc's entry points to count allocations, which a busy machine
# cannot blur: `perf probe -x GATEHOUSE_BIN -a mi_malloc_aligned`, then
# PERF_EVENTS=probe_gatehouse:mi_malloc_aligned. Starts its own bench-upstream and gateway (the
# bench config of bench-run: named key, trusted headers, passthrough backend key).
#
#   benches/scripts/perf-stat.sh GATEHOUSE_BIN [apikey|backend|list20|list200|create] [SECONDS]
#
# Needs perf, wrk, taskset and a release build of bench-upstream beside GATEHOUSE_BIN
# (or BENCH_UPSTREAM=path). PERF_RECORD=1 also writes a call-graph profile (perf.data in
# the work directory, printed at the end).
set -euo pipefail
gw_bin=$(readlink -f "$1"); path=${2:-apikey}; secs=${3:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
up_bin=${BENCH_UPSTREAM:-$(dirname "$gw_bin")/bench-upstream}
work=$(mktemp -d /tmp/gh-perfstat.XXXXXX)
backend_key=bench-backend-key-7f3a9c1e5d2b8f4a
named_key=ghk_bench_operator_2c9e4f7a1b3d5e8f
sandbox=3f9c2a7e-5b1d-4c8e-9a0f-6d2b8e4c1a57
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
up_port=$(free_port); gw_port=$(free_port)
sha=$(printf %s "$named_key" | sha256sum | cut -d' ' -f1)
cat > "$work/gw.toml" <<CFG
[server]
listen = "127.0.0.1:$gw_port"
threads = 1
grace_period_seconds = 0
graceful_shutdown_timeout_seconds = 1
[upstream]
url = "http://127.0.0.1:$up_port"
api_key = "$backend_key"
connect_timeout_ms = 1000
[auth]
mode = "api_key_and_user"
backend_key_passthrough = true
[[auth.api_keys]]
name = "bench-operator"
sha256 = "$sha"
role = "operator"
team = "bench-team"
[auth.trusted_header]
trusted_proxies = ["127.0.0.1/32"]
[policy]
path = "$root/policies/roles.toml"
reload_interval_ms = 1000
[scope]
cache_ttl_seconds = 30
[audit]
sink = "file"
path = "$work/audit.jsonl"
CFG
# EVENTS=off isolates the requests' own cost (no background listing of the lifecycle
# event poll, which bench-run's gateway runs: source "auto" falls back to polling).
[ -n "${EVENTS:-}" ] && printf '[events]\nsource = "%s"\n' "$EVENTS" >> "$work/gw.toml"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 0 "$up_bin" --listen "127.0.0.1:$up_port" --api-key "$backend_key" > "$work/up.log" 2>&1 &
pids+=($!)
RUST_LOG=${GW_LOG:-info} GATEHOUSE_UPSTREAM_API_KEY= taskset -c 0 "$gw_bin" --config "$work/gw.toml" > "$work/gw.log" 2>&1 &
gw_pid=$!; pids+=($gw_pid)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gw_port/healthz" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$gw_port/v1/sandboxes/$sandbox"; method=GET; hdrs=(-H "OPEN-SANDBOX-API-KEY: $named_key")
case $path in
  apikey) ;;
  backend) hdrs=(-H "OPEN-SANDBOX-API-KEY: $backend_key") ;;
  list20|list200) url="http://127.0.0.1:$gw_port/v1/sandboxes?pageSize=${path#list}"
    hdrs=(-H "X-OpenSandbox-User: alice@example.com" -H "X-OpenSandbox-Team: bench-team") ;;
  create) url="http://127.0.0.1:$gw_port/v1/sandboxes"; method=POST ;;
esac
body=(); [ "$method" = POST ] && body=(-H "Content-Type: application/json" --data-binary "@$root/benches/scripts/create.json")
curl -s -o /dev/null -w "check: %{http_code}\n" -X "$method" "${hdrs[@]}" "${body[@]}" "$url"
lua=$work/req.lua
{ echo "wrk.method = \"$method\""
  [ "$method" = POST ] && printf 'wrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$(cat "$root/benches/scripts/create.json")"
  echo 'done = function(summary) io.stderr:write("REQUESTS " .. summary.requests .. "\n") end'
} > "$lua"
taskset -c 1 wrk -t2 -c16 -d1s -s "$lua" "${hdrs[@]}" "$url" >/dev/null 2>&1   # warm-up
perf_out=$work/perf.txt
if [ "${PERF_RECORD:-0}" = 1 ]; then
  perf record ${PERF_RECORD_ARGS:--g} -o "$work/perf.data" -p "$gw_pid" -- sleep "$secs" 2>/dev/null &
else
  perf stat -x, -e "task-clock${PERF_EVENTS:+,$PERF_EVENTS}" -p "$gw_pid" -o "$perf_out" -- sleep "$secs" &
fi
perf_pid=$!
taskset -c 1 wrk -t2 -c16 -d"${secs}s" -s "$lua" "${hdrs[@]}" "$url" > "$work/wrk.txt" 2> "$work/wrk.err" || true
wait "$perf_pid" || true
reqs=$(sed -n 's/^REQUESTS //p' "$work/wrk.err")
echo "path=$path requests=$reqs ($(grep -o 'Requests/sec:.*' "$work/wrk.txt"); non2xx: $(grep -c Non-2xx "$work/wrk.txt"))"
if [ "${PERF_RECORD:-0}" = 1 ]; then
  echo "profile: $work/perf.data"
else
  awk -F, -v n="$reqs" '/task-clock/{printf "task-clock/req %.2f us\n", $1*1000/n; next}
    $3 != "" && $1 ~ /^[0-9.]+$/ {printf "%s/req %.2f\n", $3, $1/n}' "$perf_out"
fi
echo "rss_kb=$(awk '/VmRSS/{print $2}' /proc/$gw_pid/status) work=$work"
if [ -n "${IDLE_CONNS:-}" ]; then
  # RSS with IDLE_CONNS keep-alive connections, each after one request (as bench-run's
  # memory step, with a fresh gateway: restart to compare builds fairly).
  python3 - "$gw_port" "$IDLE_CONNS" "$gw_pid" "$named_key" "$sandbox" <<'PY'
import resource, socket, sys, time
port, n, pid, key, sb = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
rss = lambda: int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
before = rss(); conns = []
req = f"GET /v1/sandboxes/{sb} HTTP/1.1\r\nHost: x\r\nOPEN-SANDBOX-API-KEY: {key}\r\n\r\n".encode()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got: got += s.recv(65536)
    head, _, body = got.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length: body += s.recv(65536)
    conns.append(s)
time.sleep(1)
after = rss()
print(f"idle: rss before {before} KB, with {n} connections {after} KB, {(after - before) / n:.1f} KB each")
PY
fi
