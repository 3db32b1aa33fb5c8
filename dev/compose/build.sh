#!/usr/bin/env bash
# Build Docker Compose v2 from its Go module at a pinned version and cache the binary
# (there is no `docker compose` plugin on these machines and no image can be pulled).
# A warm run only prints the path.
#
#   dev/compose/build.sh        # prints: GATEHOUSE_COMPOSE=/.../docker-compose
#
# `go install github.com/docker/compose/v2/cmd@vX` refuses the module (its go.mod has
# `exclude` directives), so a throwaway wrapper module requires it and repeats them.
# Debian's docker-compose package is Compose v1 (Python, end of life since 2023).
#
# Env: GATEHOUSE_CACHE_DIR  cache root (default: $HOME/.cache/gatehouse)
set -euo pipefail
COMPOSE_VERSION=v2.40.3
CACHE_ROOT="${GATEHOUSE_CACHE_DIR:-${HOME}/.cache/gatehouse}"
DIR="${CACHE_ROOT}/compose/${COMPOSE_VERSION}"
BIN="${DIR}/docker-compose"
if [[ -x "${BIN}" ]]; then echo "GATEHOUSE_COMPOSE=${BIN}"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:${PATH}"
fi
command -v go >/dev/null 2>&1 || { echo "dev/compose/build.sh: go not found (Go >= 1.24)" >&2; exit 1; }
mkdir -p "${DIR}"
exec 9>"${DIR}/.lock"
flock 9
if [[ -x "${BIN}" ]]; then echo "GATEHOUSE_COMPOSE=${BIN}"; exit 0; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-compose-build.XXXXXX")"
LOG="${DIR}/build.log"
trap 'rc=$?; [[ $rc -eq 0 ]] || { echo "dev/compose/build.sh failed; last lines of ${LOG}:" >&2; tail -n 30 "${LOG}" >&2; }; rm -rf "${WORK}"' EXIT
export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod"
cd "${WORK}"
go mod download -json "github.com/docker/compose/v2@${COMPOSE_VERSION}" >download.json 2>>"${LOG}"
served="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' download.json)"
[[ -f "${served}" ]] || { echo "cannot find the go.mod of compose ${COMPOSE_VERSION}" >&2; exit 1; }
{
  echo "module gatehouse.local/compose-build"
  echo
  grep -m1 '^go ' "${served}"
  echo
  echo "require github.com/docker/compose/v2 ${COMPOSE_VERSION}"
  echo
  # The exclude block of the served go.mod, as it is.
  sed -n '/^exclude (/,/^)/p' "${served}"
} >go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/docker/compose/v2/cmd"\n' >tools.go
go mod tidy >>"${LOG}" 2>&1
go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=${COMPOSE_VERSION}" \
  -o "${WORK}/docker-compose" github.com/docker/compose/v2/cmd >>"${LOG}" 2>&1
mv "${WORK}/docker-compose" "${BIN}"
echo "GATEHOUSE_COMPOSE=${BIN}"
