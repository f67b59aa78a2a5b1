"""ICE consent freshness (RFC 7675) that survives a satellite round trip.

Targets aioice 0.13.0 (`aioice/ice.py`, `Connection.query_consent`), as aiortc 1.16.0 uses it.
aioice sends one consent check every 4-6 s with `retransmissions=0`, so each check is a single STUN
request that fails once `stun.RETRY_RTO` (0.5 s) passes without an answer; six failed checks in a
row (`CONSENT_FAILURES`) close the connection. At a round trip of 500 ms or more every check fails,
so a satellite call dropped ≈30 s in (measured: every ≈37 s, FIELD-NETWORKS.md).

RFC 7675 section 5.1 asks for something else: a check every 5 s (randomised 0.8-1.2), each a normal
STUN transaction with its retransmissions, and consent expires only when *no* answer came back for
30 s. aioice has no knob for that (its module constants set the interval and the number of failures,
the method hard-codes no retransmission), so the narrowest fix is to override that one method in a
subclass of `Connection`, installed where aiortc creates its ICE connections
(`aiortc.rtcicetransport.Connection`). Everything else of aioice, the connectivity checks during
set-up included, is left as it is: those use aioice's default schedule (`stun.RETRY_RTO` 0.5 s,
doubling, `stun.RETRY_MAX` 6 retransmissions: 63.5 s), which a 600 ms round trip does not trouble.

tests/test_ice_consent.py fails if aioice changes under this: it checks the internals used here and
that aioice alone still loses a 600 ms call (when it stops, this patch can go).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from aioice import ice, stun
from aiortc import rtcicetransport

log = logging.getLogger(__name__)

# RFC 7675 section 5.1: the defaults it recommends.
CONSENT_INTERVAL_S = 5.0
CONSENT_EXPIRY_S = 30.0
# With aioice's 0.5 s initial timeout, doubling: requests at 0, 0.5, 1.5 and 3.5 s, and the
# transaction ends at 7.5 s. An answer to the first request is taken for up to 7.5 s (any round trip
# a call can live with), and a lost request costs nothing: the next one is at most 2.5 s away.
CONSENT_RETRANSMISSIONS = 3


class ConsentFreshConnection(ice.Connection):
    """aioice's ICE connection whose consent expires after `consent_expiry_s` without any answer,
    not after a few checks that each allowed 0.5 s."""

    # Class attributes: the tests shorten them to see expiry in seconds instead of half a minute.
    consent_interval_s = CONSENT_INTERVAL_S
    consent_expiry_s = CONSENT_EXPIRY_S
    consent_retransmissions = CONSENT_RETRANSMISSIONS

    # Counters for the whole process, for tests and diagnostics.
    checks_answered = 0
    checks_unanswered = 0

    async def query_consent(self) -> None:
        # Replaces aioice's loop (see the module's doc). aioice starts it once connect() succeeded,
        # so the remote password is known and the nominated pairs are in `_nominated`.
        assert self.remote_password is not None
        key = self.remote_password.encode("utf8")
        loop = asyncio.get_running_loop()
        answered_at: dict[int, float] = dict.fromkeys(self._nominated, loop.time())
        checks: set[asyncio.Task[None]] = set()

        async def check(pair: ice.CandidatePair) -> None:
            # A new transaction (and so a new transaction id) per check, as RFC 7675 requires.
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request, pair.remote_addr, integrity_key=key, retransmissions=self.consent_retransmissions
                )
            except (stun.TransactionError, OSError):
                type(self).checks_unanswered += 1
                return
            type(self).checks_answered += 1
            answered_at[pair.component] = loop.time()

        def next_time() -> float:
            return loop.time() + self.consent_interval_s * (0.8 + 0.4 * random.random())

        next_check = next_time()
        try:
            while True:
                now = loop.time()
                if any(now - at >= self.consent_expiry_s for at in answered_at.values()):
                    log.warning("ICE consent expired: no answer for %g s", self.consent_expiry_s)
                    break
                if now >= next_check:
                    next_check = next_time()
                    for pair in self._nominated.values():
                        task = asyncio.create_task(check(pair))
                        checks.add(task)
                        task.add_done_callback(checks.discard)
                wake = min([next_check, *(at + self.consent_expiry_s for at in answered_at.values())])
                await asyncio.sleep(max(0.0, wake - loop.time()))
        finally:
            for task in list(checks):
                task.cancel()
            for task in list(checks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # As aioice does: forget the task first, since close() would otherwise cancel and await it.
        self._query_consent_task = None
        await self.close()


def install() -> None:
    """Idempotent: aiortc's RTCIceGatherer builds its connection from the name it imported."""
    setattr(rtcicetransport, "Connection", ConsentFreshConnection)  # noqa: B010
