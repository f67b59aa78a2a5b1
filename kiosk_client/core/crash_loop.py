"""Crash loops: a kiosk that dies again and again is put out of service instead of flapping.

Every start marks the kiosk as running; a clean stop clears the mark. A start that finds the mark
still there follows a run that never stopped cleanly (killed, crashed, the watchdog, a power cut): a
crash. CRASH_LIMIT of them within CRASH_WINDOW_S and the citizen sees « Borne momentanément
indisponible » — steady, rather than a screen that restarts under their eyes — until the staff bring it
back (or the kiosk is stopped cleanly: a run that ends normally was not crashing).
"""

from __future__ import annotations

from dataclasses import dataclass

CRASH_LIMIT = 4
CRASH_WINDOW_S = 600.0
CRASH_LOOP = "crash_loop"  # how the out-of-service state names the cause


@dataclass(frozen=True, slots=True)
class RunHistory:
    crashes: tuple[float, ...] = ()  # when each unclean end was found (at the next start)
    running: bool = False  # a run started and has not stopped cleanly

    def to_json(self) -> dict[str, object]:
        return {"crashes": list(self.crashes), "running": self.running}

    @classmethod
    def from_json(cls, document: object) -> RunHistory:
        if not isinstance(document, dict):
            raise ValueError("expected an object")
        crashes, running = document.get("crashes"), document.get("running")
        if not isinstance(crashes, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) for t in crashes
        ):
            raise ValueError("crashes: expected a list of times")
        if not isinstance(running, bool):
            raise ValueError("running: expected true or false")
        return cls(tuple(float(t) for t in crashes), running)


def on_start(history: RunHistory, now: float) -> tuple[RunHistory, bool]:
    """The history to keep for this run, and whether the kiosk is in a crash loop."""
    recent = [t for t in history.crashes if 0 <= now - t < CRASH_WINDOW_S]
    if history.running:
        recent.append(now)
    return RunHistory(tuple(recent), running=True), len(recent) >= CRASH_LIMIT


def on_clean_stop() -> RunHistory:
    return RunHistory()
