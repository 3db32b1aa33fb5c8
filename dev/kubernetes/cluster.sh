#!/usr/bin/env bash
# Run a real etcd + kube-apiserver on 127.0.0.1 for tests (no kubelet, scheduler or
# controller-manager: tests play kubelet themselves).
#
#   dev/kubernetes/cluster.sh start DIR   # fresh cluster; writes DIR/kubeconfig and DIR/env
#   dev/kubernetes/cluster.sh env DIR     # prints DIR/env (eval "$(cluster.sh env DIR)")
#   dev/kubernetes/cluster.sh stop DIR    # stops both processes by pid and waits
#
# DIR/env exports KUBECONFIG, GATEHOUSE_KUBE_SERVER, GATEHOUSE_KUBE_TOKEN,
# GATEHOUSE_KUBE_CA_FILE, GATEHOUSE_KUBE_ETCD_URL, GATEHOUSE_KUBE_APISERVER_PID,
# GATEHOUSE_KUBE_ETCD_PID. Logs: DIR/etcd.log, DIR/kube-apiserver.log.
# Env: GATEHOUSE_KUBE_START_TIMEOUT (seconds to wait for /readyz, default 90),
#      GATEHOUSE_KUBE_STOP_GRACE (whole seconds per process between SIGTERM and SIGKILL, default
#      10; 0 = SIGKILL at once),
#      GATEHOUSE_KUBE_APISERVER_ARGS (extra kube-apiserver flags, split on spaces).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }

# Seconds since the epoch with milliseconds, for timing.
now() { date +%s.%3N; }

# Print N distinct free TCP ports on 127.0.0.1 (kernel-chosen, so collisions are unlikely).
free_ports() {
  local n="$1"
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
  else
    # Fallback: random ports that nothing answers on.
    local ports=() p
    while ((${#ports[@]} < n)); do
      p=$((20000 + RANDOM % 40000))
      [[ " ${ports[*]} " == *" $p "* ]] && continue
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
      ports+=("$p")
    done
    echo "${ports[*]}"
  fi
}

# True if PID exists and has not exited. An exited process stays a zombie until its
# parent (init, once cluster.sh start has returned) reaps it; count that as gone.
running() {
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# True if PID is alive and runs the binary named NAME (guards against pid reuse).
pid_is() {
  local pid="$1" name="$2" cmdline
  [[ -n "$pid" ]] && running "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"/${name} "* ]]
}

# Stop the given "PID:NAME" processes (those still running NAME): SIGTERM all at once,
# wait up to GATEHOUSE_KUBE_STOP_GRACE seconds (default 10), then SIGKILL what is left.
# GATEHOUSE_KUBE_STOP_GRACE=0 kills at once (fastest; the cluster's data is throwaway).
stop_pids() {
  local item pid name pids=() i
  for item in "$@"; do
    pid="${item%%:*}" name="${item#*:}"
    pid_is "$pid" "$name" || continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  ((${#pids[@]})) || return 0
  alive() { local p; for p in "${pids[@]}"; do running "$p" && return 0; done; return 1; }
  for ((i = 0; i < ${GATEHOUSE_KUBE_STOP_GRACE:-10} * 20; i++)); do
    alive || return 0
    sleep 0.05
  done
  for pid in "${pids[@]}"; do
    if running "$pid"; then
      ((${GATEHOUSE_KUBE_STOP_GRACE:-10} == 0)) || echo "cluster.sh: pid $pid still running after SIGTERM, killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${pids[@]}"; do
    while running "$pid"; do sleep 0.05; done
  done
}

cmd_stop() {
  local dir="$1"
  # apiserver first: stopped together, it hangs on its etcd connections until killed.
  stop_pids "$(cat "$dir/apiserver.pid" 2>/dev/null || true):kube-apiserver"
  stop_pids "$(cat "$dir/etcd.pid" 2>/dev/null || true):etcd"
  rm -f "$dir/apiserver.pid" "$dir/etcd.pid" "$dir/env"
}

cmd_env() {
  local dir="$1"
  [[ -f "$dir/env" ]] || { echo "cluster.sh: no cluster env in $dir" >&2; exit 1; }
  cat "$dir/env"
}

# Self-made CA, serving cert and service-account key, all with openssl.
make_pki() {
  local pki="$1"
  mkdir -p "$pki"
  cat >"$pki/apiserver.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
  # EC keys are fast to generate; the service-account signing key must be RSA.
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 -subj "/CN=gatehouse-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj "/CN=kube-apiserver"
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -out "$pki/apiserver.crt" -days 3650 -extfile "$pki/apiserver.ext"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
  } 2>"$pki/openssl.log"
}

# EXIT trap while starting: on failure show the logs' tails and stop what was started.
on_start_failure() {
  local rc=$?
  ((rc == 0)) && return 0
  echo "cluster.sh: start failed (exit $rc); logs in $START_DIR" >&2
  tail -n 15 "$START_DIR/pki/openssl.log" "$START_DIR/etcd.log" "$START_DIR/kube-apiserver.log" >&2 2>/dev/null || true
  cmd_stop "$START_DIR"
  exit "$rc"
}

cmd_start() {
  local dir="$1" t0 bins kube_apiserver etcd etcd_port peer_port api_port token
  t0="$(now)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"

  # Refuse to clobber a cluster that is still running from this DIR.
  if pid_is "$(cat "$dir/apiserver.pid" 2>/dev/null || true)" kube-apiserver ||
    pid_is "$(cat "$dir/etcd.pid" 2>/dev/null || true)" etcd; then
    echo "cluster.sh: a cluster is already running in $dir (stop it first)" >&2
    exit 1
  fi

  bins="$("$HERE/build.sh")"
  kube_apiserver="$(sed -n 's/^KUBE_APISERVER=//p' <<<"$bins")"
  etcd="$(sed -n 's/^ETCD=//p' <<<"$bins")"

  rm -rf "$dir/etcd-data" "$dir/pki" "$dir/env" "$dir/kubeconfig"
  read -r etcd_port peer_port api_port <<<"$(free_ports 3)"

  # etcd: single member, fresh data dir, loopback only. No fsync: data is throwaway.
  "$etcd" --name gatehouse --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "gatehouse=http://127.0.0.1:$peer_port" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn \
    </dev/null >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  # If anything below fails, do not leave processes behind.
  START_DIR="$dir"
  trap on_start_failure EXIT

  # Certificates and keys are made while etcd starts.
  make_pki "$dir/pki"
  token="$(openssl rand -hex 32)"
  # token,user,uid,"group1,group2"
  printf '%s,admin,admin,"system:masters"\n' "$token" >"$dir/pki/tokens.csv"
  chmod 600 "$dir/pki/tokens.csv" "$dir/pki/"*.key

  local extra_args=()
  read -r -a extra_args <<<"${GATEHOUSE_KUBE_APISERVER_ARGS:-}"
  "$kube_apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$dir/pki" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --token-auth-file "$dir/pki/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --api-audiences https://kubernetes.default.svc,gatehouse \
    --service-account-key-file "$dir/pki/sa.pub" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --endpoint-reconciler-type none \
    --enable-priority-and-fairness=false \
    --profiling=false \
    "${extra_args[@]}" \
    </dev/null >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/apiserver.pid"

  # Wait for /readyz (all post-start hooks done, e.g. RBAC bootstrap roles).
  local server="https://127.0.0.1:$api_port" deadline
  deadline=$((SECONDS + ${GATEHOUSE_KUBE_START_TIMEOUT:-90}))
  until curl -fsS -o /dev/null --max-time 2 --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $token" "$server/readyz" 2>/dev/null; do
    if ! pid_is "$(cat "$dir/apiserver.pid")" kube-apiserver || ! pid_is "$(cat "$dir/etcd.pid")" etcd; then
      echo "cluster.sh: a process exited during startup" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      echo "cluster.sh: /readyz not ok after ${GATEHOUSE_KUBE_START_TIMEOUT:-90}s" >&2
      curl -sS --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" "$server/readyz?verbose" >&2 || true
      exit 1
    fi
    sleep 0.1
  done

  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gatehouse-test
  cluster:
    server: $server
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: gatehouse-test
  context:
    cluster: gatehouse-test
    user: admin
current-context: gatehouse-test
EOF
  chmod 600 "$dir/kubeconfig"

  {
    printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
    printf 'export GATEHOUSE_KUBE_SERVER=%q\n' "$server"
    printf 'export GATEHOUSE_KUBE_TOKEN=%q\n' "$token"
    printf 'export GATEHOUSE_KUBE_CA_FILE=%q\n' "$dir/pki/ca.crt"
    printf 'export GATEHOUSE_KUBE_ETCD_URL=%q\n' "http://127.0.0.1:$etcd_port"
    printf 'export GATEHOUSE_KUBE_APISERVER_PID=%q\n' "$(cat "$dir/apiserver.pid")"
    printf 'export GATEHOUSE_KUBE_ETCD_PID=%q\n' "$(cat "$dir/etcd.pid")"
  } >"$dir/env"
  trap - EXIT

  echo "cluster.sh: kube-apiserver ready at $server in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s; env: $dir/env" >&2
}

[[ $# -eq 2 ]] || usage
case "$1" in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  env) cmd_env "$2" ;;
  *) usage ;;
esac
