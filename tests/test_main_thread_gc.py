"""Reference cycles are freed on the Qt thread, never in the thread that happened to allocate."""

from __future__ import annotations

import gc
import threading
from typing import ClassVar

from pytestqt.qtbot import QtBot

from kiosk_client.ui.main_thread_gc import MainThreadGarbageCollector, collect_if_due


class Cycle:
    freed_in: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        Cycle.freed_in.append(threading.get_ident())


def test_a_cycle_dropped_by_another_thread_is_freed_on_the_qt_thread(qtbot: QtBot) -> None:
    gc.enable()  # as an application starts; the suite itself runs with it off (conftest)
    Cycle.freed_in.clear()
    collector = MainThreadGarbageCollector(interval_ms=20)
    try:
        assert not gc.isenabled()

        def engine_thread() -> None:
            Cycle()  # unreachable at once: only the cycle collector can free it
            # Objects kept alive past the thresholds: the automatic collector would run here.
            kept.extend([] for _ in range(50_000))

        kept: list[list[object]] = []
        worker = threading.Thread(target=engine_thread)
        worker.start()
        worker.join()
        assert Cycle.freed_in == []  # not in the engine's thread
        qtbot.waitUntil(lambda: Cycle.freed_in != [], timeout=5000)
        assert Cycle.freed_in == [threading.get_ident()]
    finally:
        collector.timer.stop()
        gc.disable()


def test_collect_if_due_follows_the_thresholds() -> None:
    gc.collect()
    assert collect_if_due() == -1  # nothing allocated since
    Cycle.freed_in.clear()
    Cycle()
    kept = [[] for _ in range(gc.get_threshold()[0] + 10)]
    assert collect_if_due() >= 0
    del kept
    assert Cycle.freed_in
