#!/usr/bin/env bash
# Build a stand-in for upstream OpenSandbox's execd image, so the real upstream lifecycle
# server (`opensandbox-server`) runs offline against the test engine.
#
#   DOCKER_HOST=... scripts/upstream-image.sh [TAG]   (default gatehouse/execd-standin:latest)
#
# The upstream server (services/docker/runtime.py) starts the execd image once with
# `tail -f /dev/null`, copies `/execd` and `/bootstrap.sh` out of it with `docker cp`
# semantics, puts both into every sandbox under /opt/opensandbox/, and creates the sandbox
# with entrypoint `/opt/opensandbox/bootstrap.sh` and the request's entrypoint as command.
# Clients (the SDK) then wait for execd to answer `GET /ping` on port 44772. Here:
# - /execd is a shell script that serves `/ping` (200, body "pong") with busybox httpd on
#   44772 from a web root it creates next to itself;
# - /bootstrap.sh starts the execd next to it in the background, then `exec "$@"`.
# Both are plain files (not directories), so they land at /opt/opensandbox/execd and
# /opt/opensandbox/bootstrap.sh. Sandbox images need /bin/sh, mkdir and httpd (busybox).
# Idempotent: does nothing when TAG exists. Builds FROM the busybox test image (built
# first with scripts/test-image.sh when missing); nothing is pulled.
set -euo pipefail
tag=${1:-gatehouse/execd-standin:latest}
base=${GATEHOUSE_TEST_IMAGE:-gatehouse/busybox:latest}
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
here=$(cd "$(dirname "$0")" && pwd)
"$here/test-image.sh" "$base" >/dev/null

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cat >"$ctx/execd" <<'SH'
#!/bin/sh
# Stand-in for OpenSandbox execd: `GET /ping` -> 200 on port 44772 (busybox httpd).
www="$(dirname "$0")/execd-www"
mkdir -p "$www" 2>/dev/null || { www=/tmp/execd-www; mkdir -p "$www"; }
echo pong >"$www/ping"
exec httpd -f -p 44772 -h "$www"
SH
cat >"$ctx/bootstrap.sh" <<'SH'
#!/bin/sh
# Stand-in for OpenSandbox's bootstrap.sh: start execd in the background, then run the
# sandbox entrypoint as the main process (or keep running execd when there is none).
dir="$(dirname "$0")"
"$dir/execd" &
if [ "$#" -eq 0 ]; then wait; exit $?; fi
exec "$@"
SH
chmod 0755 "$ctx/execd" "$ctx/bootstrap.sh"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY execd bootstrap.sh /
LABEL org.gatehouse.image=execd-standin
DOCKERFILE
# The classic builder: this engine may have no BuildKit. It complains that it is
# deprecated on stderr, so stderr is shown only when the build fails.
if ! DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  exit 1
fi
echo "built $tag"
