#!/usr/bin/env bash
# The demo: the reference central and the kiosk on loopback, an appointment a little in the future.
# Extra arguments go to `kiosk-client demo` (try --clerk-bot).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
exec .venv/bin/kiosk-client demo "$@"
