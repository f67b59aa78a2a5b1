"""The service manager's watchdog (systemd's sd_notify protocol, spoken directly: one datagram).

The kiosk session's unit (installer/kiosk-session.service) has `WatchdogSec=` and `NotifyAccess=all`:
the kiosk, a child of the compositor, says READY=1 once its window is up, then WATCHDOG=1 regularly. It
pings only while every part that must stay responsive has checked in recently — the Qt thread (the
citizen's screen) and the engine's asyncio loop (calls, schedule) — so a hang of either one stops the
pings, and systemd kills the session and starts a new one, which rejoins the appointment. A part
silent for HANG_AFTER_S is a hang: the kiosk asks for that at once (WATCHDOG=trigger) rather than
letting WatchdogSec run out; the pings' silence stays the backstop for a process that froze whole.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

# No part of the kiosk blocks this long on a healthy terminal (a page load, a scan, a call set-up are
# all asynchronous): longer, the citizen's screen or the call is stuck.
HANG_AFTER_S = 6.0


class ServiceNotifier:
    """Sends sd_notify messages to the socket systemd named in NOTIFY_SOCKET."""

    def __init__(self, address: str) -> None:
        # "@name" is an abstract socket; anything else a path.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> ServiceNotifier | None:
        address = env.get("NOTIFY_SOCKET", "")
        return cls(address) if address.startswith(("/", "@")) else None

    def notify(self, *fields: str) -> bool:
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("the service manager could not be told %s: %s", fields, exc)
            return False
        return True

    def close(self) -> None:
        self._socket.close()


def watchdog_interval(env: Mapping[str, str]) -> float | None:
    """WatchdogSec in seconds, or None when there is no watchdog. WATCHDOG_PID names the session's
    main process (the compositor), not the kiosk: deliberately not checked, as NotifyAccess=all lets
    any process of the session ping."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class Watchdog:
    """Pings every `interval/4` (at most 1 s) while each part has checked in (`alive`) within the
    last `hang_after_s`; asks for the kill (WATCHDOG=trigger) once a part has been silent longer."""

    def __init__(
        self,
        send: Callable[[str], object],
        interval_s: float,
        parts: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
        hang_after_s: float = HANG_AFTER_S,
    ) -> None:
        self._send = send
        self.interval_s = interval_s
        self.hang_after_s = min(hang_after_s, interval_s / 2)
        self.triggered = False
        self._clock = clock
        now = clock()
        self._last = dict.fromkeys(parts, now)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._silent_for: tuple[str, ...] = ()
        self.pings = 0

    def alive(self, part: str) -> None:
        self._last[part] = self._clock()

    def stale(self) -> tuple[str, ...]:
        limit = self._clock() - self.hang_after_s
        return tuple(part for part, last in self._last.items() if last < limit)

    def tick(self) -> bool:
        """One round: ping if every part is fresh. True if it pinged."""
        stale = self.stale()
        if stale != self._silent_for:
            if stale:
                log.error(
                    "%s has not answered for %.1f s: the kiosk hangs", ", ".join(stale), self.hang_after_s
                )
            else:
                log.warning("the kiosk answers again: watchdog pings resume")
            self._silent_for = stale
        if stale:
            if not self.triggered:
                self.triggered = True
                self._send("WATCHDOG=trigger")  # systemd >= 243: handled as a watchdog timeout, now
            return False
        self._send("WATCHDOG=1")
        self.pings += 1
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(min(self.interval_s / 4, 1.0)):
            self.tick()


def service_watchdog(env: Mapping[str, str] = os.environ) -> tuple[ServiceNotifier, Watchdog | None] | None:
    """The notifier and, if the unit has one, a watchdog fed by the Qt thread and the engine loop."""
    notifier = ServiceNotifier.from_environment(env)
    if notifier is None:
        return None
    interval = watchdog_interval(env)
    if interval is None:
        return notifier, None
    return notifier, Watchdog(lambda line: notifier.notify(line), interval, ("qt", "engine"))
