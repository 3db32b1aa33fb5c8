#!/usr/bin/env bash
# `make up`'s build prerequisites, checked whatever the Docker situation: a Rust toolchain
# >= 1.85, cmake and a C compiler (Pingora's zlib-ng), Node.js >= 20.19 with npm (the
# console and the dev IdP). As root on Debian the missing apt packages are installed;
# otherwise this says exactly what is missing and exits 1.
set -euo pipefail
missing=()
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

if ! command -v cargo >/dev/null; then
  missing+=("Rust toolchain >= 1.85 (https://rustup.rs)")
else
  rust=$(rustc --version | awk '{print $2}')
  version_ge "$rust" 1.85.0 || missing+=("Rust >= 1.85 (found $rust; rustup update)")
fi

apt_need=()
command -v cmake >/dev/null || apt_need+=(cmake)
command -v cc >/dev/null || apt_need+=(build-essential)
command -v node >/dev/null || apt_need+=(nodejs)
command -v npm >/dev/null || apt_need+=(npm)
if [ ${#apt_need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing build prerequisites: ${apt_need[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
  else
    missing+=("apt packages: ${apt_need[*]} (apt-get install -y ${apt_need[*]})")
  fi
fi

if command -v node >/dev/null; then
  node_v=$(node --version | tr -d v)
  version_ge "$node_v" 20.19.0 || missing+=("Node.js >= 20.19 (found $node_v; Debian 12's nodejs is 18: use NodeSource or nvm)")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "make up cannot build Gatehouse; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
if [ ! -x target/release/gatehouse ] || [ ! -x target/release/gatehouse-backend ]; then
  echo "note: the first make up compiles the release binaries: about 15 minutes on 2 cores (later runs take seconds)."
fi
