"""Python's cycle collector, run on the Qt thread only.

Left automatic, the collector runs in whichever thread happens to allocate when a generation's
threshold is crossed: the engine's loop, a test's central. A reference cycle that holds a Qt wrapper
(a closure over a page or a widget) is then freed there, outside the Qt thread, and that can crash
the process (a segfault "Garbage-collecting" in the reference central's thread of a test run). So
automatic collection is turned off, and a timer on the Qt thread collects with the same thresholds
(the recipe PyQt applications such as calibre use).
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

INTERVAL_MS = 500


def collect_if_due() -> int:
    """Collects the generations whose thresholds were crossed, as the automatic collector would;
    returns the generation collected, or -1."""
    threshold = gc.get_threshold()
    counts = gc.get_count()
    if counts[0] <= threshold[0]:
        return -1
    generation = 0
    if counts[1] > threshold[1]:
        generation = 1
        if counts[2] > threshold[2]:
            generation = 2
    gc.collect(generation)
    return generation


class MainThreadGarbageCollector(QObject):
    """Create on the Qt thread, keep alive as long as the application (a child of it)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(collect_if_due)
        self.timer.start()
        log.debug("cycle collection moved to the Qt thread, every %d ms", interval_ms)
