#!/usr/bin/env bash
# Build a real kube-apiserver and etcd from their Go modules at pinned versions
# and cache the binaries. A warm run (binaries already cached) only prints paths.
#
#   dev/kubernetes/build.sh            # prints: KUBE_APISERVER=... / ETCD=...
#
# Env:
#   GATEHOUSE_CACHE_DIR  cache root (default: $HOME/.cache/gatehouse)
#   GOPATH, GOMODCACHE, GOCACHE, GOPROXY are left at whatever they are, so CI can cache them.
set -euo pipefail

# Pinned versions. etcd is the version k8s.io/kubernetes v1.37.2's go.mod pins for
# go.etcd.io/etcd/server/v3 (v3.7.0). Keep all k8s.io/* modules at one release.
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.0

CACHE_ROOT="${GATEHOUSE_CACHE_DIR:-${HOME}/.cache/gatehouse}"
VDIR="${CACHE_ROOT}/kubernetes/${KUBE_VERSION}"
BIN="${VDIR}/bin"
STAMP="${BIN}/.versions"
WANT="kube-apiserver=${KUBE_VERSION} etcd=${ETCD_VERSION}"

print_paths() {
  echo "KUBE_APISERVER=${BIN}/kube-apiserver"
  echo "ETCD=${BIN}/etcd"
}

# Fast path: everything already built for exactly these versions.
is_warm() {
  [[ -f "${BIN}/kube-apiserver" && -x "${BIN}/kube-apiserver" && -f "${BIN}/etcd" && -x "${BIN}/etcd" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" ]]
}
if is_warm; then print_paths; exit 0; fi

# Go may live outside PATH on a fresh machine.
if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:${PATH}"
fi
command -v go >/dev/null 2>&1 || { echo "build.sh: go not found" >&2; exit 1; }

mkdir -p "${BIN}"
# Serialise concurrent builds (e.g. two test runs starting together).
exec 9>"${VDIR}/.lock"
flock 9
if is_warm; then print_paths; exit 0; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-kube-build.XXXXXX")"
OUT="${WORK}/out"
mkdir -p "${OUT}"
# The go commands' chatter goes to a log; its tail is shown if the build fails.
LOG="${VDIR}/build.log"
: >"${LOG}"
on_exit() {
  local rc=$?
  if ((rc != 0)); then
    echo "build.sh: build failed (exit ${rc}); last lines of ${LOG}:" >&2
    tail -n 30 "${LOG}" >&2
  fi
  rm -rf "${WORK}"
}
trap on_exit EXIT
export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod"
start=${SECONDS}

# --- kube-apiserver ---------------------------------------------------------
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` fails: the module's go.mod
# replaces its staging modules with ./staging/... paths. A wrapper module that
# replaces each of them with the published k8s.io/<name> v0.Y.Z fixes that.
build_kube_apiserver() {
  local dir="${WORK}/kube" minor="${KUBE_VERSION#v1.}" served
  minor="${minor%%.*}"
  local staging_version="v0.${KUBE_VERSION#v1.}"
  mkdir -p "${dir}"
  cd "${dir}"
  # Fetch the served go.mod through the go command (honours GOPROXY/GOMODCACHE).
  go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" >download.json 2>>"${LOG}"
  served="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' download.json)"
  [[ -f "${served}" ]] || { echo "build.sh: cannot find go.mod of k8s.io/kubernetes@${KUBE_VERSION}" >&2; cat download.json >&2; exit 1; }
  {
    echo "module gatehouse.local/kube-build"
    echo
    grep -E '^(go|godebug) ' "${served}"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    # Every `k8s.io/<name> => ./staging/...` line becomes `k8s.io/<name> => k8s.io/<name> v0.Y.Z`.
    awk -v v="${staging_version}" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "${served}"
    echo ")"
  } > go.mod
  # A multi-line godebug block would be missed by the grep above; fail loudly if so.
  if grep -qE '^godebug \($' "${served}"; then echo "build.sh: godebug block not supported" >&2; exit 1; fi
  echo "build.sh: $(grep -c '=> k8s.io/' go.mod) staging replaces at ${staging_version}" >&2
  go get "k8s.io/kubernetes/cmd/kube-apiserver@${KUBE_VERSION}" >>"${LOG}" 2>&1
  local pkg=k8s.io/component-base/version
  go build -trimpath -o "${OUT}/kube-apiserver" \
    -ldflags "-s -w -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver >>"${LOG}" 2>&1
}

# --- etcd -------------------------------------------------------------------
# The etcd server binary is the main package at the root of go.etcd.io/etcd/server/v3.
# Its go.mod replaces sibling etcd modules with ../ paths; those replaces are ignored
# in a wrapper, and its requires already name the same release, so no replaces needed.
build_etcd() {
  local dir="${WORK}/etcd"
  mkdir -p "${dir}"
  cd "${dir}"
  printf 'module gatehouse.local/etcd-build\n\ngo 1.26\n' > go.mod
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >>"${LOG}" 2>&1
  go build -trimpath -o "${OUT}/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3 >>"${LOG}" 2>&1
}

echo "build.sh: building etcd ${ETCD_VERSION} and kube-apiserver ${KUBE_VERSION} (a cold build takes ~10 min on 2 cores; log: ${LOG})" >&2
echo "build.sh: building etcd ${ETCD_VERSION}" >&2
build_etcd
echo "build.sh: building kube-apiserver ${KUBE_VERSION}" >&2
build_kube_apiserver

# Install atomically so an interrupted build never looks cached.
mv -f "${OUT}/etcd" "${BIN}/etcd.tmp" && mv -f "${BIN}/etcd.tmp" "${BIN}/etcd"
mv -f "${OUT}/kube-apiserver" "${BIN}/kube-apiserver.tmp" && mv -f "${BIN}/kube-apiserver.tmp" "${BIN}/kube-apiserver"
echo "${WANT}" > "${STAMP}"
echo "build.sh: built in $((SECONDS - start))s" >&2
"${BIN}/kube-apiserver" --version >&2
"${BIN}/etcd" --version | sed -n 1p >&2
print_paths
