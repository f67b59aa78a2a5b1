#!/usr/bin/env bash
# Installs the kiosk client on a Debian 12 terminal, from a checkout, in one command (as root):
#
#   installer/install-kiosk.sh                 # this machine
#   installer/install-kiosk.sh --root DIR --no-packages   # a mounted image or a scratch folder
#
# What it does, and only what is missing or different (a second run changes nothing):
#   - the Debian packages of installer/kiosk-packages.txt and installer/qt-runtime-packages.txt;
#   - a dedicated unprivileged "kiosk" user (QtWebEngine keeps its sandbox: never run the kiosk as
#     root), in the groups video, audio and scanner;
#   - the project in /opt/kiosk-client (owned by root: the kiosk cannot change its own code) with its
#     virtual environment (Python >= 3.12; Debian 12 has 3.11, so uv fetches one when none is found);
#   - /etc/kiosk-client/kiosk.toml from the example, if absent (never overwritten);
#   - /etc/credstore.encrypted (root only), where `kiosk-client enroll` seals the device token;
#   - /var/lib/kiosk-client, the kiosk's data (its user's only);
#   - echo cancellation (PipeWire, or PulseAudio) as the kiosk user's default audio devices;
#   - the kiosk session on boot (kiosk-session.service, enabled), the graphical target as the default;
#   - staged updates: /opt/kiosk-client/current (-> .venv at first; the updater moves it to a release),
#     the kiosk's spool /var/lib/kiosk-client/updates, root's /var/lib/kiosk-updater, and the updater
#     (kiosk-updater.service, started by kiosk-updater.path, enabled).
# Then: edit /etc/kiosk-client/kiosk.toml and enrol (README, "Install a terminal").
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install-kiosk.sh [--root DIR] [--no-packages] [--print-packages] [--help]
  --root DIR        install into the system mounted at DIR (default: /, this machine)
  --no-packages     install no Debian or Python package (they are listed instead); required with a
                    --root other than /: apt installs into the running system only
  --print-packages  print the Debian packages it would install, one per line, and stop
EOF
}
fail() { echo "install-kiosk: $*" >&2; exit 1; }
usage_error() { echo "install-kiosk: $*" >&2; usage >&2; exit 2; }

src=$(cd "$(dirname "$0")/.." && pwd)
root=/
packages=1
print_packages=0
while [ $# -gt 0 ]; do
  case $1 in
    --root)
      [ $# -ge 2 ] && [ -n "$2" ] || usage_error "--root needs a folder"
      root=$2; shift 2 ;;
    --root=*)
      root=${1#--root=}
      [ -n "$root" ] || usage_error "--root needs a folder"
      shift ;;
    --no-packages) packages=0; shift ;;
    --print-packages) print_packages=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

package_list() {
  local f
  for f in "$src/installer/kiosk-packages.txt" "$src/installer/qt-runtime-packages.txt"; do
    grep -v '^[[:space:]]*#' "$f" | tr -d '[:blank:]' | grep .
  done
}
if [ "$print_packages" = 1 ]; then
  package_list | awk '!seen[$0]++'
  exit 0
fi

# --- checks, before anything is written -------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "run as root (it creates a user, writes /etc and /opt and enables a service)"
mapfile -t debian_packages < <(package_list | awk '!seen[$0]++')  # each once, in order
[ ${#debian_packages[@]} -gt 0 ] || fail "no package list in $src/installer"
[ -d "$root" ] || fail "the target root $root does not exist or is not a folder"
root=$(cd "$root" && pwd -P)
[ "$root" = / ] || [ "$packages" = 0 ] ||
  fail "packages are installed into the running system only: with --root $root, add --no-packages"
os_release=$root/etc/os-release
[ -f "$os_release" ] || os_release=$root/usr/lib/os-release
[ -f "$os_release" ] || fail "$root is not a Debian 12 system: no etc/os-release"
os_id=$(sed -n 's/^ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$os_release")
os_version=$(sed -n 's/^VERSION_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$os_release")
[ "$os_id" = debian ] && [ "$os_version" = 12 ] ||
  fail "$root is not Debian 12 (os-release says ID=${os_id:-?} VERSION_ID=${os_version:-?})"
for tool in useradd groupadd usermod systemctl install cmp diff tar; do
  command -v "$tool" >/dev/null || fail "$tool is missing on this machine"
done
[ -f "$root/etc/passwd" ] && [ -f "$root/etc/group" ] || fail "$root has no etc/passwd or etc/group"

at() { if [ "$root" = / ]; then printf '%s' "$1"; else printf '%s%s' "$root" "$1"; fi; }
changes=0
changed() { changes=$((changes + 1)); echo "  $*"; }

# A folder with this mode and owner (numeric ids: the target's users may not exist on this machine).
folder() {  # folder PATH MODE UID GID
  local path; path=$(at "$1")
  [ -L "$path" ] && fail "$1 is a symbolic link: refusing to follow it"
  if [ -d "$path" ] && [ "$(stat -c '%a %u %g' "$path")" = "$2 $3 $4" ]; then return 0; fi
  install -d -m "$2" -o "$3" -g "$4" "$path"
  changed "folder $1 (mode $2, owner $3:$4)"
}
# A file with this content, mode and owner, written only when any of them differs.
put() {  # put SOURCE PATH MODE UID GID
  local path; path=$(at "$2")
  [ -L "$path" ] && fail "$2 is a symbolic link: refusing to follow it"
  if [ -f "$path" ] && cmp -s "$1" "$path" && [ "$(stat -c '%a %u %g' "$path")" = "$3 $4 $5" ]; then
    return 0
  fi
  install -m "$3" -o "$4" -g "$5" "$1" "$path"
  changed "file $2 (mode $3, owner $4:$5)"
}

echo "installing the kiosk client into $root"

# --- Debian packages ----------------------------------------------------------------------------------
# The one place that installs packages (tests replace it with --no-packages).
install_debian_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  changed "Debian packages: ${missing[*]}"
}
if [ "$packages" = 1 ]; then
  install_debian_packages "${debian_packages[@]}"
else
  echo "  not installing Debian packages (--no-packages): ${debian_packages[*]}"
fi

# --- the kiosk user -----------------------------------------------------------------------------------
kiosk_groups=(video audio scanner)
for g in "${kiosk_groups[@]}"; do
  # Packages create these (udev rules give them the devices); an image may not have them yet.
  grep -q "^$g:" "$root/etc/group" || { groupadd --root "$root" --system "$g"; changed "group $g"; }
done
if ! grep -q '^kiosk:' "$root/etc/passwd"; then
  useradd --root "$root" --create-home --user-group --groups "$(IFS=,; echo "${kiosk_groups[*]}")" \
    --shell /bin/bash --comment "visitor-centre kiosk" kiosk 2>&1 | grep -v "missing or non-executable shell" >&2 || true
  grep -q '^kiosk:' "$root/etc/passwd" || fail "could not create the kiosk user"
  changed "user kiosk"
fi
for g in "${kiosk_groups[@]}"; do
  if ! grep "^$g:" "$root/etc/group" | cut -d: -f4 | tr , '\n' | grep -qx kiosk; then
    usermod --root "$root" --append --groups "$g" kiosk
    changed "user kiosk in group $g"
  fi
done
kiosk_uid=$(awk -F: '$1 == "kiosk" { print $3 }' "$root/etc/passwd")
kiosk_gid=$(awk -F: '$1 == "kiosk" { print $4 }' "$root/etc/passwd")
kiosk_home=$(awk -F: '$1 == "kiosk" { print $6 }' "$root/etc/passwd")
[ -n "$kiosk_uid" ] && [ "$kiosk_uid" != 0 ] || fail "the kiosk user must not be root"
[ -d "$(at "$kiosk_home")" ] || folder "$kiosk_home" 750 "$kiosk_uid" "$kiosk_gid"

# --- the project in /opt/kiosk-client -----------------------------------------------------------------
# The files of the checkout (those git tracks, or all but build and cache folders without git), owned by
# root and not writable by anyone else. Staged in a temporary folder and swapped in only when they
# differ; the virtual environment (.venv), uv's Python (.tools) and the updater's releases (current,
# releases) stay.
project=/opt/kiosk-client
folder /opt 755 0 0
dest=$(at "$project")
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
if git -C "$src" rev-parse --show-toplevel >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$staging" --no-same-owner -xf -
else
  tar -C "$src" --exclude=./.venv --exclude=./.tools --exclude=./.git --exclude=__pycache__ \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache -cf - . |
    tar -C "$staging" --no-same-owner -xf -
fi
chown -R 0:0 "$staging"
chmod -R go-w,a+rX "$staging"
kept=(.venv .tools current releases)
listing() { (cd "$1" && find . \( -path ./.venv -o -path ./.tools -o -path ./current -o -path ./releases \) -prune -o -printf '%p %m %U %G %s\n' | sort); }
if [ -d "$dest" ] && diff -rq --no-dereference -x .venv -x .tools -x current -x releases "$staging" "$dest" >/dev/null &&
  [ "$(listing "$staging")" = "$(listing "$dest")" ]; then
  rm -rf "$staging"
else
  chmod 755 "$staging"
  new=$(at /opt/.kiosk-client.new)
  rm -rf "$new"
  cp -a "$staging" "$new"
  for keep in "${kept[@]}"; do
    if [ -e "$dest/$keep" ] || [ -L "$dest/$keep" ]; then mv "$dest/$keep" "$new/$keep"; fi
  done
  rm -rf "$dest"
  mv "$new" "$dest"
  rm -rf "$staging"
  changed "project files in $project"
fi
trap - EXIT

# The Python environment: Python >= 3.12 (PySide6 6.12 aborts on 3.11), the project without its dev tools.
find_python() {
  local c
  for c in "${KIOSK_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 || continue
    "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null && { command -v "$c"; return 0; }
  done
  return 1
}
uv_python() {  # Debian 12 has Python 3.11: uv (from PyPI) installs a standalone 3.12 under .tools.
  local tools=$dest/.tools
  if [ ! -x "$tools/uv/bin/uv" ]; then
    { python3 -m venv "$tools/uv" && "$tools/uv/bin/pip" install -q uv; } >&2
  fi
  # --no-bin: nothing in root's ~/.local/bin; --no-cache: nothing left in root's ~/.cache.
  UV_PYTHON_INSTALL_DIR=$tools/python "$tools/uv/bin/uv" python install --no-bin --no-cache -q 3.12 >&2
  UV_PYTHON_INSTALL_DIR=$tools/python "$tools/uv/bin/uv" python find --managed-python --no-cache 3.12
}
install_python_environment() {
  local venv=$dest/.venv stamp want py
  stamp=$venv/.install-stamp
  want=$(cd "$dest" && find . \( -path ./.venv -o -path ./.tools -o -path ./current -o -path ./releases \) -prune -o -type f -print0 | sort -z |
    xargs -0 sha256sum | sha256sum | cut -d' ' -f1)  # the project's contents: any change reinstalls it
  [ -x "$venv/bin/kiosk-client" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  if [ ! -x "$venv/bin/python" ]; then
    py=$(find_python) || py=$(uv_python) || fail "no Python >= 3.12, and uv could not install one"
    "$py" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  # Built from a copy: a build in /opt/kiosk-client would leave build/ and *.egg-info there, which the
  # next run would see as changed project files.
  build=$(mktemp -d)
  (cd "$dest" && tar --exclude=./.venv --exclude=./.tools --exclude=./current --exclude=./releases -cf - .) | tar -C "$build" -xf -
  "$venv/bin/python" -m pip install -q "$build"
  rm -rf "$build"
  echo "$want" >"$stamp"
  changed "Python environment $project/.venv"
}
if [ "$packages" = 1 ]; then
  install_python_environment
else
  echo "  not installing the Python environment (--no-packages): $project/.venv from $project"
fi

# What the kiosk session runs: a link, which the updater moves to a release and back. Made once: a
# later run leaves it where the updater put it.
current=$(at "$project/current")
if [ ! -L "$current" ]; then
  [ -e "$current" ] && fail "$project/current exists and is not a symbolic link"
  ln -s .venv "$current"
  changed "link $project/current -> .venv"
fi

# --- configuration, secrets, data ---------------------------------------------------------------------
folder /etc/kiosk-client 755 0 0
config=$(at /etc/kiosk-client/kiosk.toml)
[ -L "$config" ] && fail "/etc/kiosk-client/kiosk.toml is a symbolic link: refusing to follow it"
[ -e "$config" ] || put "$src/config/kiosk.example.toml" /etc/kiosk-client/kiosk.toml 644 0 0
# Sealed credentials (systemd-creds): read by the service manager only, which hands the kiosk's
# service the decrypted token in memory ($CREDENTIALS_DIRECTORY).
folder /etc/credstore.encrypted 700 0 0
folder /var/lib/kiosk-client 700 "$kiosk_uid" "$kiosk_gid"
# Staged updates: the kiosk's spool (downloaded wheels, its install request), and the updater's own
# state (its status, which the kiosk reports, and the versions it rolled back), readable by the kiosk.
folder /var/lib/kiosk-client/updates 700 "$kiosk_uid" "$kiosk_gid"
folder /var/lib/kiosk-updater 755 0 0

# --- echo cancellation, as the kiosk user's default audio devices ------------------------------------
for d in "$kiosk_home/.config" "$kiosk_home/.config/pipewire" "$kiosk_home/.config/pipewire/pipewire.conf.d" \
  "$kiosk_home/.config/pulse"; do
  folder "$d" 755 "$kiosk_uid" "$kiosk_gid"
done
put "$src/installer/pipewire-echo-cancel.conf" "$kiosk_home/.config/pipewire/pipewire.conf.d/60-kiosk-echo-cancel.conf" \
  644 "$kiosk_uid" "$kiosk_gid"
put "$src/installer/pulse-echo-cancel.pa" "$kiosk_home/.config/pulse/default.pa" 644 "$kiosk_uid" "$kiosk_gid"
old_unit=$(at "$kiosk_home/.config/systemd/user/kiosk-client.service")  # replaced by the session
if [ -e "$old_unit" ] || [ -L "$old_unit" ]; then rm -f "$old_unit"; changed "removed the old user unit"; fi

# --- printing: CUPS keeps nothing of what a citizen printed -------------------------------------------
# By default cupsd keeps each job's file and its name (the document's title) for a day, readable by
# root and lp: the next citizen's session must not be able to meet them, nor a stolen disk. The two
# directives are set in cupsd.conf (the packages install it; an image without them has none yet).
cupsd_conf=$(at /etc/cups/cupsd.conf)
if [ -f "$cupsd_conf" ] && [ ! -L "$cupsd_conf" ]; then
  wanted=$(mktemp)
  grep -v -E '^[[:space:]]*(PreserveJobHistory|PreserveJobFiles)([[:space:]]|$)' "$cupsd_conf" >"$wanted" || true
  printf 'PreserveJobHistory No\nPreserveJobFiles No\n' >>"$wanted"
  before=$changes
  put "$wanted" /etc/cups/cupsd.conf "$(stat -c %a "$cupsd_conf")" "$(stat -c %u "$cupsd_conf")" "$(stat -c %g "$cupsd_conf")"
  rm -f "$wanted"
  if [ "$changes" != "$before" ] && [ "$root" = / ] && [ -d /run/systemd/system ]; then
    systemctl try-restart cups.service
  fi
fi

# --- the kiosk session on boot ------------------------------------------------------------------------
folder /etc/systemd/system 755 0 0
for unit in kiosk-session.service kiosk-updater.service kiosk-updater.path; do
  put "$src/installer/$unit" "/etc/systemd/system/$unit" 644 0 0
done
if [ "$root" = / ]; then systemctl=(systemctl); else systemctl=(systemctl --root="$root"); fi
if [ "$root" = / ] && [ -d /run/systemd/system ] && [ "$changes" -gt 0 ]; then systemctl daemon-reload; fi
for unit in kiosk-session.service kiosk-updater.path; do
  if ! "${systemctl[@]}" --quiet is-enabled "$unit" 2>/dev/null; then
    "${systemctl[@]}" --quiet enable "$unit"
    changed "enabled $unit"
  fi
done
if [ "$("${systemctl[@]}" get-default 2>/dev/null)" != graphical.target ]; then
  "${systemctl[@]}" --quiet set-default graphical.target
  changed "default target: graphical.target"
fi

if [ "$changes" = 0 ]; then
  echo "nothing changed: the kiosk client was already installed"
else
  echo "installed ($changes changes)."
fi
echo "Next, here and now (the kiosk session, once started, holds the screen and the keyboard):"
echo "  1. edit /etc/kiosk-client/kiosk.toml (the central's URL);"
echo "  2. enrol: $project/.venv/bin/kiosk-client enroll --code CODE   (or --scan, with a QR code reader);"
echo "  3. systemctl start kiosk-session   (or reboot)."
