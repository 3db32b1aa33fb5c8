#!/usr/bin/env bash
# Build Gatehouse's container images on the Docker engine at DOCKER_HOST, pulling nothing.
#
#   deploy/docker/images.sh        # prints GATEHOUSE_IMAGE_TAG=<tag>
#
# No registry is reachable, so every image starts FROM a base made here: `gatehouse/base`
# is imported (`docker import`) from a rootfs of busybox (a shell and wget for health
# checks), the glibc the binaries link against (found with `ldd`), CA certificates and
# the users the images run as. Each Dockerfile in deploy/docker/ then copies one staged
# build context onto it:
#
#   gatehouse/gateway    the gateway, the built console (console/dist), the role table
#   gatehouse/backend    the lifecycle backend
#   gatehouse/dev-idp    the DEV-ONLY OpenID provider (dev/idp) with this machine's node
#   gatehouse/postgres   PostgreSQL 15 from this machine's binaries (Debian postgresql-15)
#
# Every image is tagged with the SHA-256 of its context, its Dockerfile and its base, so
# an unchanged image is never rebuilt; the last build of each is also tagged `latest`.
# The tag printed is a digest of the four (docker-compose.yml reads GATEHOUSE_IMAGE_TAG).
#
# Env: GATEHOUSE_BIN_DIR  directory holding gatehouse and gatehouse-backend
#                         (default target/release; the tests pass their debug build)
#      GATEHOUSE_PG_BIN   PostgreSQL's bin directory (default /usr/lib/postgresql/15/bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${GATEHOUSE_BIN_DIR:-$root/target/release}
pg_bin=${GATEHOUSE_PG_BIN:-/usr/lib/postgresql/15/bin}
stage=$root/target/docker
export DOCKER_BUILDKIT=0   # the classic builder: no BuildKit frontend image to pull

die() { echo "images.sh: $*" >&2; exit 1; }
command -v docker >/dev/null || die "the docker CLI is missing (apt-get install -y docker.io)"
command -v busybox >/dev/null || die "busybox is missing (apt-get install -y busybox-static)"
for b in gatehouse gatehouse-backend; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: cargo build --release -p gatehouse -p gatehouse-backend (or set GATEHOUSE_BIN_DIR)"
done
[ -f console/dist/index.html ] || die "console/dist is missing: (cd console && npm ci && npm run build)"
[ -d dev/idp/node_modules/oidc-provider ] || die "dev/idp/node_modules is missing: (cd dev/idp && npm ci)"
[ -x "$pg_bin/postgres" ] || die "$pg_bin/postgres is missing: apt-get install -y postgresql-15 (or set GATEHOUSE_PG_BIN)"
node=$(command -v node) || die "node is missing"

# The shared libraries (and the loader) a dynamically linked file needs.
libs_of() { ldd "$1" 2>/dev/null | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }
# add_file ROOTFS SRC [DEST]: copy SRC to DEST (default: its own path) inside ROOTFS,
# with the libraries it needs at their own paths.
add_file() {
  local rootfs=$1 src=$2 dest=${3:-$2} lib
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L "$src" "$rootfs$dest"
  for lib in $(libs_of "$src"); do
    [ -e "$rootfs$lib" ] && continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
}
# The digest of a directory's content (names, modes, bytes; not times or owners).
digest() { (cd "$1" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - .) | sha256sum | cut -c1-16; }

rm -rf "$stage"
mkdir -p "$stage"

# ---- gatehouse/base ---------------------------------------------------------------------
base=$stage/base/rootfs
mkdir -p "$base"/{bin,etc,tmp,root,lib64,usr/lib,var/lib}
chmod 1777 "$base/tmp"
cp "$(command -v busybox)" "$base/bin/busybox"
for applet in $(busybox --list); do
  [ -e "$base/bin/$applet" ] || ln -s busybox "$base/bin/$applet"
done
# glibc and the loader, as the Rust binaries need them (the other images add their own).
for lib in $(libs_of "$bin/gatehouse") $(libs_of "$bin/gatehouse-backend"); do
  mkdir -p "$base$(dirname "$lib")"; cp -L "$lib" "$base$lib"
done
cat > "$base/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh
gatehouse:x:10001:10001:Gatehouse:/var/lib/gatehouse:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$base/etc/group" <<'GROUP'
root:x:0:
postgres:x:999:
gatehouse:x:10001:
nogroup:x:65534:
GROUP
echo "hosts: files dns" > "$base/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$base/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/"
fi
base_tag=$(digest "$base")
if ! docker image inspect "gatehouse/base:$base_tag" >/dev/null 2>&1; then
  (cd "$base" && tar --numeric-owner -cf - .) | docker import - "gatehouse/base:$base_tag" >/dev/null
fi
docker tag "gatehouse/base:$base_tag" gatehouse/base:latest

# ---- staged contexts ---------------------------------------------------------------------
ctx=$stage/gateway/rootfs
add_file "$ctx" "$bin/gatehouse" /usr/local/bin/gatehouse
strip --strip-debug "$ctx/usr/local/bin/gatehouse"
mkdir -p "$ctx/usr/share/gatehouse/policies" "$ctx/etc/gatehouse"
cp -rL console/dist "$ctx/usr/share/gatehouse/console"
cp policies/roles.toml "$ctx/usr/share/gatehouse/policies/roles.toml"
cp deploy/compose/gatehouse.toml "$ctx/etc/gatehouse/gatehouse.toml"

ctx=$stage/backend/rootfs
add_file "$ctx" "$bin/gatehouse-backend" /usr/local/bin/gatehouse-backend
strip --strip-debug "$ctx/usr/local/bin/gatehouse-backend"
mkdir -p "$ctx/etc/gatehouse"
cp deploy/compose/backend.toml "$ctx/etc/gatehouse/backend.toml"

ctx=$stage/dev-idp/rootfs
add_file "$ctx" "$node" /usr/bin/node
mkdir -p "$ctx/opt/idp"
cp dev/idp/server.mjs dev/idp/package.json "$ctx/opt/idp/"
cp -rL dev/idp/node_modules "$ctx/opt/idp/node_modules"

ctx=$stage/postgres/rootfs
pg_root=$(cd "$pg_bin/.." && pwd)                      # /usr/lib/postgresql/15
pg_share=$(cd "$pg_root/../../../share/postgresql/$(basename "$pg_root")" 2>/dev/null && pwd || true)
[ -n "$pg_share" ] || pg_share=$("$pg_bin/pg_config" --sharedir)
for b in postgres initdb pg_ctl pg_isready psql; do add_file "$ctx" "$pg_bin/$b"; done
# The server's loadable modules (text search dictionaries, PL/pgSQL), without the JIT.
for so in "$pg_root"/lib/*.so; do
  case $so in */llvmjit*) continue ;; esac
  add_file "$ctx" "$so"
done
mkdir -p "$ctx$(dirname "$pg_share")"
cp -r "$pg_share" "$ctx$pg_share"
mkdir -p "$ctx/usr/share/zoneinfo/Etc"
for z in UTC Etc/UTC GMT Etc/GMT; do [ -e "/usr/share/zoneinfo/$z" ] && cp -L "/usr/share/zoneinfo/$z" "$ctx/usr/share/zoneinfo/$z"; done
mkdir -p "$ctx/usr/local/bin"
cp deploy/docker/postgres-entrypoint.sh "$ctx/usr/local/bin/postgres-entrypoint"
chmod 755 "$ctx/usr/local/bin/postgres-entrypoint"

# ---- images ------------------------------------------------------------------------------
tags=$base_tag
for name in gateway backend dev-idp postgres; do
  dir=$stage/$name
  cp "deploy/docker/$name.Dockerfile" "$dir/Dockerfile"
  mkdir -p "$dir/empty"
  tag=$( { digest "$dir"; echo "$base_tag"; } | sha256sum | cut -c1-16)
  tags="$tags $tag"
  if ! docker image inspect "gatehouse/$name:$tag" >/dev/null 2>&1; then
    docker build -q --build-arg "BASE=gatehouse/base:$base_tag" -t "gatehouse/$name:$tag" "$dir" >/dev/null
  fi
  docker tag "gatehouse/$name:$tag" "gatehouse/$name:latest"
done
# One tag for the set: each image is also tagged with it (cheap, no rebuild).
set_tag=$(echo "$tags" | sha256sum | cut -c1-16)
for name in gateway backend dev-idp postgres; do
  docker tag "gatehouse/$name:latest" "gatehouse/$name:$set_tag"
done
echo "GATEHOUSE_IMAGE_TAG=$set_tag"
