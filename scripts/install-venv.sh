#!/usr/bin/env bash
# Create or update one virtual environment from a pinned requirements file, with compiled bytecode
# (imports without .pyc are several times slower here). Usage: install-venv.sh VENV REQUIREMENTS
set -euo pipefail
venv=$1 requirements=$2
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
[ -x "$venv/bin/python" ] || uv venv --quiet --python 3.11 "$venv"
echo "installing $requirements into $venv"
uv pip sync --quiet --python "$venv/bin/python" --compile-bytecode "$requirements"
