"""Long polls on a call: who waits on which appointment in this central process, and the newest state of
that call this process knows, handed to its waiters when it changes.

A change written by this process is handed over as written: its waiters answer without reading the
database again. A change another process wrote (PostgreSQL's NOTIFY, see database.py) is read once for
all of this process's waiters on that call, not once per waiter. Under a burst of call set-ups those
reads were a third of the central's statements, each one a round trip in which the process's loop waits.

An appointment's entry lives while someone waits on it: the table holds the calls being watched now,
not every call ever watched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .store import CallRow


class CallWatch:
    """The waiters on one appointment's call, and the newest state of it seen here."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.latest: CallRow | None = None
        self.waiters = 0

    def offer(self, call: CallRow) -> bool:
        """Keeps `call` if it is newer than what is held (versions only grow): True if it was."""
        if self.latest is None or call.version > self.latest.version:
            self.latest = call
            return True
        return False


class CallWatches:
    """This process's long polls, by appointment id."""

    def __init__(self) -> None:
        self._watches: dict[str, CallWatch] = {}

    def __len__(self) -> int:
        return len(self._watches)

    def watched(self) -> list[str]:
        return list(self._watches)

    async def wait_newer(
        self, appointment_id: str, current: CallRow, after: int, timeout_s: float, read: Callable[[], CallRow]
    ) -> CallRow:
        """The call once its version exceeds `after`, or as it is after `timeout_s` (read again then:
        a change announced by another process may have been lost with its listening connection).
        `current`: the call as read just before, with no await since, so that no change of this
        process can have slipped in between."""
        watch = self._watches.setdefault(appointment_id, CallWatch())
        watch.waiters += 1
        try:
            # Newer than what the others here hold (their requests came before the change): they take
            # it too, or the announcement of that change, then found not newer, would wake nobody.
            await self._take(watch, current)
            async with watch.changed:
                try:
                    await asyncio.wait_for(
                        watch.changed.wait_for(
                            lambda: watch.latest is not None and watch.latest.version > after
                        ),
                        timeout=timeout_s,
                    )
                except TimeoutError:
                    if watch.offer(read()):
                        watch.changed.notify_all()
            assert watch.latest is not None
            return watch.latest
        finally:
            watch.waiters -= 1
            if watch.waiters == 0:
                self._watches.pop(appointment_id, None)

    @staticmethod
    async def _take(watch: CallWatch, call: CallRow) -> None:
        """Every change of `latest` wakes the waiters: each looks whether it is newer than its own."""
        if watch.offer(call):
            async with watch.changed:
                watch.changed.notify_all()

    async def publish(self, call: CallRow) -> None:
        """This process changed the call: its waiters get it as written."""
        watch = self._watches.get(call.appointment_id)
        if watch is not None:
            await self._take(watch, call)

    async def changed_elsewhere(
        self, appointment_id: str, read: Callable[[str], CallRow], announced: CallRow | None = None
    ) -> None:
        """Another process changed the call ("": maybe any call): `announced`, the call as changed when
        the announcement carried it, else read once for all the waiters here, and only if some wait."""
        for watched in self.watched() if appointment_id == "" else [appointment_id]:
            watch = self._watches.get(watched)
            if watch is not None:
                await self._take(watch, announced if announced is not None else read(watched))
