"""No message from the clerk's side can hurt the call: nesting, giant numbers, invalid UTF-8, a handler
that raises — each is refused with an error, counted, and the channel keeps working."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiortc.rtcsctptransport import WEBRTC_STRING

from kiosk_client.adapters import rtc_aiortc  # noqa: F401  # importing the adapter installs the tuning
from kiosk_client.adapters.sctp_tuning import BoundedFlightSctpTransport
from kiosk_client.core import bounded_json
from kiosk_client.core import document_protocol as dp
from kiosk_client.core.control_protocol import ProtocolViolation, parse_clerk_message
from kiosk_client.core.document_transfer import DocumentTransfers

from .aiortc_pair import connected_pair
from .kiosk_rig import wait_for as until

NESTED = "[" * 100_000 + "]" * 100_000
NESTED_IN_OBJECT = '{"v":1,"type":"doc.request","label":' + "[" * 5000 + "]" * 5000 + "}"


@pytest.mark.parametrize(
    "raw",
    [
        NESTED,
        NESTED_IN_OBJECT,
        '{"v":1,"seq":' + "9" * 100_000 + "}",
        '{"v":1,"seq":1e999}',
        '{"v":1,"seq":NaN}',
        b'{"v":1,"type":"text","seq":1,"text":"\xff\xfe"}',
        '{"v":1,"type":"text","seq":1,"text":"\udcff"}',  # what an undecodable byte becomes
        "",
        "{",
    ],
)
def test_unsafe_json_is_refused_with_a_reason(raw: str | bytes) -> None:
    with pytest.raises(bounded_json.UnsafeJson) as info:
        bounded_json.loads(raw)
    assert str(info.value)


def test_reasonable_json_passes_and_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps(
        {"label": '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ {{{{{{{{{{{{{{{{{{{ \\" ]', "n": [1, 2.5, -3]}
    )
    assert bounded_json.loads(text)["n"] == [1, 2.5, -3]
    assert bounded_json.loads(b'{"a": "\xc3\xa9"}') == {"a": "é"}


@pytest.mark.parametrize("raw", [NESTED, '{"v":1,"type":"text","seq":1,"text":"a\udcffb"}', b"\xff"])
def test_control_protocol_refuses_hostile_frames_as_protocol_errors(raw: str | bytes) -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_clerk_message(raw)
    assert info.value.code in ("invalid_message", "too_large")


@pytest.mark.parametrize(
    "raw", [NESTED[:8000], NESTED_IN_OBJECT[:8000], '{"v":1,"type":"doc.request","label":"\udcff"}']
)
def test_document_protocol_refuses_hostile_frames_as_protocol_errors(raw: str) -> None:
    with pytest.raises(dp.DocumentProtocolError):
        dp.parse_clerk_message(raw)


async def test_the_documents_side_answers_and_counts_what_it_refuses_even_when_handling_fails() -> None:
    sent: list[dict[str, Any]] = []

    class Link:
        def is_open(self) -> bool:
            return True

        def send_text(self, text: str) -> None:
            sent.append(json.loads(text))

        def send_bytes(self, data: bytes) -> None: ...

        def buffered_amount(self) -> int:
            return 0

        async def drained(self, low: int) -> None: ...

        async def ready(self) -> None: ...

    class Source:
        def read(self, doc_id: str) -> bytes:
            raise AssertionError("nothing is read")

    def requested(label: str) -> None:
        raise RuntimeError("a bug in the UI's handler")

    transfers = DocumentTransfers(Source(), lambda t: None, requested)  # type: ignore[arg-type]
    transfers.attach(Link())
    for _ in range(1000):
        transfers.on_message(NESTED[:8000])
    transfers.on_message('{"v":1,"type":"doc.request","label":"papiers"}')  # its handler raises
    assert transfers.refused == {"malformed": 1000, "internal_error": 1}
    assert [m["code"] for m in sent[-2:]] == ["malformed", "internal_error"]
    await transfers.close()


async def _send_raw_text(channel: Any, data: bytes) -> None:
    """A text frame with arbitrary bytes, as a modified clerk app could send it (aiortc's send()
    would encode a str)."""
    sctp = channel.transport
    sctp._data_channel_queue.append((channel, WEBRTC_STRING, data))
    await sctp._data_channel_flush()


async def test_invalid_utf8_and_a_raising_handler_do_not_end_the_call() -> None:
    # The answerer plays the kiosk: it receives what the offerer (the clerk here) sends.
    clerk_pc, kiosk_pc, clerk_channel, kiosk_side = await connected_pair("control")
    kiosk_channel = await asyncio.wait_for(kiosk_side, 20)
    assert isinstance(kiosk_pc.sctp, BoundedFlightSctpTransport)
    received: list[str | bytes] = []
    boom = {"armed": True}

    def on_message(raw: str | bytes) -> None:
        received.append(raw)
        if boom["armed"]:
            boom["armed"] = False
            raise RuntimeError("a handler bug")

    kiosk_channel.on("message", on_message)
    await until(lambda: clerk_channel.readyState == "open", 20)
    before = BoundedFlightSctpTransport.contained_errors
    clerk_channel.send("first")  # its handler raises: contained
    await _send_raw_text(clerk_channel, b'{"v":1,"type":"text","seq":2,"text":"\xff\xfe"}')
    clerk_channel.send("still here")
    await until(lambda: "still here" in received, 10)
    assert BoundedFlightSctpTransport.contained_errors == before + 1
    bad = received[1]
    assert isinstance(bad, str)
    with pytest.raises(ProtocolViolation):
        parse_clerk_message(bad)  # the bad bytes reach the protocol, which refuses them
    assert kiosk_pc.connectionState == "connected" and kiosk_channel.readyState == "open"
    # ...and the kiosk can still answer.
    answers: list[str] = []
    clerk_channel.on("message", answers.append)
    kiosk_channel.send("ack")
    await until(lambda: answers == ["ack"], 10)
    await clerk_pc.close()
    await kiosk_pc.close()
