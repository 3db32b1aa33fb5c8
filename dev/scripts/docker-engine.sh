#!/usr/bin/env bash
# Start or stop a private Docker engine for tests and `make up`.
#
#   scripts/docker-engine.sh start NAME   -> prints the DOCKER_HOST to use
#   scripts/docker-engine.sh stop NAME
#
# The engine gets its own socket, data root, exec root, pid file and bridge so two of
# them (tests and `make up`) can run side by side. It needs root and Debian's docker.io.
set -euo pipefail
cmd=${1:?start|stop}
name=${2:-gatehouse-test}
state=${GATEHOUSE_STATE_DIR:-/tmp}/$name
sock=$state/docker.sock
pidfile=$state/docker.pid

case "$cmd" in
start)
  mkdir -p "$state"
  if DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1; then
    echo "unix://$sock"; exit 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install -y docker.io" >&2; exit 1; }
  # A bridge of our own, with a subnet derived from the name, so engines do not collide.
  bridge="gh$(printf '%s' "$name" | cksum | cut -c1-6)"
  bridge=${bridge:0:15}
  octet=$(( $(printf '%s' "$name" | cksum | cut -d' ' -f1) % 200 + 20 ))
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "10.$octet.0.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  echo "$bridge" > "$state/bridge"
  nohup dockerd --host "unix://$sock" --data-root "$state/data" --exec-root "$state/exec" \
    --pidfile "$pidfile" --bridge "$bridge" --iptables=true >"$state/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    if DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1; then
      echo "unix://$sock"; exit 0
    fi
    sleep 0.5
  done
  echo "dockerd did not answer on $sock; see $state/dockerd.log" >&2
  tail -20 "$state/dockerd.log" >&2 || true
  exit 1
  ;;
stop)
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  if [ -f "$state/bridge" ]; then
    ip link del "$(cat "$state/bridge")" 2>/dev/null || true
  fi
  ;;
*) echo "usage: $0 start|stop NAME" >&2; exit 2 ;;
esac
