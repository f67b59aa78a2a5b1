"""The clerk's input reaches the form view only while the citizen's consent holds, checked at the very
moment of injection, on the thread that injects.

The engine decides on its own loop that control is granted, and inputs wait in its queue and then
in Qt's event queue; the citizen's take-back touch is handled on the Qt thread. Checking consent only
where inputs are queued let a clerk's text (or an Enter that submits) land seconds after the citizen
took control back. The gate is shared by both threads: the engine opens it when the citizen grants
control, the take-back touch closes it on the Qt thread before anything else happens, and every input
carries the epoch it was accepted in, so an input accepted under an earlier grant never passes a
later one.
"""

from __future__ import annotations

import threading


class ConsentGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0
        self._open = False

    @property
    def epoch(self) -> int:
        with self._lock:
            return self._epoch

    def open(self) -> int:
        """Control granted: a new epoch starts; returns it."""
        with self._lock:
            self._epoch += 1
            self._open = True
            return self._epoch

    def close(self) -> None:
        """Control taken back, refused, released or ended: every input accepted so far is void."""
        with self._lock:
            if self._open:
                self._epoch += 1
            self._open = False

    def admits(self, epoch: int) -> bool:
        with self._lock:
            return self._open and epoch == self._epoch
