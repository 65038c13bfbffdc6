#!/usr/bin/env bash
# Idempotent set-up: a virtualenv with the project installed, and Azurite from package-lock.json.
# Re-runs only what changed (stamps hold the hash of the files each step depends on).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
want=$(stamp pyproject.toml)
if [ "$(cat .venv/.abonno-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > .venv/.abonno-stamp
fi
want=$(stamp package.json package-lock.json)
if [ "$(cat node_modules/.abonno-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Azurite (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.abonno-stamp
fi
