"""The updater's SessionControl on a terminal: systemd restarts the kiosk session."""

from __future__ import annotations

import logging
import subprocess

log = logging.getLogger(__name__)

UNIT = "kiosk-session.service"


class SystemdSession:
    def __init__(self, unit: str = UNIT) -> None:
        self.unit = unit

    def restart(self) -> None:
        # --no-block: the unit is Type=notify with a long start timeout; the updater's own health wait
        # is the bound, not systemctl's.
        done = subprocess.run(
            ["systemctl", "restart", "--no-block", self.unit], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            log.error("systemctl restart %s failed: %s", self.unit, done.stderr.strip()[-300:])
