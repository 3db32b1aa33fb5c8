#!/usr/bin/env bash
# `make up`: run the whole system in the foreground: the lifecycle backend on
# http://127.0.0.1:8090, the gateway on http://127.0.0.1:8080, the dev IdP on :9000.
#
# GATEHOUSE_RUNTIME=docker (default). Engine: DOCKER_HOST if it answers, else the default
# socket; when neither answers and we are root on Debian, a private engine is started the
# way the tests start theirs.
#
# GATEHOUSE_STORE=sqlite (default): the governance store (durable audit, personal API
# keys, RBAC bindings) is the SQLite file .state/gatehouse.db that config/gatehouse.toml
# names. GATEHOUSE_STORE=postgres: PostgreSQL at GATEHOUSE_STORE_URL, or, when that is
# unset, a local DEV-ONLY PostgreSQL in .state/pg (dev/scripts/postgres.sh, stopped by
# `make down`); the gateway gets GATEHOUSE__STORE__TYPE=postgres and
# GATEHOUSE__STORE__URL_ENV=GATEHOUSE_STORE_URL (environment overrides of [store]).
#
# GATEHOUSE_RUNTIME=kubernetes. Cluster: KUBECONFIG if set (sandboxes go to its current
# namespace, or GATEHOUSE_KUBE_NAMESPACE; pods run as GATEHOUSE_KUBE_SERVICE_ACCOUNT, else
# the namespace's default). Without KUBECONFIG, the local API-server-only test cluster
# (dev/kubernetes/, state in .state/kube, stopped by `make down`) with the DEV-ONLY test
# kubelet, which runs no containers but reports pods Running and answers HTTP on their ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .state
dev/scripts/prereqs.sh
runtime=${GATEHOUSE_RUNTIME:-docker}
backend_config=config/backend.toml
kubelet_needed=""

start_docker() {
  if [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    echo "using the Docker engine at $DOCKER_HOST"
  elif [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] && DOCKER_HOST=unix:///var/run/docker.sock docker info >/dev/null 2>&1; then
    export DOCKER_HOST=unix:///var/run/docker.sock
    echo "using the Docker engine at $DOCKER_HOST"
  elif [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    dev/scripts/install-deps.sh
    export GATEHOUSE_STATE_DIR=$PWD/.state
    DOCKER_HOST=$(dev/scripts/docker-engine.sh start gatehouse-dev)
    export DOCKER_HOST
    echo "started a private Docker engine at $DOCKER_HOST (stop it with: make down)"
  else
    echo "No Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}." >&2
    command -v docker >/dev/null || echo "  - the docker CLI is missing (Debian: apt-get install docker.io)" >&2
    command -v dockerd >/dev/null || echo "  - no engine is installed (Debian: apt-get install docker.io)" >&2
    echo "  Start one (systemctl start docker) or set DOCKER_HOST, or run make up as root on Debian" >&2
    echo "  to let it start a private engine." >&2
    exit 1
  fi
  dev/scripts/test-image.sh gatehouse/busybox:latest >/dev/null
}

start_kubernetes() {
  local kubeconfig ns sa
  if [ -n "${KUBECONFIG:-}" ]; then
    kubeconfig=$KUBECONFIG
    echo "using the Kubernetes cluster of KUBECONFIG=$kubeconfig"
    ns=${GATEHOUSE_KUBE_NAMESPACE:-}
    sa=${GATEHOUSE_KUBE_SERVICE_ACCOUNT:-}
  else
    if [ -f .state/kube/env ] && (. .state/kube/env && curl -fsS -o /dev/null --max-time 2 --cacert "$GATEHOUSE_KUBE_CA_FILE" \
      -H "Authorization: Bearer $GATEHOUSE_KUBE_TOKEN" "$GATEHOUSE_KUBE_SERVER/readyz"); then
      echo "using the local test cluster in .state/kube"
    else
      dev/kubernetes/cluster.sh stop .state/kube >/dev/null 2>&1 || true
      dev/kubernetes/cluster.sh start .state/kube
      echo "started a local kube-apiserver + etcd in .state/kube (stop it with: make down)"
    fi
    # shellcheck disable=SC1091
    . .state/kube/env
    kubeconfig=$KUBECONFIG
    ns=default sa=sandbox
    # No controller-manager creates ServiceAccounts here: make the one the pods name.
    curl -sS -o /dev/null --cacert "$GATEHOUSE_KUBE_CA_FILE" -H "Authorization: Bearer $GATEHOUSE_KUBE_TOKEN" \
      -H 'content-type: application/json' -d '{"metadata":{"name":"sandbox"}}' \
      "$GATEHOUSE_KUBE_SERVER/api/v1/namespaces/default/serviceaccounts"
    kubelet_needed=$kubeconfig
  fi
  backend_config=.state/backend-kubernetes.toml
  {
    printf '[server]\nhost = "127.0.0.1"\nport = 8090\nmax_sandbox_timeout_seconds = 86400\nmin_sandbox_timeout_seconds = 60\n\n'
    printf '[runtime]\ntype = "kubernetes"\n\n[kubernetes]\nkubeconfig_path = "%s"\n' "$kubeconfig"
    [ -n "$ns" ] && printf 'namespace = "%s"\n' "$ns"
    [ -n "$sa" ] && printf 'service_account = "%s"\n' "$sa"
    printf '\n[store]\ntype = "sqlite"\npath = "backend-kubernetes.db"\n'
  } >"$backend_config"
}

case "$runtime" in
  docker) start_docker ;;
  kubernetes) start_kubernetes ;;
  *) echo "GATEHOUSE_RUNTIME must be docker or kubernetes, not '$runtime'" >&2; exit 1 ;;
esac

command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js and npm are needed for the console and the dev IdP (Debian: apt-get install nodejs npm)" >&2; exit 1; }
[ -d dev/idp/node_modules ] || (cd dev/idp && npm ci --no-audit --no-fund)
if [ -f console/package.json ]; then
  [ -d console/node_modules ] || (cd console && npm ci --no-audit --no-fund)
  (cd console && npm run build >/dev/null)
fi
cargo build --release -p gatehouse-backend -p gatehouse
[ -n "$kubelet_needed" ] && cargo build -q -p gatehouse-tests --bin gatehouse-test-kubelet
# The in-sandbox agent every sandbox runs (the SDK's commands, files, health checks).
GATEHOUSE_EXECD_BINARY=$(agent/build-static.sh)
export GATEHOUSE_EXECD_BINARY
store=${GATEHOUSE_STORE:-sqlite}
case "$store" in
  sqlite) store_desc="SQLite .state/gatehouse.db" ;;
  postgres)
    if [ -z "${GATEHOUSE_STORE_URL:-}" ]; then
      GATEHOUSE_STORE_URL=$(dev/scripts/postgres.sh start .state/pg)
      store_desc="PostgreSQL $GATEHOUSE_STORE_URL (DEV-ONLY, data in .state/pg; stop it with: make down)"
    else
      store_desc="PostgreSQL at GATEHOUSE_STORE_URL"
    fi
    export GATEHOUSE_STORE_URL GATEHOUSE__STORE__TYPE=postgres GATEHOUSE__STORE__URL_ENV=GATEHOUSE_STORE_URL
    ;;
  *) echo "GATEHOUSE_STORE must be sqlite or postgres, not '$store'" >&2; exit 1 ;;
esac

key=${GATEHOUSE_DEMO_API_KEY:-}
generated=""
if [ -z "$key" ]; then
  key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  generated=" (generated; set GATEHOUSE_DEMO_API_KEY to choose it)"
fi
export GATEHOUSE_BACKEND_API_KEY=$key GATEHOUSE_UPSTREAM_API_KEY=$key
export GATEHOUSE_OIDC_CLIENT_SECRET=${GATEHOUSE_OIDC_CLIENT_SECRET:-gatehouse-dev-secret}
export IDP_CLIENT_SECRET=$GATEHOUSE_OIDC_CLIENT_SECRET IDP_PORT=9000
export IDP_REDIRECT_URIS=http://127.0.0.1:8080/auth/callback
export IDP_POST_LOGOUT_REDIRECT_URIS=http://127.0.0.1:8080/console/
export IDP_BACKCHANNEL_LOGOUT_URI=http://127.0.0.1:8080/auth/backchannel-logout
export IDP_JWKS_FILE=$PWD/.state/idp-jwks.json

node dev/idp/server.mjs > .state/idp.log 2>&1 &
idp=$!

target/release/gatehouse-backend --config "$backend_config" > .state/backend.log 2>&1 &
backend=$!
kubelet=""
if [ -n "$kubelet_needed" ]; then
  target/debug/gatehouse-test-kubelet "$kubelet_needed" > .state/kubelet.log 2>&1 &
  kubelet=$!
fi
trap 'kill $backend $idp $kubelet 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/8090) 2>/dev/null && break
  kill -0 $backend 2>/dev/null || { echo "the backend failed to start:" >&2; tail -20 .state/backend.log >&2; exit 1; }
  sleep 0.2
done

cat <<TXT

  Gatehouse      http://127.0.0.1:8080   (gateway; backend on 127.0.0.1:8090, log .state/backend.log)
  Runtime        $runtime
  Store          $store_desc
  Console        http://127.0.0.1:8080/console/
  Automation key $key$generated

  Sign in to the console through the DEV-ONLY identity provider (http://127.0.0.1:9000,
  log .state/idp.log) as alice (team-a, operator), bob (team-a, read_only),
  carol (team-b, operator) or dana (service_admin through a binding in the store: the
  Bindings page); any password is accepted. Personal API keys: the console's API keys page.

  The OpenSandbox SDK and CLI work unchanged against the gateway (every sandbox runs
  the in-sandbox agent $GATEHOUSE_EXECD_BINARY):
    export OPEN_SANDBOX_API_KEY=$key OPEN_SANDBOX_DOMAIN=localhost:8080
    osb sandbox create --image gatehouse/busybox:latest --entrypoint sleep --entrypoint 3600
  (osb: pip install opensandbox-cli==1.1.1, or .venv/bin/osb once make test has run)
  curl -s -H "OPEN-SANDBOX-API-KEY: $key" http://127.0.0.1:8080/v1/sandboxes
  curl -s -H "OPEN-SANDBOX-API-KEY: $key" -H 'content-type: application/json' \\
       -d '{"image":{"uri":"gatehouse/busybox:latest"},"entrypoint":["httpd","-f","-p","8080","-h","/www"],"timeout":600}' \\
       http://127.0.0.1:8080/v1/sandboxes

TXT
# Bootstrap: the dev IdP's dana is service_admin through a binding in the store (the
# path a real deployment uses for its first administrator); done once per store.
if ! target/release/gatehouse --config config/gatehouse.toml rbac list 2>/dev/null | grep -q '"name":"dana"'; then
  target/release/gatehouse --config config/gatehouse.toml rbac bind subject dana service_admin >/dev/null \
    || echo "warning: could not bind dana to service_admin (gatehouse rbac bind subject dana service_admin)" >&2
fi
target/release/gatehouse --config config/gatehouse.toml
