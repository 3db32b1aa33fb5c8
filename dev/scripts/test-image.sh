#!/usr/bin/env bash
# Build the sandbox test image from Debian's busybox-static (no image can be pulled here).
#
#   DOCKER_HOST=... scripts/test-image.sh [TAG]     (default gatehouse/busybox:latest)
#
# The image holds /bin/busybox with the applets the tests and `make up` use, and a small
# web root at /www so `httpd -f -p 8080 -h /www` answers at once.
set -euo pipefail
tag=${1:-gatehouse/busybox:latest}
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-static is missing: apt-get install -y busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,tmp,www,etc,proc,sys,dev}
cp "$busybox" "$root/bin/busybox"
for applet in sh ash sleep httpd echo cat ls env wget nc tail head true false kill ps mkdir id printf chmod wc dd rm; do
  ln -s busybox "$root/bin/$applet"
done
echo "hello from a gatehouse sandbox" > "$root/www/index.html"
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'LABEL org.gatehouse.image=busybox' - "$tag" >/dev/null
echo "built $tag"
