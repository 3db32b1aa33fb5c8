#!/bin/sh
# Build gatehouse-execd as one fully static binary (glibc with crt-static) and print its
# path on stdout. The binary runs in any x86_64 Linux image, busybox or scratch included,
# e.g. bind-mounted read-only into the container.
#
# usage: agent/build-static.sh [TARGET_DIR]
#   TARGET_DIR defaults to $CARGO_TARGET_DIR, else the workspace's target/.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
target_dir=${1:-${CARGO_TARGET_DIR:-$here/../target}}
triple=x86_64-unknown-linux-gnu

RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C strip=symbols" \
    cargo build --manifest-path "$here/Cargo.toml" --release --locked \
    --target "$triple" --target-dir "$target_dir" >&2

bin="$target_dir/$triple/release/gatehouse-execd"
# A static binary has no dynamic section: ldd says "not a dynamic executable" (or, on
# some versions, "statically linked").
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "build-static.sh: $bin is dynamically linked" >&2
    exit 1
fi
echo "$bin"
