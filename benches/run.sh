#!/usr/bin/env bash
# `make bench`: the proxy-latency benchmark of issue 6 (see benches/README.md).
#
# 1. installs cmake, nginx, haproxy and wrk with apt when they are missing (root on Debian;
#    otherwise the paths that need them are skipped and the report says so);
# 2. builds oauth2-proxy from its Go module in the background (benches/scripts/oauth2-proxy.sh,
#    cached per version under ~/.cache/gatehouse/oauth2-proxy/; a failed build skips the
#    nginx-oauth2 path with the reason), while it builds the gateway, bench-upstream,
#    bench-auth, the Pingora and hyper floors, bench-run and the criterion benches in
#    release mode, in one cargo invocation;
# 3. runs the criterion micro-benchmarks briefly (BENCH_MICRO=0 skips them);
# 4. runs bench-run, which writes target/bench/report.md and target/bench/report.json.
#
# Arguments are passed to bench-run (e.g. `benches/run.sh --rounds 5`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
start=$(date +%s)

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
install_peers() {
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' own services (nginx on :80, haproxy) from being started.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  local rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
  return "$rc"
}
apt_pid=""
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${need[*]}"
    if [[ " ${need[*]} " == *" cmake "* ]]; then
      install_peers "${need[@]}"        # the build needs cmake: wait for it
    else
      install_peers "${need[@]}" &      # only the peers: install while cargo builds
      apt_pid=$!
    fi
  else
    echo "missing: ${need[*]} (apt-get install -y ${need[*]}); the paths that need them are skipped" >&2
  fi
fi

mkdir -p "$target/bench"
# oauth2-proxy, the peer behind nginx auth_request on the nginx-oauth2 path: built from its
# Go module while cargo builds (a warm cache answers at once).
o2p_log=$target/bench/oauth2-proxy-build.log
o2p_out=$target/bench/oauth2-proxy.path
benches/scripts/oauth2-proxy.sh > "$o2p_out" 2> "$o2p_log" &
o2p_pid=$!

echo "== cargo build --release (gatehouse, bench binaries, criterion benches)"
# Only the gateway's criterion bench: `benches/lifecycle.rs` covers the backend's model, not
# the proxy's hot path, and every extra bench binary is one more LTO link on the critical
# path of a cold build (run it with `cargo bench -p gatehouse-benches --bench lifecycle`).
cargo build --release --locked -p gatehouse -p gatehouse-benches --bins \
  --bench gateway \
  --message-format=json-render-diagnostics > "$target/bench/cargo-build.json"
echo "   built in $(( $(date +%s) - start )) s"
if [ -n "$apt_pid" ]; then
  wait "$apt_pid" || echo "installing ${need[*]} failed; the paths that need them are skipped" >&2
fi
if wait "$o2p_pid"; then
  o2p_args=(--oauth2-proxy "$(tail -n 1 "$o2p_out")")
  echo "   oauth2-proxy: $(tail -n 1 "$o2p_out")"
else
  why="building oauth2-proxy failed: $(grep -v -e '^go: downloading' -e '^[[:space:]]' "$o2p_log" \
    | tail -n 1 | cut -c1-300)"
  echo "$why (log: $o2p_log); nginx-oauth2 is skipped" >&2
  o2p_args=(--oauth2-proxy-error "$why")
fi

if [ "${BENCH_MICRO:-1}" != 0 ]; then
  echo "== criterion micro-benchmarks"
  export CRITERION_HOME=$target/criterion
  grep '"kind":\["bench"\]' "$target/bench/cargo-build.json" \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | sort -u \
    | while read -r exe; do
        "$exe" --bench --warm-up-time 0.3 --measurement-time 0.6 --sample-size 30 --noplot 2>&1 \
          | grep -E '^[A-Za-z_/0-9. -]+$|time:' || true
      done
fi

echo "== proxy-latency benchmark"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$target/release/bench-run" --out "$target/bench" --criterion-dir "$target/criterion" \
  "${o2p_args[@]}" "$@"
echo "== make bench finished in $(( $(date +%s) - start )) s: $target/bench/report.md"
