#!/usr/bin/env bash
# Sets up everything the kiosk client needs on this machine, idempotently:
#   - Debian packages (only when run as root): SANE (test backend), Chromium for browser tests, fonts,
#     coturn (the TURN tests start their own turnserver) and nftables (they block UDP with nft), the
#     libraries Qt links against (installer/qt-runtime-packages.txt), sway (the kiosk session) with
#     grim and wtype (its test takes screenshots and types keys), poppler-utils (the kiosk draws the
#     clerk's PDFs with it) and cups-ipp-utils with dbus-daemon (ippeveprinter stands in for the
#     kiosk's printer in the printing tests), postgresql (the central's tests and `bench central`
#     start a private PostgreSQL server of their own, with its binaries);
#   - a Python >= 3.12 virtual environment in .venv with the project and its dev tools.
# Safe to run again: it skips what is already done (a stamp records the inputs it installed from).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

mapfile -t qt_packages < <(grep -v '^#' installer/qt-runtime-packages.txt | grep .)
debian_packages=(libsane1 sane-utils chromium fonts-dejavu-core coturn nftables iproute2 openssl sway grim wtype
  poppler-utils cups-ipp-utils dbus-daemon postgresql
  "${qt_packages[@]}")
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # tests/test_install_kiosk.py asks apt-cache whether every package the installer names exists in
  # Debian 12: a fresh machine may have no package lists yet.
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    log "no apt package lists yet: apt-get update"
    apt-get update -qq
  fi
  missing=()
  for p in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  log "not root: skipping Debian packages (${debian_packages[*]}); install them yourself if missing"
fi

# PySide6 6.12 aborts on Python 3.11 ("none_dealloc"): only 3.12 and newer are accepted.
find_python() {
  local c
  for c in "${KIOSK_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  # pyenv installs versions that are not on PATH unless selected.
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

venv=.venv
stamp="$venv/.bootstrap-stamp"
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
  py=$(find_python) || { log "no Python >= 3.12 found (set KIOSK_PYTHON=/path/to/python3.12)"; exit 1; }
  log "creating $venv with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
fi
log "installing Python packages into $venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q -e ".[dev]"
echo "$want" > "$stamp"
