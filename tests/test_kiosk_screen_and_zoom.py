"""The two messages issue 10 item 8 added to the control channel, against the real engine and
consent machine with fake ports: `kiosk.screen` tells the clerk what the citizen's screen shows
(bounded, no citizen data, sent on channel open and on every change), and the clerk's `zoom` is an
input like the others: refused without consent, validated to the citizen's own levels."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeFormView, MemoryCache
from kiosk_client.core import control_protocol as cp
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.models import Appointment, RemoteConfig, Schedule
from kiosk_client.core.ports import ControlChannelOpened, ControlMessageReceived
from kiosk_client.core.session import Phase, Timing

from .kiosk_rig import wait_for


def test_zoom_is_parsed_only_at_the_citizens_levels() -> None:
    for level in (1, 1.0, 1.25, 1.5, 1.75, 2, 2.0):
        message = cp.parse_clerk_message(json.dumps({"v": 1, "type": "zoom", "seq": 3, "level": level}))
        assert message == cp.ZoomInput(3, float(level))
    for level, code in (
        (3, "out_of_range"),
        (0.5, "out_of_range"),
        (1.3, "out_of_range"),
        (-1, "out_of_range"),
        (True, "invalid_field"),
        ("1.25", "invalid_field"),
        (None, "invalid_field"),
    ):
        with pytest.raises(cp.ProtocolViolation) as refused:
            cp.parse_clerk_message(json.dumps({"v": 1, "type": "zoom", "seq": 4, "level": level}))
        assert refused.value.code == code and refused.value.seq == 4, level
    with pytest.raises(cp.ProtocolViolation) as refused:
        cp.parse_clerk_message(json.dumps({"v": 1, "type": "zoom", "seq": 5, "level": 1, "step": 1}))
    assert refused.value.code == "invalid_field"


def test_kiosk_screen_is_bounded() -> None:
    text = cp.kiosk_screen(
        documents="open", pages=500, language="en", zoom=1.3, microphone=False, camera=True
    )
    assert json.loads(text) == {
        "v": 1,
        "type": "kiosk.screen",
        "documents": "open",
        "pages": cp.MAX_SCREEN_PAGES,
        "language": "en",
        "zoom": 1.25,
        "microphone": False,
        "camera": True,
    }
    for bad in ({"documents": "pages: 3"}, {"language": "français"}, {"language": "FR"}):
        arguments: dict[str, Any] = {
            "documents": "open",
            "pages": 0,
            "language": "fr",
            "zoom": 1.0,
            "microphone": True,
            "camera": True,
        }
        with pytest.raises(ValueError):
            cp.kiosk_screen(**(arguments | bad))


async def test_the_engine_tells_the_screen_and_zooms_only_with_consent() -> None:
    start = datetime.now(UTC)
    appointment = Appointment(
        "a1",
        "CAF",
        "Mme Martin",
        start,
        start + timedelta(minutes=10),
        allowed_origins=("https://www.caf.fr",),
        start_url="https://www.caf.fr/demande",
    )
    central = FakeCentral(
        Schedule("Borne 1", "France Services", (appointment,), etag='"a1"'),
        RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60),
    )
    calls = FakeCallFactory()
    form = FakeFormView()
    engine = KioskEngine(
        central,
        calls,
        MemoryCache(),
        CentralClock(SystemClock()),
        lambda event: None,
        local_timing=Timing(ended_screen=timedelta(seconds=0.3), rating_for=timedelta(seconds=0.3)),
        tick_s=0.01,
        form=form,
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: bool(central.offers))
        call = calls.calls[0]

        def received() -> list[dict[str, Any]]:
            return [json.loads(text) for text in call.sent_control]

        def screens() -> list[dict[str, Any]]:
            return [m for m in received() if m["type"] == "kiosk.screen"]

        def answer(seq: int) -> dict[str, Any]:
            [found] = [m for m in received() if m.get("seq") == seq]
            return found

        central.answer("a1")
        await wait_for(lambda: engine.session.phase is Phase.IN_CALL)
        await engine.screen_shown("fr", False, 1.0)
        call.on_event(ControlChannelOpened())
        await wait_for(lambda: len(screens()) >= 1)
        assert screens()[-1] == {
            "v": 1,
            "type": "kiosk.screen",
            "documents": "closed",
            "pages": 0,
            "language": "fr",
            "zoom": 1.0,
            "microphone": True,
            "camera": True,
        }
        count = len(screens())
        await engine.screen_shown("fr", False, 1.0)  # nothing changed: nothing sent
        await engine.set_microphone(False)
        await engine.screen_shown("en", True, 1.0)
        await wait_for(lambda: screens()[-1]["language"] == "en")
        assert screens()[-1]["microphone"] is False and screens()[-1]["documents"] == "open"
        assert len(screens()) == count + 2
        await engine.form_page_changed("https://www.caf.fr/demande?nom=Dupont", "Demande", 1280, 800)
        assert all(
            "Dupont" not in text and "caf.fr" not in text for text in call.sent_control if "screen" in text
        )

        # Zoom without the citizen's consent: refused, and nothing reaches the form view.
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "type": "zoom", "seq": 1, "level": 1.5})))
        await wait_for(lambda: any(m.get("seq") == 1 for m in received()))
        assert answer(1)["code"] == "not_granted" and form.applied == []
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "type": "control.request", "seq": 2})))
        await engine.answer_control(True)
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "type": "zoom", "seq": 3, "level": 1.5})))
        await wait_for(lambda: any(m.get("seq") == 3 for m in received()))
        assert answer(3) == {"v": 1, "type": "ack", "seq": 3}
        assert form.applied == [cp.ZoomInput(3, 1.5)]
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "type": "zoom", "seq": 4, "level": 4})))
        await wait_for(lambda: any(m.get("seq") == 4 for m in received()))
        assert answer(4)["code"] == "out_of_range" and len(form.applied) == 1
        await engine.take_back_control()
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "type": "zoom", "seq": 5, "level": 1})))
        await wait_for(lambda: any(m.get("seq") == 5 for m in received()))
        assert answer(5)["code"] == "not_granted" and len(form.applied) == 1
        assert engine._control is not None and engine._control.audit.inputs["zoom"] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
