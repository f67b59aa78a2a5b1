"""`kiosk-client bench recovery`: how long the citizen and the clerk are cut off when the kiosk dies or
hangs during a call, until media flows again.

The reference central runs in a child process, the clerk bot in this one, the kiosk — the real Qt
application, offscreen (tools/recovery_kiosk.py) — in a child this bench supervises as systemd does
the kiosk session (installer/kiosk-session.service): it starts it again RESTART_S after it ends, and
kills it when its watchdog pings (sd_notify, through a NOTIFY_SOCKET of the bench's own) stop for
WATCHDOG_S or when it asks for it (WATCHDOG=trigger, on a hang it detected itself). Each fault, `runs` times, in one appointment:
- `kill -9` of the kiosk mid-call → the clerk's first video frame of the call the kiosk sets up again;
- a hung Qt thread (SIGUSR2, the kiosk's fault injection) → the watchdog's kill → video again;
- a hung engine loop (SIGUSR1) → likewise;
- the form view's renderer killed (`kill -9` of QtWebEngine's render process) → the clerk told that
  the page is back (the control channel's `form.incident`, outcome "reloaded").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..central.admin import CentralAdmin
from .central_process import CentralProcess
from .clerk_bot import BotCallReport, ClerkBot
from .recovery_kiosk import TOKEN_ENV

# As in installer/kiosk-session.service (a test keeps them equal).
RESTART_S = 1.0
WATCHDOG_S = 15.0
GOAL_KILL9_S = 10.0
FAULTS = {"kill9": signal.SIGKILL, "hung_qt": signal.SIGUSR2, "hung_engine": signal.SIGUSR1, "renderer": None}
GOAL_RENDERER_S = 10.0


@dataclass
class Supervisor:
    """Plays systemd for one kiosk process: restarts it, reads its sd_notify messages, enforces the
    watchdog (armed at READY=1, as for a Type=notify service)."""

    central_url: str
    token: str
    workdir: Path
    watchdog_s: float = WATCHDOG_S
    restart_s: float = RESTART_S
    extra_env: dict[str, str] = field(default_factory=dict)
    # The bench kills the kiosk again and again on purpose: that is not the crash loop the kiosk
    # would otherwise (rightly) put itself out of service for.
    forget_crashes: bool = True
    process: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    watchdog_kills: list[float] = field(default_factory=list)
    exits: list[tuple[float, int]] = field(default_factory=list)
    last_ping: float | None = None

    def __post_init__(self) -> None:
        self._socket_path = self.workdir / "notify.sock"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(self._socket_path))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._triggered = False
        self._log = open(self.workdir / "kiosk.log", "ab")  # noqa: SIM115  # open for the whole bench
        self._threads = [
            threading.Thread(target=self._listen, name="notify", daemon=True),
            threading.Thread(target=self._supervise, name="supervise", daemon=True),
        ]

    def start(self) -> None:
        self._spawn()
        for thread in self._threads:
            thread.start()

    def _spawn(self) -> None:
        if self.forget_crashes:
            (self.workdir / "kiosk" / "cache" / "run-history.json").unlink(missing_ok=True)
        env = {
            **os.environ,
            TOKEN_ENV: self.token,
            "NOTIFY_SOCKET": str(self._socket_path),
            "WATCHDOG_USEC": str(int(self.watchdog_s * 1e6)),
            "KIOSK_FAULT_INJECTION": "1",
            "QT_QPA_PLATFORM": "offscreen",
            **self.extra_env,
        }
        command = [sys.executable, "-m", "kiosk_client.tools.recovery_kiosk", "--central", self.central_url]
        command += ["--data-dir", str(self.workdir / "kiosk")]
        with self._lock:
            self.last_ping = None
            self._triggered = False
            self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
            self.starts.append(time.time())

    def signal(self, signum: int) -> float:
        assert self.process is not None
        at = time.time()
        os.kill(self.process.pid, signum)
        return at

    def kill_renderers(self, wait_s: float = 20.0) -> float:
        """`kill -9` of the kiosk's QtWebEngine render processes (the form view's page)."""
        assert self.process is not None
        deadline = time.monotonic() + wait_s
        while not (renderers := _renderers_of(self.process.pid)):
            if time.monotonic() > deadline:
                raise RuntimeError("the kiosk has no render process (no form page shown?)")
            time.sleep(0.2)
        at = time.time()
        for pid in renderers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return at

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.time()
            lines = data.decode(errors="replace").splitlines()
            with self._lock:
                if "READY=1" in lines:
                    self.ready.append(now)
                    self.last_ping = now
                if "WATCHDOG=1" in lines and self.last_ping is not None:
                    self.last_ping = now
                if "WATCHDOG=trigger" in lines:
                    self._triggered = True

    def _supervise(self) -> None:
        while not self._stop.wait(0.05):
            process = self.process
            if process is None:
                continue
            code = process.poll()
            if code is not None:
                self.exits.append((time.time(), code))
                time.sleep(self.restart_s)
                if not self._stop.is_set():
                    self._spawn()
                continue
            with self._lock:
                silent = self.last_ping is not None and time.time() - self.last_ping > self.watchdog_s
                silent, self._triggered = silent or self._triggered, False
            if silent:
                self.watchdog_kills.append(time.time())
                process.kill()  # WatchdogSignal=SIGKILL
                process.wait()

    def stop(self) -> None:
        self._stop.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for thread in self._threads:
            thread.join(2)
        self._socket.close()
        self._log.close()


def _renderers_of(root: int) -> list[int]:
    """QtWebEngine's render processes descending from `root`: the children of its zygote processes
    (forked renderers keep the zygote's command line, so that is how they are told apart; /proc)."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    zygotes = {
        pid
        for pid, command in commands.items()
        if parents.get(pid) == root and b"QtWebEngineProcess" in command and b"--type=zygote" in command
    }
    return [pid for pid, parent in parents.items() if parent in zygotes]


async def _incident_after(bot: ClerkBot, seen: int, timeout_s: float) -> tuple[float, str] | None:
    """Wall time at which the clerk heard of a form.incident newer than the first `seen`, and its outcome."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(bot.form_incidents) > seen:
            return time.time(), bot.form_incidents[seen].outcome
        await asyncio.sleep(0.02)
    return None


async def _clerk(bot: ClerkBot, appointment_id: str, start: datetime) -> None:
    """Answers every call the kiosk sets up for the appointment, again and again (each ends when
    the kiosk offers a new one)."""
    while True:
        try:
            await bot.serve_appointment(appointment_id, start)
        except asyncio.CancelledError:
            raise
        except Exception:  # a call that died with the kiosk: wait for the next offer
            await asyncio.sleep(0.2)


async def _media_after(bot: ClerkBot, since: float, timeout_s: float) -> float | None:
    """Wall time of the first video frame of a call answered after `since`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for report in list(bot.reports):
            if _answered_after(report, since) and report.first_video_at is not None:
                return report.first_video_at
        await asyncio.sleep(0.05)
    return None


def _answered_after(report: BotCallReport, since: float) -> bool:
    return report.answered_at is not None and report.answered_at > since


async def _steady(bot: ClerkBot, seconds: float, timeout_s: float) -> bool:
    """Video has kept coming for `seconds` in the current call."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if bot.reports:
            report = bot.reports[-1]
            first, last = report.first_video_at, report.last_video_at
            if (
                first is not None
                and last is not None
                and time.time() - last < 0.5
                and last - first >= seconds
            ):
                return True
        await asyncio.sleep(0.1)
    return False


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "samples_s": [round(v, 2) for v in values],
        "median_s": round(statistics.median(values), 2) if values else None,
        "max_s": round(max(values), 2) if values else None,
    }


async def _run(central_url: str, token: str, clerk_token: str, appointment: tuple[str, datetime], runs: int,
               workdir: Path, faults: list[str]) -> dict[str, Any]:  # fmt: skip
    bot = ClerkBot(central_url, clerk_token, hold_s=24 * 3600)
    supervisor = Supervisor(central_url, token, workdir)
    clerk = asyncio.create_task(_clerk(bot, *appointment))
    results: dict[str, list[float]] = {name: [] for name in faults}
    detected: dict[str, list[float]] = {name: [] for name in faults}
    failures: list[str] = []
    try:
        supervisor.start()
        if not await _steady(bot, 2.0, 90):
            raise RuntimeError("the first call never carried video (see kiosk.log in the bench's folder)")
        for run in range(runs):
            for name in faults:
                if name == "renderer":
                    seen = len(bot.form_incidents)
                    at = supervisor.kill_renderers()
                    heard = await _incident_after(bot, seen, 60)
                    if heard is None or heard[1] != "reloaded":
                        failures.append(f"renderer run {run + 1}: the clerk heard {heard}")
                    else:
                        results[name].append(heard[0] - at)
                    continue
                signum = FAULTS[name]
                assert signum is not None
                at = supervisor.signal(signum)
                back = await _media_after(bot, at, WATCHDOG_S + 60)
                if back is None:
                    failures.append(f"{name} run {run + 1}: no video within {WATCHDOG_S + 60:.0f} s")
                    continue
                results[name].append(back - at)
                kills = [k for k in supervisor.watchdog_kills if k > at]
                if name != "kill9" and kills:
                    detected[name].append(kills[0] - at)
                if not await _steady(bot, 2.0, 30):
                    failures.append(f"{name} run {run + 1}: video did not stay")
    finally:
        clerk.cancel()
        await asyncio.gather(clerk, return_exceptions=True)
        supervisor.stop()
        with contextlib.suppress(Exception):
            await bot.aclose()
    figures: dict[str, Any] = {}
    for name in faults:
        if name == "renderer":
            figures["renderer_to_form_back"] = _summary(results[name])
            continue
        figures[f"{name}_to_media"] = _summary(results[name])
        if name != "kill9":
            figures[f"{name}_detected"] = _summary(detected[name])
    kill9 = results.get("kill9", [])
    return {
        "benchmark": "recovery",
        "runs": runs,
        **figures,
        "goal_kill9_to_media_s": GOAL_KILL9_S,
        "kill9_goal_met": (max(kill9) <= GOAL_KILL9_S and not failures) if kill9 else None,
        "goal_renderer_to_form_back_s": GOAL_RENDERER_S,
        "watchdog_s": WATCHDOG_S,
        "restart_s": RESTART_S,
        "kiosk_starts": len(supervisor.starts),
        "watchdog_kills": len(supervisor.watchdog_kills),
        "failures": failures,
    }


def bench_recovery(runs: int = 3, faults: list[str] | None = None) -> dict[str, Any]:
    from ..adapters.central_http import enroll

    chosen = faults or list(FAULTS)
    unknown = [f for f in chosen if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; expected some of {list(FAULTS)}")
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-recovery-"))
    with CentralProcess(workdir / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(join_before_seconds=3, poll_interval_seconds=1, no_show_after_seconds=600)
        kiosk_id = admin.create_kiosk("Recovery kiosk", "Bench site")
        clerk = admin.create_clerk("Bench clerk", "CAF")
        start = datetime.now(UTC) + timedelta(seconds=3)
        # The demo form as the form view's page: the renderer fault kills the page's render process.
        appointment_id = str(
            admin.create_appointment(
                kiosk_id, clerk, "CAF", start, timedelta(hours=2),
                allowed_origins=[central.url], start_url=f"{central.url}/demo-form/",
            )["id"]
        )  # fmt: skip
        token = asyncio.run(enroll(central.url, admin.enrollment_code(kiosk_id))).device_token
        admin.close()
        started = time.monotonic()
        result = asyncio.run(
            _run(central.url, token, clerk.token, (appointment_id, start), runs, workdir, chosen)
        )
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    result["workdir"] = str(workdir)
    return result
