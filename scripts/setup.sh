#!/usr/bin/env bash
# Idempotent set-up: a virtualenv with the locked packages and the project, and Azurite from package-lock.json.
# Re-runs only what changed (stamps hold the hash of the files each step depends on).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
want=$(stamp pyproject.toml requirements-dev.lock)
if [ "$(cat .venv/.abonno-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages from requirements-dev.lock"
  # Exactly the locked versions, each checked against its hash (scripts/lock.sh writes the locks).
  .venv/bin/pip install -q --require-hashes --no-deps -r requirements-dev.lock
  # The project itself: nothing more to fetch (its dependencies and setuptools came from the lock);
  # setuptools' editable-install notice is shown only if the install fails.
  if ! out=$(.venv/bin/pip install -q --no-deps --no-build-isolation -e . 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  echo "$want" > .venv/.abonno-stamp
fi
# The browser tests (tests/browser) drive Debian's Chromium through Playwright: Playwright's own
# browser downloads are not used. Installed once; a machine where it cannot be installed fails here.
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Chromium from Debian's packages (apt-get install chromium)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  if ! { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >&2 \
     || [ ! -x /usr/bin/chromium ]; then
    echo "setup: could not install chromium; the browser tests need /usr/bin/chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi
want=$(stamp package.json package-lock.json)
if [ "$(cat node_modules/.abonno-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Azurite (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.abonno-stamp
fi
