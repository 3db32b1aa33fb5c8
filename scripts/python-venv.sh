#!/usr/bin/env bash
# Create .venv with the real OpenSandbox Python SDK (and, for the gateway tests, the
# upstream server) pinned to the versions the tests were written against.
set -euo pipefail
venv=${1:-.venv}
stamp=$venv/.gatehouse-1.1.1
[ -f "$stamp" ] && exit 0
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "opensandbox==1.1.1"
touch "$stamp"
