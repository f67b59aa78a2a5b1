"""Long polls on a call within one central process (central/call_watch.py): a change written here is
handed to the waiters as written, one written by another process is read once for all of them, no
waiter misses a change, and the table holds only the calls being watched now."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kiosk_client.central.call_watch import CallWatches
from kiosk_client.central.errors import ApiError
from kiosk_client.central.store import CallRow, Store

from .test_central_store_databases import a_site

APPOINTMENT = "appt_1"


def call(version: int, answer: str | None = None) -> CallRow:
    return CallRow(APPOINTMENT, version, "call_1" if version else None, "v=0" if version else None, answer,
                   False, None, None)  # fmt: skip


class Reads:
    """The database as the watches read it: counted."""

    def __init__(self, current: CallRow) -> None:
        self.current, self.count = current, 0

    def __call__(self, appointment_id: str = APPOINTMENT) -> CallRow:
        assert appointment_id == APPOINTMENT
        self.count += 1
        return self.current


async def test_a_change_written_here_reaches_every_waiter_without_a_read() -> None:
    watches, reads = CallWatches(), Reads(call(0))
    waiting = [
        asyncio.ensure_future(watches.wait_newer(APPOINTMENT, call(0), 0, 5.0, reads)) for _ in range(3)
    ]
    await asyncio.sleep(0)
    watches.publish(call(1))
    assert [c.version for c in await asyncio.wait_for(asyncio.gather(*waiting), 1.0)] == [1, 1, 1]
    assert reads.count == 0
    assert len(watches) == 0  # nobody waits any more: nothing kept


async def test_a_change_written_elsewhere_is_read_once_for_all_waiters() -> None:
    watches, reads = CallWatches(), Reads(call(0))
    waiting = [
        asyncio.ensure_future(watches.wait_newer(APPOINTMENT, call(0), 0, 5.0, reads)) for _ in range(3)
    ]
    await asyncio.sleep(0)
    reads.current = call(1)
    watches.changed_elsewhere(APPOINTMENT, reads)
    assert [c.version for c in await asyncio.wait_for(asyncio.gather(*waiting), 1.0)] == [1, 1, 1]
    assert reads.count == 1
    watches.changed_elsewhere("appt_nobody_watches", reads)  # no waiter: no read
    assert reads.count == 1


async def test_a_waiter_that_read_the_change_first_hands_it_to_those_before_it() -> None:
    """The clerk waits from version 0; the offer (version 1) is written by another process; the kiosk's
    own long poll reads version 1 before the announcement of it arrives here. The announcement, then
    not newer than what the watch holds, must not be the clerk's only chance to wake."""
    watches, reads = CallWatches(), Reads(call(1))
    clerk = asyncio.ensure_future(watches.wait_newer(APPOINTMENT, call(0), 0, 5.0, reads))
    await asyncio.sleep(0)
    kiosk = asyncio.ensure_future(watches.wait_newer(APPOINTMENT, call(1), 1, 5.0, reads))
    assert (await asyncio.wait_for(clerk, 1.0)).version == 1
    watches.changed_elsewhere(APPOINTMENT, reads)  # the late announcement: nothing more
    assert not kiosk.done()
    watches.publish(call(2, answer="v=0"))
    assert (await asyncio.wait_for(kiosk, 1.0)).answer == "v=0"


async def test_a_lost_announcement_is_made_up_for_at_the_timeout() -> None:
    watches, reads = CallWatches(), Reads(call(0))
    waiting = asyncio.ensure_future(watches.wait_newer(APPOINTMENT, call(0), 0, 0.2, reads))
    await asyncio.sleep(0)
    reads.current = call(1)  # changed elsewhere, never announced
    assert (await asyncio.wait_for(waiting, 2.0)).version == 1
    assert reads.count == 1 and len(watches) == 0


async def test_nothing_newer_returns_the_call_as_it_is_at_the_timeout() -> None:
    watches, reads = CallWatches(), Reads(call(3))
    assert (await watches.wait_newer(APPOINTMENT, call(3), 3, 0.05, reads)).version == 3
    assert len(watches) == 0


def test_a_change_judged_on_a_stale_read_is_judged_again_on_the_call_as_it_is(tmp_path: Path) -> None:
    """The answer request read the call before the offer was written (as `known`); the clerk answers
    the new offer: refused on the stale read ("not the current call"), accepted on the call as it is."""
    store = Store(tmp_path / "central.db")
    try:
        _, _, appointment_id = a_site(store)
        stale = store.call(appointment_id)
        offered = store.post_offer(appointment_id, "v=0 offer")

        def answerable(current: CallRow) -> None:
            if current.call_id != offered.call_id:
                raise ApiError(409, "stale_call", "not the current call")

        answered = store.post_answer(appointment_id, "v=0 answer", answerable, known=stale)
        assert (answered.version, answered.answer) == (offered.version + 1, "v=0 answer")
        assert store.call(appointment_id) == answered
        with pytest.raises(ApiError):  # refused on the call as it is: still refused
            store.post_answer(appointment_id, "v=0 again", lambda c: answerable(call(0)), known=stale)
    finally:
        store.close()
