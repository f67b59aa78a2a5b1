"""The form page's self-healing, Qt-free (issue 12, item 2): the retry budget that bounds reloads, the
`form.incident` message (built and read strictly, and agreeing with its published schema), the
consent machine that reports it without touching control, and the engine that tells the clerk — at
once, or on the next control channel when the call was down."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import kiosk_client
from kiosk_client.adapters.fakes import FakeCentral, FakeFormView
from kiosk_client.core import control_protocol as cp
from kiosk_client.core.models import RemoteConfig
from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.core.page_recovery import FormPageRecovered, PageIncident, RetryBudget
from kiosk_client.core.ports import CallConnectionLost, ControlChannelOpened, ControlMessageReceived
from kiosk_client.core.remote_control import ControlChanged, ControlState, RemoteControl, SendToClerk
from kiosk_client.core.session import Phase

from .test_engine import Harness, schedule_with
from .test_engine import harness as harness  # the fixture

SCHEMA = json.loads(
    (Path(kiosk_client.__file__).parent / "central" / "schemas" / "control.form.incident.json").read_text()
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_budget_allows_three_reloads_in_any_sixty_seconds_then_none() -> None:
    clock = Clock()
    budget = RetryBudget(3, 60.0, clock)
    taken = []
    for _ in range(3):
        taken.append(budget.take())
        clock.t += 10
    assert taken == [1, 2, 3]
    assert budget.take() is None and budget.take() is None  # a crash loop: no fourth, no fifth
    assert budget.used() == 3
    clock.t += 29.9  # 59.9 s after the first
    assert budget.take() is None  # still within the window of the first
    clock.t += 0.1
    assert budget.take() == 3  # the first slid out of the window: one more (the two others remain)
    budget.reset()
    assert budget.used() == 0 and budget.take() == 1
    with pytest.raises(ValueError):
        RetryBudget(0, 60)


def test_the_recovery_event_times_the_recovery() -> None:
    event = FormPageRecovered(PageIncident.KILLED, 1, 10.0, 10.1, 11.5, "https://www.caf.fr/demande")
    assert event.seconds == pytest.approx(1.5)


def test_form_incident_is_built_strictly_and_matches_its_schema() -> None:
    validator = Draft202012Validator(SCHEMA)
    assert tuple(SCHEMA["properties"]["cause"]["enum"]) == cp.FORM_INCIDENT_CAUSES
    assert tuple(p.value for p in PageIncident) == cp.FORM_INCIDENT_CAUSES
    assert tuple(SCHEMA["properties"]["outcome"]["enum"]) == cp.FORM_INCIDENT_OUTCOMES
    assert SCHEMA["properties"]["attempts"]["maximum"] == cp.MAX_FORM_ATTEMPTS
    for cause in cp.FORM_INCIDENT_CAUSES:
        for outcome in cp.FORM_INCIDENT_OUTCOMES:
            text = cp.form_incident(cause=cause, outcome=outcome, attempts=3)
            message = json.loads(text)
            assert message == {
                "v": 1,
                "type": "form.incident",
                "cause": cause,
                "outcome": outcome,
                "attempts": 3,
            }
            assert validator.is_valid(message)
            assert cp.parse_form_incident(message) == cp.FormIncident(cause, outcome, 3)  # type: ignore[arg-type]
    assert json.loads(cp.form_incident(cause="killed", outcome="failed", attempts=500))["attempts"] == 9
    for bad in ({"cause": "exploded"}, {"outcome": "maybe"}, {"attempts": -1}, {"attempts": True}):
        with pytest.raises(ValueError):
            cp.form_incident(**({"cause": "killed", "outcome": "reloaded", "attempts": 1} | bad))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"v": True},
        {"v": 1.0},
        {"type": "kiosk.screen"},
        {"cause": "exploded"},
        {"cause": ["killed"]},
        {"outcome": "reloading"},
        {"attempts": 10},
        {"attempts": -1},
        {"attempts": 1.0},
        {"attempts": "1"},
        {"url": "https://www.caf.fr/"},  # no citizen data, and no unknown field
    ],
)
def test_a_clerk_app_refuses_a_malformed_form_incident_as_the_schema_does(change: dict[str, Any]) -> None:
    message = {
        "v": 1,
        "type": "form.incident",
        "cause": "killed",
        "outcome": "reloaded",
        "attempts": 1,
    } | change
    with pytest.raises(ValueError):
        cp.parse_form_incident(message)
    strict = Draft202012Validator(
        SCHEMA,
        format_checker=None,
    )
    if change not in ({"v": 1.0}, {"attempts": 1.0}):  # JSON Schema calls 1.0 an integer; the kiosk does not
        assert not strict.is_valid(message)


def test_the_consent_machine_reports_the_incident_and_leaves_control_as_it_was() -> None:
    rc = RemoteControl(
        "a1",
        "Mme Martin",
        "CAF",
        NavigationPolicy(["https://www.caf.fr"]),
        lambda: datetime(2026, 11, 23, tzinfo=UTC),
    )
    rc.receive(json.dumps({"v": 1, "seq": 1, "type": "control.request"}))
    rc.citizen_answer(True)
    effects = rc.page_incident("killed", "reloaded", 1)
    assert not any(isinstance(e, ControlChanged) for e in effects)  # a reload grants and drops nothing
    assert rc.state is ControlState.GRANTED
    [sent] = [e for e in effects if isinstance(e, SendToClerk)]
    assert json.loads(sent.text)["type"] == "form.incident"
    assert ("2026-11-23T00:00:00+00:00", "form_reloaded_killed") in rc.audit.events
    rc.end()
    assert rc.page_incident("killed", "failed", 3) == []


async def test_the_engine_tells_the_clerk_at_once_or_on_the_next_channel(
    harness: Callable[..., Harness],
) -> None:
    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central, None, FakeFormView())
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    first = h.calls.calls[0]
    first.on_event(ControlChannelOpened())
    first.on_event(ControlMessageReceived(json.dumps({"v": 1, "seq": 1, "type": "control.request"})))
    await h.engine.answer_control(True)

    def incidents(call: Any) -> list[dict[str, Any]]:
        return [m for m in map(json.loads, call.sent_control) if m["type"] == "form.incident"]

    await h.engine.form_page_incident("killed", "reloaded", 1)
    assert incidents(first) == [
        {"v": 1, "type": "form.incident", "cause": "killed", "outcome": "reloaded", "attempts": 1}
    ]
    assert h.snapshot.control == "granted"  # still the clerk's: the page's renderer is not the consent

    # The call is down when the next incident happens: the clerk hears it on the next channel.
    first.on_event(CallConnectionLost("failed"))
    await h.engine.form_page_incident("crashed", "reloaded", 2)
    await h.engine.form_page_incident("crashed", "failed", 3)
    assert len(incidents(first)) == 1
    await h.until(lambda: len(central.offers) == 2, within=10)
    central.answer("a1")
    await h.until(lambda: len(h.calls.calls) == 2 and h.engine.session.phase is Phase.IN_CALL)
    second = h.calls.calls[1]
    second.on_event(ControlChannelOpened())
    assert incidents(second) == [  # only the latest: how things stand now
        {"v": 1, "type": "form.incident", "cause": "crashed", "outcome": "failed", "attempts": 3}
    ]
    second.on_event(ControlChannelOpened())  # a channel opening again does not repeat it
    assert len(incidents(second)) == 1
