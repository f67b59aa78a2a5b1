"""Reading the central's JSON: strict types, clear errors, unknown fields ignored."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk_client.core.errors import MalformedResponse
from kiosk_client.core.wire import (
    parse_call_signal,
    parse_remote_config,
    parse_schedule,
    schedule_to_document,
)


def good_appointment(**overrides: Any) -> dict[str, Any]:
    item = {
        "id": "appt_1",
        "service": "CAF",
        "clerk_name": "Mme Martin",
        "start": "2026-11-23T14:30:00+01:00",
        "end": "2026-11-23T15:00:00+01:00",
        "allowed_origins": ["https://www.caf.fr"],
        "start_url": "https://www.caf.fr/allocataires",
    }
    item.update(overrides)
    return item


def document(*appointments: Any, **extra: Any) -> dict[str, Any]:
    return {
        "kiosk": {"id": "k", "name": "Borne 1", "site_name": "France Services"},
        "appointments": list(appointments),
        **extra,
    }


def test_reads_a_schedule_and_ignores_unknown_fields() -> None:
    schedule = parse_schedule(document(good_appointment(colour="blue"), future_field={"x": 1}), '"e1"')
    assert schedule.etag == '"e1"'
    assert schedule.site_name == "France Services"
    [a] = schedule.appointments
    assert (a.id, a.service, a.clerk_name, a.allowed_origins) == (
        "appt_1",
        "CAF",
        "Mme Martin",
        ("https://www.caf.fr",),
    )
    assert a.start.utcoffset() is not None


def test_round_trip_through_the_cache_document() -> None:
    schedule = parse_schedule(document(good_appointment()), None)
    assert parse_schedule(schedule_to_document(schedule), None).appointments == schedule.appointments


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "$: expected an object, got array"),
        ({"appointments": []}, "$.kiosk: missing"),
        (document(appointments="x"), "$.appointments: expected an array, got string"),
        (
            {"kiosk": {"name": 3, "site_name": "s"}, "appointments": []},
            "$.kiosk.name: expected a string, got number",
        ),
    ],
)
def test_a_broken_envelope_is_rejected_with_the_field_named(doc: Any, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message.replace("$", r"\$").replace("[", r"\[")):
        parse_schedule(doc, None)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (good_appointment(start=1234), "start: expected a string, got number"),
        (good_appointment(start="tomorrow"), "expected an ISO 8601 date-time"),
        (good_appointment(start="2026-11-23T14:30:00"), "without a time zone"),
        (good_appointment(end="2026-11-23T14:00:00+01:00"), "end is not after start"),
        (good_appointment(service=None), "service: missing"),
        (good_appointment(allowed_origins=["file:///etc"]), "expected a web origin"),
        (good_appointment(start_url="javascript:alert(1)"), "start_url: expected an http(s) URL"),
        ("not an object", "expected an object"),
    ],
)
def test_a_bad_appointment_is_set_aside_and_the_others_kept(bad: Any, reason: str) -> None:
    schedule = parse_schedule(document(bad, good_appointment(id="appt_2")), None)
    assert [a.id for a in schedule.appointments] == ["appt_2"]
    [(_, why)] = schedule.rejected
    assert reason in why


def test_duplicate_ids_are_set_aside() -> None:
    schedule = parse_schedule(document(good_appointment(), good_appointment()), None)
    assert len(schedule.appointments) == 1 and schedule.rejected[0][1].endswith("duplicate id")


def test_remote_config_defaults_and_ranges() -> None:
    config = parse_remote_config(
        {
            "ice_servers": [
                {"urls": ["turn:turn.example.org:443?transport=tcp"], "username": "u", "credential": "c"}
            ]
        }
    )
    assert config.ice_servers[0].username == "u" and config.poll_interval_s == 15.0
    with pytest.raises(MalformedResponse, match="poll_interval_seconds"):
        parse_remote_config({"poll_interval_seconds": 0})
    with pytest.raises(MalformedResponse, match="urls"):
        parse_remote_config({"ice_servers": [{"urls": ["http://evil"]}]})
    with pytest.raises(MalformedResponse, match="expected a number"):
        parse_remote_config({"join_before_seconds": True})


def test_call_signal() -> None:
    signal = parse_call_signal(
        {
            "version": 3,
            "call_id": "c",
            "has_answer": True,
            "answer": {"type": "answer", "sdp": "v=0"},
            "ended": False,
        }
    )
    assert signal.answer is not None and signal.answer.sdp == "v=0"
    with pytest.raises(MalformedResponse, match="expected 'answer'"):
        parse_call_signal({"version": 3, "has_answer": True, "answer": {"type": "offer", "sdp": "v=0"}})
    with pytest.raises(MalformedResponse, match="version"):
        parse_call_signal({"version": "3"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_is_either_read_or_rejected_cleanly(value: Any) -> None:
    for parse in (lambda v: parse_schedule(v, None), parse_remote_config, parse_call_signal):
        with contextlib.suppress(MalformedResponse):
            parse(value)


@given(st.lists(st.dictionaries(st.sampled_from(list(good_appointment())), json_values), max_size=5))
def test_any_appointment_list_is_read_or_set_aside(items: list[dict[str, Any]]) -> None:
    schedule = parse_schedule(document(*items), None)
    assert len(schedule.appointments) + len(schedule.rejected) == len(items)
