#!/usr/bin/env bash
# `make test`: install what is missing, start a private Docker engine, build the sandbox
# test image and the Python SDK venv, build (or find cached) a real kube-apiserver + etcd
# and start one loopback cluster, then lint, build once and run every test. It stops what
# it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
# One-shot build: incremental artefacts would only cost disk (gigabytes) and time here.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

dev/scripts/install-deps.sh
# The real kube-apiserver + etcd of the Kubernetes tests (dev/kubernetes/): cached in
# ~/.cache/gatehouse/kubernetes, so a warm run only prints paths; a cold build (~8.5 min)
# runs in the background, overlapping the venv, npm and cargo work below.
kube_build_log=$(mktemp)
dev/kubernetes/build.sh >"$kube_build_log" 2>&1 &
kube_build_pid=$!
# Docker Compose v2 for the compose stack's test (dev/compose/build.sh): cached in
# ~/.cache/gatehouse/compose; a cold build (~5 min) also runs in the background.
compose_build_log=$(mktemp)
dev/compose/build.sh >"$compose_build_log" 2>&1 &
compose_build_pid=$!
dev/scripts/python-venv.sh .venv
echo "== npm: dev IdP, browser tests, console (typecheck, unit tests, build)"
(cd dev/idp && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
(cd console && npm ci --no-audit --no-fund --loglevel=error && npm run typecheck && npm test && npm run build)

engine=gatehouse-test-$$
export GATEHOUSE_STATE_DIR=${GATEHOUSE_STATE_DIR:-/tmp}
kube_dir=${GATEHOUSE_STATE_DIR}/gatehouse-kube-$$
# Each step may fail (a busy network-namespace mount, an engine already gone) without
# skipping the next: nothing started here outlives the run.
cleanup() {
  set +e
  GATEHOUSE_KUBE_STOP_GRACE=0 dev/kubernetes/cluster.sh stop "$kube_dir" >/dev/null 2>&1
  rm -rf "$kube_dir" "$kube_build_log" 2>/dev/null
  dev/scripts/docker-engine.sh stop "$engine" >/dev/null 2>&1
  umount "${GATEHOUSE_STATE_DIR:?}/$engine/exec/netns/default" 2>/dev/null
  rm -rf "${GATEHOUSE_STATE_DIR:?}/$engine" 2>/dev/null
  return 0
}
trap cleanup EXIT
DOCKER_HOST=$(dev/scripts/docker-engine.sh start "$engine")
export DOCKER_HOST
dev/scripts/test-image.sh gatehouse/busybox:latest

echo "== the in-sandbox agent (static gatehouse-execd; cargo caches it)"
GATEHOUSE_EXECD_BINARY=$(agent/build-static.sh)
export GATEHOUSE_EXECD_BINARY

export GATEHOUSE_TEST_IMAGE=gatehouse/busybox:latest
export GATEHOUSE_PYTHON=$root/.venv/bin/python
export GATEHOUSE_SCRIPTS=$root/dev/scripts

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo build --workspace --all-targets"
cargo build --workspace --all-targets --locked
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== kube-apiserver + etcd for the Kubernetes tests"
if ! wait "$kube_build_pid"; then
  cat "$kube_build_log" >&2
  echo "dev/kubernetes/build.sh failed: the Kubernetes tests need a real kube-apiserver" >&2
  exit 1
fi
dev/kubernetes/cluster.sh start "$kube_dir"
# KUBECONFIG, GATEHOUSE_KUBE_SERVER, GATEHOUSE_KUBE_TOKEN, GATEHOUSE_KUBE_CA_FILE, ...
# shellcheck disable=SC1091
. "$kube_dir/env"
if ! wait "$compose_build_pid"; then
  cat "$compose_build_log" >&2
  echo "dev/compose/build.sh failed: the compose stack's test needs Docker Compose" >&2
  exit 1
fi
GATEHOUSE_COMPOSE=$(sed -n 's/^GATEHOUSE_COMPOSE=//p' "$compose_build_log")
export GATEHOUSE_COMPOSE
rm -f "$compose_build_log"
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads="${GATEHOUSE_TEST_THREADS:-4}"
echo "== benchmark smoke run"
cargo test --locked -p gatehouse-benches --benches
cargo run --locked -q -p gatehouse-benches --bin bench-run -- --smoke >/dev/null
echo "== all tests passed"
