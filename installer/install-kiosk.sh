#!/usr/bin/env bash
# Installs the kiosk client on a Debian 12 terminal (run as root from a checkout):
#   - a dedicated unprivileged "kiosk" user (QtWebEngine keeps its sandbox: never run the kiosk as root);
#   - the project in /opt/kiosk-client with its virtual environment (scripts/bootstrap.sh);
#   - /etc/kiosk-client/kiosk.toml from the example, if absent;
#   - echo cancellation (PipeWire, or PulseAudio) as the kiosk user's default audio devices;
#   - the kiosk session on boot (kiosk-session.service: sway on tty1 with the kiosk as its only client,
#     started again whenever it stops), the graphical target as the default.
# Then: edit /etc/kiosk-client/kiosk.toml, and as the kiosk user run
#   /opt/kiosk-client/.venv/bin/kiosk-client enroll --code <CODE from the central>
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)

apt-get update -qq
mapfile -t qt_packages < <(grep -v '^#' "$src/installer/qt-runtime-packages.txt" | grep .)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  sway "${qt_packages[@]}" \
  libsane1 sane-utils fonts-dejavu-core pipewire pipewire-pulse wireplumber pulseaudio-utils gnome-keyring libsecret-1-0 \
  libspeechd2 speech-dispatcher speech-dispatcher-espeak-ng espeak-ng \
  cups cups-client ipp-usb poppler-utils >/dev/null

id kiosk >/dev/null 2>&1 || useradd --create-home --groups video,audio,scanner --shell /bin/bash kiosk
install -d -o root -g root /opt/kiosk-client
cp -a "$src/." /opt/kiosk-client/
/opt/kiosk-client/scripts/bootstrap.sh

install -d /etc/kiosk-client
[ -f /etc/kiosk-client/kiosk.toml ] || install -m 0644 "$src/config/kiosk.example.toml" /etc/kiosk-client/kiosk.toml
install -d -o kiosk -g kiosk /var/lib/kiosk-client

home=$(getent passwd kiosk | cut -d: -f6)
install -d -o kiosk -g kiosk "$home/.config/pipewire/pipewire.conf.d" "$home/.config/pulse"
install -o kiosk -g kiosk -m 0644 "$src/installer/pipewire-echo-cancel.conf" "$home/.config/pipewire/pipewire.conf.d/60-kiosk-echo-cancel.conf"
install -o kiosk -g kiosk -m 0644 "$src/installer/pulse-echo-cancel.pa" "$home/.config/pulse/default.pa"
install -m 0644 "$src/installer/kiosk-session.service" /etc/systemd/system/kiosk-session.service
rm -f "$home/.config/systemd/user/kiosk-client.service"  # the session replaces the older user unit
systemctl daemon-reload || true
systemctl set-default graphical.target || true
systemctl enable kiosk-session.service || true
echo "installed. Next: edit /etc/kiosk-client/kiosk.toml, then enrol as the kiosk user (see the README)."
