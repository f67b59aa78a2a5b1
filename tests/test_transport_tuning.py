"""The kiosk's tuning of its transport: aiortc's SCTP over real aiortc peers on loopback (a bounded
flight, a 250 ms floor for the retransmission timer) and the interpreter's switch interval."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sys
from typing import Any

from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH

from kiosk_client.adapters import rtc_aiortc  # noqa: F401  # importing the adapter installs the tuning
from kiosk_client.adapters.sctp_tuning import (
    SCTP_MAX_FLIGHT_BYTES,
    SCTP_RTO_MIN_S,
    BoundedFlightSctpTransport,
)

from .aiortc_pair import connected_pair
from .kiosk_rig import wait_for as until


async def test_a_bulk_transfer_never_has_more_than_the_ceiling_in_flight() -> None:
    sender, receiver, channel, remote = await connected_pair("bulk")
    sctp = sender.sctp
    assert isinstance(sctp, BoundedFlightSctpTransport)
    seen = {"flight": 0, "cwnd": 0}
    send_chunk = sctp._send_chunk

    async def watched(chunk: Any) -> None:
        seen["flight"] = max(seen["flight"], sctp._flight_size)
        seen["cwnd"] = max(seen["cwnd"], sctp._cwnd)
        await send_chunk(chunk)

    sctp._send_chunk = watched  # type: ignore[method-assign]
    received = bytearray()
    remote_channel = await asyncio.wait_for(remote, 20)
    remote_channel.on("message", received.extend)
    await until(lambda: channel.readyState == "open", 20)
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = 256 * 1024
    channel.on("bufferedamountlow", drained.set)
    data = secrets.token_bytes(4_000_000)
    for start in range(0, len(data), 16 * 1024):
        if channel.bufferedAmount > 1024 * 1024:
            drained.clear()
            await drained.wait()
        channel.send(data[start : start + 16 * 1024])
    await until(lambda: len(received) == len(data), 60)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    # The window grew until it met the ceiling (aiortc alone takes it to the receiver's 1 MB window)...
    assert seen["cwnd"] == SCTP_MAX_FLIGHT_BYTES
    # ...and what was in flight stayed under it, give or take the one packet that crosses it.
    assert seen["flight"] <= SCTP_MAX_FLIGHT_BYTES + 2 * USERDATA_MAX_LENGTH
    await sender.close()
    await receiver.close()


async def test_the_retransmission_timer_follows_a_short_round_trip_down_to_its_floor() -> None:
    sender, receiver, _channel, remote = await connected_pair("bulk")
    await asyncio.wait_for(remote, 20)
    sctp = sender.sctp
    assert sctp is not None
    for _ in range(60):  # one-millisecond round trips: the estimate converges below any floor
        sctp._update_rto(0.001)
    assert sctp._rto == SCTP_RTO_MIN_S  # aiortc alone stops at RFC 4960's 1 s
    await sender.close()
    await receiver.close()


def test_the_kiosks_set_up_shortens_the_interpreters_switch_interval() -> None:
    from kiosk_client.runtime import GIL_SWITCH_INTERVAL_S
    from kiosk_client.ui.app import prepare_qt_environment

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        prepare_qt_environment()
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S
    finally:
        sys.setswitchinterval(before)


async def test_under_the_uplink_control_its_window_rules_except_on_long_paths_and_after_a_timeout() -> None:
    sender, receiver, _, _ = await connected_pair("window")
    sctp = sender.sctp
    assert isinstance(sctp, BoundedFlightSctpTransport)
    sctp._cwnd = 4 * USERDATA_MAX_LENGTH  # SCTP's own window after a few random losses
    assert sctp._cwnd == 4 * USERDATA_MAX_LENGTH  # no control: SCTP's window alone
    sctp.set_pace(600_000)
    sctp.flight_cap = 20 * USERDATA_MAX_LENGTH
    assert sctp._cwnd == 20 * USERDATA_MAX_LENGTH  # the control's window, not the loss-halved one
    sctp.own_window = True  # a long path: SCTP's slower growth bounds the documents too
    assert sctp._cwnd == 4 * USERDATA_MAX_LENGTH
    sctp.own_window = False
    sctp._cwnd = USERDATA_MAX_LENGTH  # a retransmission timeout: the link may be gone
    assert sctp._cwnd == USERDATA_MAX_LENGTH
    await sender.close()
    await receiver.close()
