#!/usr/bin/env bash
# Lock the Python dependencies of pyproject.toml with hashes, one resolution for every
# Python >= 3.11 (uv --universal: markers where a package differs by version or platform).
#   scripts/lock.sh                      keep the pins that still satisfy pyproject.toml
#   scripts/lock.sh --upgrade            the newest versions pyproject.toml allows
#   scripts/lock.sh --upgrade-package X  only X (and what it needs)
# Writes requirements.lock (the app), requirements-dev.lock (app + tests and tools, the app's
# pins as constraints so both agree) and requirements.txt (the app lock, for Azure's remote
# build). Then `./run test`: scripts/setup.sh installs the new lock and the suite runs on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # .venv/bin/uv, itself from the dev lock
compile=(.venv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
         --custom-compile-command scripts/lock.sh "$@")
"${compile[@]}" pyproject.toml -o requirements.lock
"${compile[@]}" pyproject.toml --extra dev -c requirements.lock -o requirements-dev.lock
{
  echo "# What the Functions host installs in Azure (remote build): requirements.lock as written by"
  echo "# scripts/lock.sh (tests/test_code_quality.py checks they are the same). Do not edit by hand."
  grep -v '^#' requirements.lock
} > requirements.txt
