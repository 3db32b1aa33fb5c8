#!/usr/bin/env bash
# Create .venv with the real OpenSandbox Python SDK, CLI and upstream lifecycle server
# (the gateway's compatibility tests run in front of it), pinned to the versions the tests
# were written against. The stamp file name changes whenever the pinned set does, so an
# existing venv is upgraded in place.
set -euo pipefail
venv=${1:-.venv}
stamp=$venv/.gatehouse-1.1.1-server-cli
[ -f "$stamp" ] && exit 0
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "opensandbox==1.1.1" "opensandbox-server==1.1.1" "opensandbox-cli==1.1.1"
rm -f "$venv"/.gatehouse-*
touch "$stamp"
