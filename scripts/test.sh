#!/usr/bin/env bash
# The whole test suite: lint, types, then every test (unit, adapters, end-to-end, browser).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
.venv/bin/ruff check kiosk_client tests
.venv/bin/ruff format --check kiosk_client tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
