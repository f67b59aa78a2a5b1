"""The remote-control protocol and consent machine: hostile input is refused with a reason, and
nothing reaches the page without the citizen's consent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_client.core.control_protocol import (
    KEYS,
    MAX_MESSAGE_BYTES,
    KeyInput,
    NavigateInput,
    PointerInput,
    ProtocolViolation,
    TextInput,
    parse_clerk_message,
)
from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.core.remote_control import (
    ApplyInput,
    AskCitizen,
    ControlChanged,
    ControlState,
    RemoteControl,
    SendToClerk,
)

POLICY = NavigationPolicy(["https://www.caf.fr", "http://127.0.0.1:8800"])


def msg(**fields: Any) -> str:
    return json.dumps({"v": 1, "seq": 1, **fields})


def sent(effects: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(e.text) for e in effects if isinstance(e, SendToClerk)]


def control() -> RemoteControl:
    return RemoteControl(
        "a1", "Mme Martin", "CAF", POLICY, lambda: datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    )


def test_valid_messages() -> None:
    assert parse_clerk_message(msg(type="pointer", action="click", x=0.5, y=1)) == PointerInput(
        1, "click", 0.5, 1.0
    )
    assert parse_clerk_message(msg(type="key", key="Tab", modifiers=["shift"])) == KeyInput(
        1, "Tab", shift=True
    )
    text = 'Élodie Müller-Ñúñez, 12 rue de l\'Église — 3 € @ "ok"'
    assert parse_clerk_message(msg(type="text", text=text)) == TextInput(1, text)
    assert parse_clerk_message(msg(type="navigate", url="https://www.caf.fr/x")) == NavigateInput(
        1, "https://www.caf.fr/x"
    )


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_message"),
        ("[1, 2]", "invalid_message"),
        (json.dumps({"v": 2, "type": "key", "seq": 1, "key": "Tab"}), "unsupported_version"),
        (json.dumps({"v": True, "type": "key", "seq": 1, "key": "Tab"}), "unsupported_version"),
        (msg(type="shell", cmd="rm -rf /"), "unknown_type"),
        (json.dumps({"v": 1, "type": "key", "key": "Tab"}), "invalid_field"),
        (msg(type="key", key="Tab", extra=1), "invalid_field"),
        (msg(type="key"), "invalid_field"),
        (msg(type="key", key="F12"), "invalid_field"),
        (msg(type="key", key="Tab", modifiers=["ctrl"]), "invalid_field"),
        (msg(type="pointer", action="click", x=1.5, y=0.2), "out_of_range"),
        (msg(type="pointer", action="click", x=-0.1, y=0.2), "out_of_range"),
        (msg(type="pointer", action="click", x="0.5", y=0.2), "invalid_field"),
        (msg(type="pointer", action="click", x=float("nan"), y=0.2), "invalid_message"),  # NaN is not JSON
        (msg(type="pointer", action="teleport", x=0.5, y=0.2), "invalid_field"),
        (msg(type="text", text=""), "invalid_field"),
        (msg(type="text", text="a\u0000b"), "invalid_field"),
        (msg(type="text", text="line\nbreak"), "invalid_field"),
        (msg(type="text", text="x" * 1001), "too_large"),
        (msg(type="navigate", url=5), "invalid_field"),
        ("x" * (MAX_MESSAGE_BYTES + 1), "too_large"),
        (b"\x00\x01", "invalid_message"),
    ],
)
def test_bad_messages_are_refused_with_a_code(raw: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_clerk_message(raw)
    assert info.value.code == code and info.value.message


def test_the_error_carries_the_seq_when_it_can() -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_clerk_message(json.dumps({"v": 1, "type": "key", "seq": 42, "key": "F12"}))
    assert info.value.seq == 42


def test_consent_flow() -> None:
    rc = control()
    # Before consent: nothing reaches the page.
    effects = rc.receive(msg(type="text", text="bonjour"))
    assert not any(isinstance(e, ApplyInput) for e in effects)
    assert sent(effects)[0]["code"] == "not_granted"
    # The clerk asks; the citizen is asked on screen.
    effects = rc.receive(msg(type="control.request"))
    assert AskCitizen("Mme Martin", "CAF") in effects and rc.state is ControlState.REQUESTED
    # Still no input while the question is open.
    assert sent(rc.receive(msg(type="key", key="Tab")))[0]["code"] == "not_granted"
    # Only the kiosk's screen answers.
    effects = rc.citizen_answer(True)
    assert ControlChanged(ControlState.GRANTED, "Mme Martin") in effects
    assert sent(effects)[0]["control"] == "granted"
    text = TextInput(7, "Élodie")
    [apply] = rc.receive(json.dumps({"v": 1, "seq": 7, "type": "text", "text": "Élodie"}))
    assert apply == ApplyInput(text)
    assert sent(rc.input_applied(text)) == [{"v": 1, "type": "ack", "seq": 7}]
    # One touch takes it back; later input is refused and the clerk told.
    effects = rc.citizen_takes_back()
    assert sent(effects)[0]["event"] == "taken_back"
    assert sent(rc.receive(msg(type="text", text="encore")))[0]["code"] == "not_granted"
    assert rc.audit.inputs["text"] == 1 and rc.audit.refused["not_granted"] == 3


def test_refusal_and_no_network_grant() -> None:
    rc = control()
    rc.receive(msg(type="control.request"))
    rc.citizen_answer(False)
    assert rc.state is ControlState.NONE
    # There is no message a clerk (or a modified server) can send to grant control.
    for kind in ("control.grant", "grant", "control.granted", "state"):
        assert sent(rc.receive(msg(type=kind)))[0]["code"] == "unknown_type"
    assert rc.state is ControlState.NONE
    assert rc.citizen_answer(True) == []  # no question open: a late tap changes nothing


def test_navigation_outside_the_allowed_origins() -> None:
    rc = control()
    rc.receive(msg(type="control.request"))
    rc.citizen_answer(True)
    for url in (
        "https://evil.example/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,x",
        "https://www.caf.fr.evil.example/",
    ):
        effects = rc.receive(msg(type="navigate", url=url))
        assert not any(isinstance(e, ApplyInput) for e in effects), url
        assert sent(effects)[0]["code"] == "not_allowed"
    assert isinstance(rc.receive(msg(type="navigate", url="https://www.caf.fr:443/aide"))[0], ApplyInput)


def test_control_ends_with_the_session_and_the_audit_holds_no_keystrokes() -> None:
    rc = control()
    rc.receive(msg(type="control.request"))
    rc.citizen_answer(True)
    [apply] = rc.receive(msg(type="text", text="mot-de-passe-secret"))
    assert isinstance(apply, ApplyInput)
    rc.input_applied(apply.message)
    [state] = rc.page_changed("https://www.caf.fr/a?nir=1850775123456&q=secret#mdp", "Étape 1", 1280, 800)
    assert isinstance(state, SendToClerk) and json.loads(state.text)["url"] == "https://www.caf.fr/a"
    rc.end()
    assert rc.state is ControlState.NONE
    assert rc.receive(msg(type="text", text="after")) == []
    audit = json.dumps(rc.audit.to_json())
    assert "mot-de-passe-secret" not in audit
    assert "1850775123456" not in audit and "secret" not in audit and "mdp" not in audit
    assert rc.audit.to_json()["origins"] == ["https://www.caf.fr"]
    assert [e["event"] for e in rc.audit.to_json()["events"]] == [
        "requested",
        "granted",
        "session_ended",
    ]


def test_navigation_policy() -> None:
    assert POLICY.check("http://127.0.0.1:8800/demo-form").allowed
    assert not POLICY.check("http://127.0.0.1:8801/").allowed
    assert not POLICY.check("https://WWW.CAF.FR.evil/").allowed
    assert POLICY.check("https://WWW.CAF.FR/x").allowed
    assert not POLICY.check("/relative").allowed
    assert not POLICY.check("https://www.caf.fr:99999/").allowed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=15,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, "1", None, True]),
        "seq": st.one_of(st.integers(-5, 2**60), st.text(max_size=3)),
        "type": st.sampled_from(
            ["pointer", "key", "text", "navigate", "control.request", "control.release", "nope"]
        ),
        "action": st.one_of(st.sampled_from(["move", "click", "wheel", "fly"]), json_values),
        "x": st.one_of(st.floats(), json_values),
        "y": st.one_of(st.floats(-1, 2), json_values),
        "key": st.one_of(st.sampled_from([*KEYS, "F5", "ctrl+t"]), json_values),
        "modifiers": st.one_of(st.lists(st.sampled_from(["shift", "ctrl", "alt"]), max_size=2), json_values),
        "text": st.one_of(st.text(max_size=50), json_values),
        "url": st.one_of(
            st.sampled_from(["https://www.caf.fr/", "javascript:x", "file:///"]), st.text(max_size=20)
        ),
        "dx": json_values,
        "junk": json_values,
    },
)


@settings(max_examples=400)
@given(
    st.lists(st.one_of(fields.map(json.dumps), st.text(max_size=40), st.binary(max_size=20)), max_size=8),
    st.booleans(),
)
def test_fuzz_nothing_reaches_the_page_without_consent_and_nothing_crashes(
    messages: list[str | bytes], grant: bool
) -> None:
    rc = control()
    if grant:
        rc.receive(msg(type="control.request"))
        rc.citizen_answer(True)
    for raw in messages:
        effects = rc.receive(raw)
        for effect in effects:
            if isinstance(effect, ApplyInput):
                assert rc.state is ControlState.GRANTED
                if isinstance(effect.message, NavigateInput):
                    assert POLICY.check(effect.message.url).allowed
                if isinstance(effect.message, TextInput):
                    assert all(ord(c) >= 0x20 for c in effect.message.text)
            if isinstance(effect, SendToClerk):
                json.loads(effect.text)  # every reply is well-formed
        if not grant:
            assert rc.state is not ControlState.GRANTED  # no network message can grant control


def test_a_flood_of_refused_messages_is_counted_not_kept() -> None:
    rc = control()
    for i in range(20_000):
        rc.receive(msg(type="text", text="x", seq=i) if i % 2 else "not json")
    audit = rc.audit.to_json()
    assert audit["refused"] == {"not_granted": 10_000, "invalid_message": 10_000}
    assert audit["refused_kinds"] == {"text": 10_000, "message": 10_000}
    assert len(audit["refusal_examples"]) == 2
    assert len(json.dumps(audit)) < 4000
    for i in range(500):  # many pages: origins are kept once each, and the events stay bounded
        rc.page_changed(f"https://www.caf.fr/page/{i}?nom=Dupont", "t", 1280, 800)
        rc.receive(msg(type="control.request", seq=i))
        rc.receive(msg(type="control.release", seq=i))
    audit = rc.audit.to_json()
    assert audit["origins"] == ["https://www.caf.fr"] and audit["pages"] == 500
    assert len(audit["events"]) <= 100 and audit["events_dropped"] > 0
    assert "Dupont" not in json.dumps(audit)


def test_the_clerk_hears_the_view_size_as_soon_as_it_changes() -> None:
    rc = control()
    rc.page_changed("https://www.caf.fr/a", "t", 1280, 800)
    [state] = sent(rc.view_resized(1280, 640))  # the "controlled by" banner appeared above the view
    assert (state["type"], state["width"], state["height"], state["url"]) == (
        "state",
        1280,
        640,
        "https://www.caf.fr/a",
    )
    assert rc.view_resized(1280, 640) == []


def test_consent_epochs_never_let_an_earlier_grant_through() -> None:
    from kiosk_client.core.consent_gate import ConsentGate

    gate = ConsentGate()
    assert not gate.admits(gate.epoch)
    first = gate.open()
    assert gate.admits(first)
    gate.close()
    assert not gate.admits(first)
    second = gate.open()
    assert gate.admits(second) and not gate.admits(first)
