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
        self.latest: CallRow | None = None
        # (the version each waiter already has, its future): resolved as soon as a newer call is
        # offered, in the same callback (a wake-up costs the waiter one turn of the loop, no more:
        # under a burst, every turn is the whole backlog's).
        self.waiting: list[tuple[int, asyncio.Future[None]]] = []

    def offer(self, call: CallRow) -> None:
        """Keeps `call` if it is newer than what is held (versions only grow), and wakes the waiters
        it is news for."""
        if self.latest is not None and call.version <= self.latest.version:
            return
        self.latest = call
        for after, waiter in self.waiting:
            if call.version > after and not waiter.done():
                waiter.set_result(None)


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
        process can have slipped in between. Newer than what the others here hold (their requests
        came before the change), it wakes them too: the announcement of that change, then found not
        newer, would wake nobody."""
        watch = self._watches.setdefault(appointment_id, CallWatch())
        watch.offer(current)
        assert watch.latest is not None
        if watch.latest.version <= after:
            waiter = asyncio.get_running_loop().create_future()
            entry = (after, waiter)
            watch.waiting.append(entry)
            try:
                async with asyncio.timeout(timeout_s):
                    await waiter
            except TimeoutError:
                watch.offer(read())
            finally:
                watch.waiting.remove(entry)
        if not watch.waiting:
            self._watches.pop(appointment_id, None)
        assert watch.latest is not None
        return watch.latest

    def publish(self, call: CallRow) -> None:
        """This process changed the call: its waiters get it as written."""
        watch = self._watches.get(call.appointment_id)
        if watch is not None:
            watch.offer(call)

    def changed_elsewhere(
        self, appointment_id: str, read: Callable[[str], CallRow], announced: CallRow | None = None
    ) -> None:
        """Another process changed the call ("": maybe any call): `announced`, the call as changed when
        the announcement carried it, else read once for all the waiters here, and only if some wait."""
        for watched in self.watched() if appointment_id == "" else [appointment_id]:
            watch = self._watches.get(watched)
            if watch is not None:
                watch.offer(announced if announced is not None else read(watched))
