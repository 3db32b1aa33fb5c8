#!/usr/bin/env bash
# `make up`: run the whole system in the foreground. For now: the lifecycle backend on
# http://127.0.0.1:8090 against a Docker engine.
#
# Engine: DOCKER_HOST if it answers, else the default socket; when neither answers and we
# are root on Debian, a private engine is started the way the tests start theirs.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .state

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

command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js and npm are needed for the console and the dev IdP (Debian: apt-get install nodejs npm)" >&2; exit 1; }
[ -d dev/idp/node_modules ] || (cd dev/idp && npm ci --no-audit --no-fund)
if [ -f console/package.json ]; then
  [ -d console/node_modules ] || (cd console && npm ci --no-audit --no-fund)
  (cd console && npm run build >/dev/null)
fi
cargo build --release -p gatehouse-backend -p gatehouse
# The in-sandbox agent every sandbox runs (the SDK's commands, files, health checks).
GATEHOUSE_EXECD_BINARY=$(agent/build-static.sh)
export GATEHOUSE_EXECD_BINARY
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

target/release/gatehouse-backend --config config/backend.toml > .state/backend.log 2>&1 &
backend=$!
trap 'kill $backend $idp 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/8090) 2>/dev/null && break
  kill -0 $backend 2>/dev/null || { echo "the backend failed to start:" >&2; tail -20 .state/backend.log >&2; exit 1; }
  sleep 0.2
done

cat <<TXT

  Gatehouse      http://127.0.0.1:8080   (gateway; backend on 127.0.0.1:8090, log .state/backend.log)
  Console        http://127.0.0.1:8080/console/
  Automation key $key$generated

  Sign in to the console through the DEV-ONLY identity provider (http://127.0.0.1:9000,
  log .state/idp.log) as alice (team-a, operator), bob (team-a, read_only) or
  carol (team-b, operator); any password is accepted.

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
target/release/gatehouse --config config/gatehouse.toml
