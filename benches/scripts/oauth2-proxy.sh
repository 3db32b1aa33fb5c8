#!/usr/bin/env bash
# Builds oauth2-proxy (the peer behind nginx `auth_request` in `make bench`) from its Go
# module, once per version, into ~/.cache/gatehouse/oauth2-proxy/<version>/oauth2-proxy.
# Prints the binary's path on success. A warm cache does not rebuild.
#
#   benches/scripts/oauth2-proxy.sh            # build (or find) the pinned version
#   OAUTH2_PROXY_VERSION=v7.x.y benches/scripts/oauth2-proxy.sh
set -euo pipefail
version=${OAUTH2_PROXY_VERSION:-v7.15.6}
module=github.com/oauth2-proxy/oauth2-proxy/v7
cache=${GATEHOUSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse}/oauth2-proxy/$version
bin=$cache/oauth2-proxy
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "go is not installed (Go 1.24+ is needed to build oauth2-proxy $version)" >&2
  exit 1
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# `go install module@version` builds the module as released (its go.mod, its go.sum),
# outside any workspace; -trimpath and no VCS stamping keep the build reproducible.
GOBIN=$tmp GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0 \
  go install -trimpath -ldflags "-s -w -X $module/pkg/version.VERSION=$version" "$module@$version" >&2
mv -f "$tmp/oauth2-proxy" "$bin"
"$bin" --version >&2
echo "$bin"
