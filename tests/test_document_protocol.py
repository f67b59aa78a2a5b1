"""The documents channel's protocol: what the clerk may send, checked strictly (fuzzed too)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_client.core import document_protocol as dp

ID = "0123456789abcdef0123456789abcdef"
SHA = "a" * 64


def raw(**message: Any) -> str:
    return json.dumps({"v": 1, **message})


def test_each_clerk_message_parses() -> None:
    assert dp.parse_clerk_message(raw(type="doc.request", label="justificatif de domicile")) == dp.DocRequest(
        "justificatif de domicile"
    )
    assert dp.parse_clerk_message(raw(type="doc.accept", id=ID, offset=0)) == dp.DocAccept(ID, 0)
    assert dp.parse_clerk_message(raw(type="doc.progress", id=ID, offset=65536)) == dp.DocProgress(ID, 65536)
    assert dp.parse_clerk_message(raw(type="doc.receipt", id=ID, sha256=SHA)) == dp.DocReceipt(ID, SHA)
    assert dp.parse_clerk_message(raw(type="doc.reject", id=ID, reason="refused")) == dp.DocReject(
        ID, "refused"
    )


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{", "malformed"),
        ("[]", "malformed"),
        (json.dumps({"v": 2, "type": "doc.accept", "id": ID, "offset": 0}), "unsupported_version"),
        (raw(type="doc.delete", id=ID), "unknown_type"),
        (raw(type="doc.accept", id=ID), "malformed"),  # missing offset
        (raw(type="doc.accept", id=ID, offset=0, path="/etc"), "malformed"),  # extra field
        (raw(type="doc.accept", id="../../etc/passwd", offset=0), "malformed"),
        (raw(type="doc.accept", id=ID, offset=-1), "malformed"),
        (raw(type="doc.accept", id=ID, offset=True), "malformed"),
        (raw(type="doc.accept", id=ID, offset=10**12), "malformed"),
        (raw(type="doc.receipt", id=ID, sha256="A" * 64), "malformed"),
        (raw(type="doc.reject", id=ID, reason="because"), "malformed"),
        (raw(type="doc.request", label=""), "malformed"),
        (raw(type="doc.request", label="x\u202eevil"), "malformed"),
        (raw(type="doc.request", label="x" * 9000), "too_large"),
    ],
)
def test_bad_clerk_messages_are_refused_with_a_code(message: str, code: str) -> None:
    with pytest.raises(dp.DocumentProtocolError) as refused:
        dp.parse_clerk_message(message)
    assert refused.value.code == code


def test_a_manifest_round_trips_and_hostile_ones_are_refused() -> None:
    manifest = dp.Manifest(ID, "Justificatif de domicile.pdf", "application/pdf", 1234, 3, SHA)
    assert dp.parse_manifest(dp.offer(manifest)) == manifest
    good = json.loads(dp.offer(manifest))
    for change in (
        {"size": 0},
        {"size": dp.MAX_DOCUMENT_BYTES + 1},
        {"pages": 0},
        {"mime": "application/x-sh"},
        {"name": "../../.bashrc"},
        {"sha256": "zz"},
        {"extra": 1},
    ):
        hostile = {**good, "doc": {**good["doc"], **change}}
        with pytest.raises(dp.DocumentProtocolError):
            dp.parse_manifest(json.dumps(hostile))


def test_chunks_carry_their_document_and_offset() -> None:
    packed = dp.chunk(ID, 32768, b"pdf bytes")
    assert dp.parse_chunk(packed) == (ID, 32768, b"pdf bytes")
    with pytest.raises(ValueError, match="too large"):
        dp.chunk(ID, 0, b"x" * (dp.MAX_CHUNK + 1))
    for hostile in (b"", packed[:40], b"Z" * 32 + bytes(8) + b"x", packed + b"x" * dp.MAX_CHUNK):
        with pytest.raises(dp.DocumentProtocolError):
            dp.parse_chunk(hostile)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        st.dictionaries(
            st.sampled_from(["v", "type", "id", "offset", "sha256", "reason", "label", "x"]),
            json_values | st.sampled_from(["doc.accept", "doc.receipt", "doc.reject", "doc.request", ID, 1]),
            max_size=6,
        ).map(json.dumps),
    )
)
def test_fuzz_any_input_either_parses_or_is_refused_cleanly(message: str | bytes) -> None:
    try:
        parsed = dp.parse_clerk_message(message)
    except dp.DocumentProtocolError as refused:
        assert refused.code in ("malformed", "unsupported_version", "unknown_type", "too_large")
        return
    assert isinstance(parsed, dp.DocRequest | dp.DocAccept | dp.DocProgress | dp.DocReceipt | dp.DocReject)
