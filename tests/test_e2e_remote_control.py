"""End to end: a clerk (the bot, over a real aiortc data channel) asks for control; only a touch on
the kiosk grants it; the clerk types Unicode text into the demo form, exactly; the citizen takes
control back and the clerk's next input is refused."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtcsctptransport import WEBRTC_STRING
from pytestqt.qtbot import QtBot

from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import ClerkBot
from kiosk_client.ui.bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, form_field, make_engine

pytestmark = pytest.mark.e2e

TEXT = "Élodie Müller-Ñúñez, 12 rue de l'Église"


def test_consented_remote_control_of_the_form(qtbot: QtBot, site: Site, tmp_path: Path) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    start = datetime.now().astimezone()
    appointment = site.admin.create_appointment(
        site.kiosk_id,
        site.clerk,
        "CAF",
        start,
        allowed_origins=[site.url],
        start_url=f"{site.url}/demo-form/",
    )
    appointment_id = str(appointment["id"])
    engine_loop, bot_loop = LoopThread("engine"), LoopThread("bot")
    engine_loop.start()
    bot_loop.start()
    bridge = EngineBridge(engine_loop)
    recorder = Recorder()

    def publish(event: Any) -> None:
        recorder(event)
        bridge.publish(event)

    engine = make_engine(site.url, token, tmp_path, publish, BridgeVideoSink(bridge), BridgeFormView(bridge))
    window = KioskWindow(bridge, engine, "fr")
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    bot = ClerkBot(site.url, site.clerk.token, hold_s=120, answer_at_start=False)
    engine_loop.submit(engine.run())
    bot_loop.submit(bot.serve_appointment(appointment_id, datetime.fromisoformat(str(appointment["start"]))))

    def send(**message: Any) -> None:
        bot_loop.submit(bot.send_control(appointment_id, **message)).result(timeout=5)

    def reply(seq: int) -> dict[str, Any] | None:
        return next(
            (m for m in list(bot.control_received) if m.get("seq") == seq and m["type"] in ("ack", "error")),
            None,
        )

    def states() -> list[str]:
        return [m["control"] for m in list(bot.control_received) if m["type"] == "state"]

    try:
        qtbot.waitUntil(lambda: engine.session.phase is Phase.IN_CALL, timeout=20_000)
        qtbot.waitUntil(
            lambda: appointment_id in bot.control_channels and window.call.form.page is not None,
            timeout=10_000,
        )
        qtbot.waitUntil(
            lambda: (
                "login-id" in str(form_field(qtbot, window.call.form, "login-id") is not None and "login-id")
            ),
            timeout=10_000,
        )
        assert window.call.form_area.isVisible()

        send(seq=1, type="text", text="avant consentement")
        qtbot.waitUntil(lambda: reply(1) is not None, timeout=5000)
        assert reply(1)["code"] == "not_granted"  # type: ignore[index]

        send(seq=2, type="control.request")
        qtbot.waitUntil(window.call.consent.isVisible, timeout=5000)
        assert "Mme Martin propose" in window.call.consent_question.text()
        window.call.consent_accept.click()  # the citizen's touch
        qtbot.waitUntil(lambda: "granted" in states(), timeout=5000)
        qtbot.waitUntil(window.call.control_banner.isVisible, timeout=5000)

        send(seq=3, type="text", text=TEXT)  # the demo form focuses its first field
        qtbot.waitUntil(lambda: reply(3) is not None, timeout=5000)
        assert reply(3) == {"v": 1, "type": "ack", "seq": 3}
        qtbot.waitUntil(lambda: form_field(qtbot, window.call.form, "login-id") == TEXT, timeout=5000)

        send(seq=4, type="key", key="Tab")  # to the password field: the clerk may not type there
        send(seq=5, type="text", text="secret")
        qtbot.waitUntil(lambda: reply(5) is not None, timeout=5000)
        assert reply(5)["code"] == "citizen_only_field"  # type: ignore[index]
        assert form_field(qtbot, window.call.form, "login-password") == ""

        # A modified clerk app sends hostile frames on both channels: the call goes on, and the control
        # channel answers each with an error (each of these once ended the call inside aiortc's receive
        # loop; this kiosk has no scanner, the documents side's answers are in test_hostile_clerk_messages).
        documents = bot.document_channels[appointment_id]
        nested = ("[" * 4000 + "]" * 4000).encode()
        for channel in (bot.control_channels[appointment_id], documents):
            for raw in (b'{"v":1,"type":"text","seq":7,"text":"\xff\xfe"}', nested):
                bot_loop.submit(send_raw_text(channel, raw)).result(timeout=5)
        qtbot.waitUntil(
            lambda: sum(m["type"] == "error" and m["seq"] is None for m in list(bot.control_received)) >= 2,
            timeout=5000,
        )
        send(seq=8, type="pointer", action="move", x=0.5, y=0.5)
        qtbot.waitUntil(lambda: reply(8) is not None, timeout=5000)
        assert reply(8) == {"v": 1, "type": "ack", "seq": 8}
        assert engine.session.phase is Phase.IN_CALL and not engine.session.reconnecting

        window.call.take_back.click()  # one touch
        qtbot.waitUntil(lambda: states()[-1] == "none", timeout=5000)
        send(seq=6, type="text", text=" après")
        qtbot.waitUntil(lambda: reply(6) is not None, timeout=5000)
        assert reply(6)["code"] == "not_granted"  # type: ignore[index]
        assert form_field(qtbot, window.call.form, "login-id") == TEXT

        bot_loop.submit(
            bot._client.post(
                f"/appointments/{appointment_id}/hangup",
                json={"call_id": served_call_id(bot, appointment_id), "reason": "done"},
            )
        )
        recorder.finished.wait(15)
        [record] = recorder.records()
        audit = record.control_audit
        assert audit is not None and audit["inputs"] == {"text": 1, "key": 1, "pointer": 1}
        assert audit["refused"]["invalid_message"] == 2
        assert TEXT not in json.dumps(audit) and "secret" not in json.dumps(audit)
        qtbot.waitUntil(lambda: window.call.form.sessions_released(), timeout=10_000)
    finally:
        engine_loop.stop()
        bot_loop.submit(bot.aclose())
        bot_loop.stop()


async def send_raw_text(channel: Any, data: bytes) -> None:
    """A text frame with any bytes in it, as a modified clerk app can send (aiortc's send() encodes)."""
    sctp = channel.transport
    sctp._data_channel_queue.append((channel, WEBRTC_STRING, data))
    await sctp._data_channel_flush()


def served_call_id(bot: ClerkBot, appointment_id: str) -> str:
    return next(r.call_id for r in bot.reports if r.appointment_id == appointment_id)
