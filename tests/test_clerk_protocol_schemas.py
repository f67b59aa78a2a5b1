"""The clerk-side contract (docs/clerk-protocol.md): the JSON Schemas the reference central publishes
for the data channels' messages say exactly what the kiosk's code does.

- every message the kiosk sends, made by the real code (RemoteControl, the engine, DocumentTransfers)
  and answered by the reference clerk receiver, matches its published schema;
- every clerk message the kiosk accepts matches its schema, and the schemas refuse exactly what the
  kiosk's parsers refuse: hand-made hostile messages, and a corpus generated from the schemas' shapes;
- every message type, error code and state event the code names has its schema or enum value, and
  the document names them all.

The schemas are fetched from a reference central over loopback, as a clerk app would. "Integer" is
read as the kiosk reads it (a JSON number written without a fraction or exponent); where the kiosk
is more lenient than the contract, the difference is pinned by its own test below.
"""

from __future__ import annotations

import ast
import asyncio
import fnmatch
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators

import kiosk_client
from kiosk_client.adapters.fakes import (
    FakeCallFactory,
    FakeCentral,
    FakeDocumentLink,
    FakeFormView,
    MemoryCache,
)
from kiosk_client.adapters.printer_ipp import REASONS
from kiosk_client.central.server import CentralThread
from kiosk_client.core import bounded_json
from kiosk_client.core import control_protocol as cp
from kiosk_client.core import document_protocol as dp
from kiosk_client.core import print_protocol as pp
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.document_transfer import DocumentTransfers, TransferStatus
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.models import Appointment, RemoteConfig, Schedule
from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.core.ports import ControlChannelOpened, ControlMessageReceived
from kiosk_client.core.remote_control import RemoteControl, SendToClerk
from kiosk_client.core.session import Phase, Timing
from kiosk_client.tools.document_receiver import DocumentReceiver

from .kiosk_rig import wait_for

PACKAGE = Path(kiosk_client.__file__).resolve().parent
ROOT = PACKAGE.parent
DOCUMENT = ROOT / "docs" / "clerk-protocol.md"
CLERK, KIOSK = "clerk-to-kiosk", "kiosk-to-clerk"
CHANNELS = ("control", "documents")
ID = "0123456789abcdef0123456789abcdef"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

# The kiosk's reading of "integer": 1, never 1.0 or 1e0 (Python's json turns those into floats, which
# the kiosk's parsers refuse; JSON Schema itself calls them integers).
KioskReading = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


# --------------------------------------------------------------------------- the published schemas


@dataclass
class Published:
    listing: list[dict[str, Any]]
    schemas: dict[str, dict[str, Any]]  # by name
    content_types: dict[str, str]
    _validators: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Published({len(self.schemas)} schemas)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints an argument
        printer.text(repr(self))

    def names(self, channel: str, direction: str) -> dict[str, str]:
        """Message type → schema name, for one channel and direction."""
        return {
            s["x-type"]: name
            for name, s in self.schemas.items()
            if s["x-channel"] == channel and s["x-direction"] == direction
        }

    def schema(self, channel: str, direction: str, kind: str) -> dict[str, Any]:
        names = self.names(channel, direction)
        assert kind in names, f"no published schema for {channel} {direction} message {kind!r}"
        return self.schemas[names[kind]]

    def validator(self, name: str) -> Any:
        if name not in self._validators:
            self._validators[name] = KioskReading(self.schemas[name])
        return self._validators[name]

    def accepts(self, channel: str, message: Any) -> bool:
        """The contract's verdict on a clerk message: does one of the channel's clerk→kiosk schemas
        take it? (Each fixes `type`, so at most one can.)"""
        return any(self.validator(name).is_valid(message) for name in self.names(channel, CLERK).values())

    def check_sent(self, channel: str, text: str) -> dict[str, Any]:
        """A text frame the kiosk sent: it matches its schema, under both readings of "integer"."""
        message = json.loads(text)
        assert isinstance(message, dict) and isinstance(message.get("type"), str), text
        schema = self.schema(channel, KIOSK, message["type"])
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(message)]
        assert not errors, f"{text} does not match its schema: {errors}"
        assert KioskReading(schema).is_valid(message), text
        return message


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The schemas as a clerk app gets them: from a reference central, over loopback."""
    with (
        CentralThread(tmp_path_factory.mktemp("central") / "central.db") as central,
        httpx.Client(base_url=central.url, timeout=10) as client,
    ):
        index = client.get("/api/v1/schemas/")
        assert index.status_code == 200, index.text
        listing = index.json()["schemas"]
        schemas, content_types = {}, {}
        for item in listing:
            response = client.get(item["url"])
            assert response.status_code == 200, item
            schemas[item["name"]] = response.json()
            content_types[item["name"]] = response.headers["content-type"]
        yield Published(listing, schemas, content_types)


def walk_objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            yield schema
        for value in schema.values():
            yield from walk_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from walk_objects(value)


def test_the_central_lists_and_serves_one_strict_2020_12_schema_per_message(published: Published) -> None:
    assert published.listing, "no schema is published"
    for item in published.listing:
        name, schema = item["name"], published.schemas[item["name"]]
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert published.content_types[name].startswith("application/schema+json")
        assert item == {
            "name": name,
            "url": f"/api/v1/schemas/{name}.json",
            "channel": schema["x-channel"],
            "direction": schema["x-direction"],
            "type": schema["x-type"],
            "version": 1,
            "title": schema["title"],
        }
        assert name == f"{schema['x-channel']}.{schema['x-type']}"
        assert schema["x-channel"] in CHANNELS and schema["x-direction"] in (CLERK, KIOSK)
        assert schema["properties"]["v"]["type"] == "integer" and schema["properties"]["v"]["const"] == 1
        assert schema["properties"]["type"] == {"const": schema["x-type"]}
        for obj in walk_objects(schema):  # strict: every object closed, every field required or known
            assert obj["additionalProperties"] is False, (name, obj)
            assert set(obj["required"]) <= set(obj["properties"]), name
        for example in schema["examples"]:
            assert KioskReading(schema).is_valid(example), (name, example)
    assert len({(s["x-channel"], s["x-direction"], s["x-type"]) for s in published.schemas.values()}) == len(
        published.schemas
    )


def test_unknown_or_hostile_schema_names_get_a_json_404(central: CentralThread) -> None:
    with httpx.Client(base_url=central.url) as client:
        for path in (
            "/api/v1/schemas/control.teleport.json",
            "/api/v1/schemas/..%2Fopenapi.json",
            "/api/v1/schemas/%2e%2e.json",
            "/api/v1/schemas/control.pointer",
        ):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"


def test_the_schemas_ship_in_the_wheel() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "kiosk_client"
    ]
    files = sorted((PACKAGE / "central" / "schemas").glob("*.json"))
    assert files
    for path in files:
        relative = path.relative_to(PACKAGE).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


# --------------------------------------------------------------------------- what the code names


def module_path(name: str) -> Path:
    return PACKAGE / name


def parsed(name: str) -> ast.Module:
    return ast.parse(module_path(name).read_text())


def call_name(call: ast.Call) -> tuple[str, bool]:
    """(the called name, whether it was called as an attribute: `x.name(...)`)."""
    if isinstance(call.func, ast.Attribute):
        return call.func.attr, True
    if isinstance(call.func, ast.Name):
        return call.func.id, False
    return "", False


def strings(node: ast.AST) -> set[str]:
    """The string constants an argument can be: a literal, or either branch of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return strings(node.body) | strings(node.orelse)
    return set()


def calls(*names: str) -> Iterator[ast.Call]:
    for name in names:
        for node in ast.walk(parsed(name)):
            if isinstance(node, ast.Call):
                yield node


def sent_types(*names: str) -> set[str]:
    """Types of the messages built as dict literals `{"type": "...", ...}` in these modules."""
    found = set()
    for name in names:
        for node in ast.walk(parsed(name)):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "type":
                        found |= strings(value)
    return found


def accepted_print_types() -> set[str]:
    """The clerk's printing messages (core/print_protocol.py, the same channel): its parser's types."""
    tree = parsed("core/print_protocol.py")
    [parser] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "parse_clerk_message"]
    return {
        n.value
        for n in ast.walk(parser)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and re.fullmatch(r"print\.[a-z]+", n.value)
    }


def accepted_document_types() -> set[str]:
    tree = parsed("core/document_protocol.py")
    [parser] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "parse_clerk_message"]
    return {
        n.value
        for n in ast.walk(parser)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and re.fullmatch(r"doc\.[a-z]+", n.value)
    }


def types_in_code() -> dict[tuple[str, str], set[str]]:
    return {
        ("control", CLERK): set(cp.FIELDS),
        ("control", KIOSK): sent_types(
            "core/control_protocol.py", "core/remote_control.py", "core/engine.py"
        ),
        ("documents", CLERK): accepted_document_types() | accepted_print_types(),
        ("documents", KIOSK): (
            sent_types("core/document_protocol.py", "core/document_transfer.py") - accepted_document_types()
        )
        | (sent_types("core/print_protocol.py", "core/printing.py") - accepted_print_types()),
    }


def types_in_docstring(module: Any) -> dict[str, set[str]]:
    """The message types a protocol module's docstring lists for each direction ("Clerk → kiosk …:
    a, b (what b does), c.")."""
    named: dict[str, set[str]] = {CLERK: set(), KIOSK: set()}
    text = module.__doc__
    for match in re.finditer(r"^(Clerk → kiosk|Kiosk → clerk)([^:\n]*):(.*?)\.(?=\s|$)", text, re.M | re.S):
        if "binary" in match.group(2):
            continue  # chunks: not a JSON message
        listed = re.sub(r"\([^)]*\)", "", match.group(3))
        direction = CLERK if match.group(1).startswith("Clerk") else KIOSK
        named[direction] |= {item.strip() for item in listed.split(",")}
    return named


# Named in a protocol module's docstring, but sent by no code (none today).
NAMED_BUT_NEVER_SENT: set[str] = set()


def test_every_message_type_in_the_protocol_code_has_a_schema_and_nothing_else_does(
    published: Published,
) -> None:
    for (channel, direction), kinds in types_in_code().items():
        assert kinds, (channel, direction)
        assert set(published.names(channel, direction)) == kinds, (channel, direction)


def test_every_message_type_the_modules_docstrings_name_has_a_schema_or_is_never_sent(
    published: Published,
) -> None:
    missing: set[str] = set()
    for module, channel in ((cp, "control"), (dp, "documents"), (pp, "documents")):
        for direction, kinds in types_in_docstring(module).items():
            assert kinds, (channel, direction)
            missing |= kinds - set(published.names(channel, direction))
    assert missing == NAMED_BUT_NEVER_SENT
    # ... and indeed never sent: those names appear nowhere in the package's code but docstrings.
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not any(kind in node.value for kind in NAMED_BUT_NEVER_SENT), path
    for path in (PACKAGE / "central" / "static").glob("*.js"):
        assert not any(kind in path.read_text() for kind in NAMED_BUT_NEVER_SENT), path


def control_codes_in_code() -> set[str]:
    """Every code the kiosk can put in a control `error`: the parser's, the consent machine's, the
    engine's, and the form view's answers (InputOutcome and the Qt form view's done())."""
    found: set[str] = set()
    everywhere = ["core/control_protocol.py", "core/remote_control.py", "core/engine.py", "ui/form_view.py"]
    everywhere += ["adapters/headless.py", "ui/bridge.py"]
    for call in calls(*everywhere):
        name, attribute = call_name(call)
        index = {"ProtocolViolation": 0, "InputOutcome": 0, "control_error": 0, "input_refused": 1}.get(name)
        if name in ("error", "done") and not attribute:  # remote_control's error(); form_view's done()
            index = 0
        if name == "_refuse" and attribute:
            index = 0
        if index is not None and len(call.args) > index:
            found |= strings(call.args[index])
    return found


def document_codes_in_code() -> set[str]:
    found: set[str] = set()
    for call in calls("core/document_protocol.py", "core/document_transfer.py"):
        name, attribute = call_name(call)
        if (name == "DocumentProtocolError" or (name == "_refuse" and attribute)) and call.args:
            found |= strings(call.args[0])
    return found


def print_codes_in_code() -> set[str]:
    """Every code printing can refuse with: its parser's, the desk's, the renderer's."""
    found: set[str] = set()
    for call in calls("core/print_protocol.py", "core/printing.py", "adapters/pdf_poppler.py"):
        name, attribute = call_name(call)
        if name in ("PrintProtocolError", "PdfRefused") and call.args:
            found |= strings(call.args[0])
        if name == "_refuse" and attribute and len(call.args) > 1:
            found |= strings(call.args[1])
    return found


def state_events_in_code() -> set[str | None]:
    events: set[str | None] = set()
    for call in calls("core/remote_control.py"):
        name, attribute = call_name(call)
        if attribute and name == "_set" and len(call.args) == 2:
            events |= strings(call.args[1])
        if attribute and name == "_state":
            if call.args:
                events |= strings(call.args[0])
            else:
                events.add(None)
    return events


def test_every_error_code_and_state_event_the_code_can_send_is_in_the_schemas(published: Published) -> None:
    control_error = published.schema("control", KIOSK, "error")["properties"]["code"]["enum"]
    assert set(control_error) == control_codes_in_code()
    doc_error = published.schema("documents", KIOSK, "doc.error")["properties"]["code"]["enum"]
    assert set(doc_error) == document_codes_in_code()
    events = published.schema("control", KIOSK, "state")["properties"]["event"]["enum"]
    assert set(events) == state_events_in_code() and None in events
    reasons = published.schema("documents", CLERK, "doc.reject")["properties"]["reason"]["enum"]
    assert tuple(reasons) == dp.REJECT_REASONS
    pointer = published.schema("control", CLERK, "pointer")["properties"]
    assert tuple(pointer["action"]["enum"]) == cp.POINTER_ACTIONS
    assert tuple(pointer["button"]["enum"]) == cp.BUTTONS
    key = published.schema("control", CLERK, "key")["properties"]
    assert tuple(key["key"]["enum"]) == cp.KEYS and key["modifiers"]["items"] == {"const": "shift"}
    assert cp.MODIFIERS == ("shift",)
    offer = published.schema("documents", KIOSK, "doc.offer")["properties"]["doc"]["properties"]
    assert tuple(offer["mime"]["enum"]) == dp.MIME_TYPES
    assert set(offer) == set(dp.Manifest.__dataclass_fields__)
    # Printing what the clerk sends (the same channel, the other way).
    status = published.schema("documents", KIOSK, "print.status")["properties"]
    assert tuple(status["state"]["enum"]) == pp.STATES
    assert tuple(status["reason"]["enum"]) == pp.REFUSALS + pp.PRINT_FAILURES
    assert set(REASONS.values()) <= set(pp.PRINT_FAILURES)  # what the printer adapter can say
    print_error = published.schema("documents", KIOSK, "print.error")["properties"]["code"]["enum"]
    assert tuple(print_error) == pp.ERROR_CODES
    assert print_codes_in_code() == set(pp.ERROR_CODES) | set(pp.REFUSALS)
    print_offer = published.schema("documents", CLERK, "print.offer")["properties"]["doc"]["properties"]
    assert set(print_offer) == set(pp.PrintOffer.__dataclass_fields__)


def test_the_document_names_every_message_code_and_event(published: Published) -> None:
    text = DOCUMENT.read_text()
    for name, schema in published.schemas.items():
        assert f"`{schema['x-type']}`" in text, name
        assert f"`/api/v1/schemas/{name}.json`" in text or f"/api/v1/schemas/{name}.json`" in text, name
        for prop in schema["properties"].values():
            for value in prop.get("enum", []):
                if value is not None:
                    assert f"`{value}`" in text, (name, value)
    for limit in (cp.MAX_MESSAGE_BYTES, dp.MAX_MESSAGE_BYTES, dp.MAX_CHUNK, bounded_json.MAX_DEPTH):
        assert f"{limit:,}" in text or str(limit) in text, limit
    readme = (ROOT / "README.md").read_text()
    assert readme.count("docs/clerk-protocol.md") >= 3


# --------------------------------------------------------------------------- the kiosk's control messages


POLICY = NavigationPolicy(["https://www.caf.fr", "http://127.0.0.1:8800"])


def sent(effects: list[Any]) -> list[str]:
    return [e.text for e in effects if isinstance(e, SendToClerk)]


def clerk(seq: int | None = None, **fields: Any) -> str:
    return json.dumps({"v": 1, **({} if seq is None else {"seq": seq}), **fields}, ensure_ascii=False)


def test_every_control_message_the_consent_machine_sends_matches_its_schema(published: Published) -> None:
    rc = RemoteControl("a1", "Mme Martin", "CAF", POLICY, lambda: datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    texts = [rc.state_message()]  # what the kiosk says when the channel opens
    texts += sent(rc.receive(clerk(1, type="text", text="avant")))  # not_granted
    texts += sent(rc.receive(clerk(2, type="control.release")))  # ack while nobody has control
    texts += sent(rc.receive(clerk(3, type="control.request")))
    texts += sent(rc.receive(clerk(4, type="control.request")))  # again: ack and the current state
    texts += sent(rc.citizen_answer(False))
    texts += sent(rc.receive(clerk(5, type="control.request")))
    texts += sent(rc.citizen_answer(True))
    texts += sent(
        rc.page_changed("https://www.caf.fr/demande?nom=Martin#etape-2", "Demande " * 100, 1280, 800)
    )
    texts += sent(rc.page_changed("about:blank", "", 1280, 800))
    texts += sent(rc.view_resized(1000, 700))
    texts += sent(rc.receive(clerk(6, type="navigate", url="https://evil.example/")))  # not_allowed
    for code in sorted(control_codes_in_code()):  # every answer a form view or the engine can give
        texts += sent(rc.input_refused(cp.TextInput(7, "x"), code, f"refused: {code}"))
    texts += sent(rc.input_applied(cp.TextInput(8, "Élodie")))
    for raw in (
        "x" * (cp.MAX_MESSAGE_BYTES + 1),  # too_large, no seq
        b'{"v":1,"seq":9,"type":"control.request"}',  # binary: invalid_message
        "[" * 40 + "]" * 40,  # too deep: invalid_message
        clerk(10, type="key", key="Tab", v=2),  # unsupported_version, seq echoed
        clerk(11, type="shell"),  # unknown_type
        clerk(type="key", key="Tab"),  # no seq: invalid_field, seq null
        clerk(12, type="pointer", action="move", x=2, y=0),  # out_of_range
    ):
        texts += sent(rc.receive(raw))
    texts += sent(rc.citizen_takes_back())
    texts += sent(rc.receive(clerk(13, type="control.request")))
    texts += sent(rc.citizen_answer(True))
    texts += sent(rc.receive(clerk(14, type="control.release")))
    texts += sent(rc.receive(clerk(15, type="control.request")))
    texts += sent(rc.citizen_answer(True))
    texts += sent(rc.connection_lost())  # the call dropped: consent must be asked again
    texts += sent(rc.receive(clerk(16, type="control.request")))
    texts += sent(rc.citizen_answer(True))
    for cause in cp.FORM_INCIDENT_CAUSES:  # the form view's page reloaded after an incident
        texts += sent(rc.page_incident(cause, "reloaded", 1))
    texts += sent(rc.page_incident("crashed", "failed", 3))
    texts += sent(rc.end())

    messages = [published.check_sent("control", text) for text in texts]
    states = [m for m in messages if m["type"] == "state"]
    assert {m["event"] for m in states} == set(
        published.schema("control", KIOSK, "state")["properties"]["event"]["enum"]
    )
    assert all("?" not in (m["url"] or "") and "#" not in (m["url"] or "") for m in states)
    assert {"about:", None} <= {m["url"] for m in states}
    assert max(len(m["title"] or "") for m in states) == 300
    errors = [m for m in messages if m["type"] == "error"]
    assert {m["code"] for m in errors} == control_codes_in_code()
    assert None in {m["seq"] for m in errors} and 10 in {m["seq"] for m in errors}
    assert {"v": 1, "type": "ack", "seq": 8} in messages
    incidents = [m for m in messages if m["type"] == "form.incident"]
    assert {(m["cause"], m["outcome"]) for m in incidents} >= {("killed", "reloaded"), ("crashed", "failed")}


def schedule_now() -> Schedule:
    start = datetime.now(UTC)
    appointment = Appointment("a1", "CAF", "Mme Martin", start, start + timedelta(minutes=10))
    return Schedule("Borne 1", "France Services", (appointment,), etag='"a1"')


async def test_every_control_message_the_engine_sends_matches_its_schema(published: Published) -> None:
    central = FakeCentral(
        schedule_now(), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    calls_made = FakeCallFactory()
    form = FakeFormView()
    engine = KioskEngine(
        central,
        calls_made,
        MemoryCache(),
        CentralClock(SystemClock()),
        lambda event: None,
        local_timing=Timing(ended_screen=timedelta(seconds=0.3), rating_for=timedelta(seconds=0.3)),
        tick_s=0.01,
        form=form,
        default_origins=("https://www.service-public.fr",),
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: bool(central.offers))
        call = calls_made.calls[0]

        def send(seq: int, **fields: Any) -> None:
            call.on_event(ControlMessageReceived(clerk(seq, **fields)))

        def answers(seq: int) -> list[dict[str, Any]]:
            return [m for m in map(json.loads, call.sent_control) if m.get("seq") == seq]

        send(1, type="control.request")  # before the clerk answered: no session yet
        await wait_for(
            lambda: any(m.get("code") == "not_in_session" for m in map(json.loads, call.sent_control))
        )
        central.answer("a1")
        await wait_for(lambda: engine.session.phase is Phase.IN_CALL)
        call.on_event(ControlChannelOpened())
        send(2, type="control.request")
        await engine.answer_control(True)
        await engine.form_page_changed("https://www.service-public.fr/demarche?id=42", "Démarche", 1280, 800)
        await engine.form_view_resized(1280, 760)
        await engine.screen_shown("fr", True, 1.25)  # what the UI reports of the citizen's screen
        await engine.form_page_incident("killed", "reloaded", 1)  # the form view's renderer died
        send(41, type="zoom", level=1.5)
        form.busy = asyncio.Event()  # a busy page: inputs wait in the engine's queue
        send(3, type="text", text="Élodie")
        await wait_for(lambda: form.started == 1)
        for seq in range(4, 40):  # a run of moves collapses to the newest: the others are acked
            send(seq, type="pointer", action="move", x=seq / 100, y=0.5)
        for seq in range(100, 100 + 80):  # more than the queue holds: busy
            send(seq, type="key", key="Tab")
        await wait_for(lambda: any(m.get("code") == "busy" for s in range(100, 180) for m in answers(s)))
        engine.consent.close()  # the citizen's touch, on the Qt thread, then the engine hears of it
        await engine.take_back_control()
        form.busy.set()
        await wait_for(lambda: len(answers(3)) == 1 and len(answers(100)) == 1)
        assert answers(100)[0]["code"] == "not_granted"  # waited while the citizen took control back
        send(200, type="control.request")
        await engine.answer_control(True)
        form.refuse_with = "citizen_only_field"
        send(201, type="text", text="secret")
        await wait_for(lambda: len(answers(201)) == 1)
        control = engine._control
        assert control is not None

        def broken(raw: str | bytes) -> list[Any]:
            raise RuntimeError("a bug in a handler")

        control.receive = broken  # type: ignore[method-assign]
        send(202, type="control.release")
        del control.receive
        central.clerk_hang_up("a1")
        await wait_for(lambda: engine.session.phase is Phase.ENDED)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    messages = [published.check_sent("control", text) for text in call.sent_control]
    assert all(len(answers(seq)) == 1 for seq in range(3, 40))  # one answer for each message
    assert all(m == {"v": 1, "type": "ack", "seq": m["seq"]} for seq in range(4, 39) for m in answers(seq))
    codes = {m["code"] for m in messages if m["type"] == "error"}
    assert {"not_in_session", "busy", "not_granted", "citizen_only_field", "internal_error"} <= codes
    events = [m["event"] for m in messages if m["type"] == "state"]
    assert events[0] is None and "page" in events and "resize" in events and events[-1] == "session_ended"
    assert any(m["type"] == "kiosk.screen" and m["zoom"] == 1.25 for m in messages)
    assert any(m["type"] == "form.incident" and m["outcome"] == "reloaded" for m in messages)
    assert len(answers(41)) == 1  # queued behind the busy page, then voided by the take-back


# --------------------------------------------------------------------------- the documents channel


@dataclass
class DocumentsRig:
    """A DocumentTransfers (the kiosk) and the reference DocumentReceiver (a clerk) joined by fake
    links, recording every frame each side sends."""

    documents: dict[str, bytes] = field(default_factory=dict)
    kiosk_texts: list[str] = field(default_factory=list)
    clerk_texts: list[str] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # confirmed by the clerk: out of the outbox
    refuse: set[str] = field(default_factory=set)  # ids the clerk refuses
    corrupt_next_chunk: bool = False
    lose_receipts: bool = False

    def __post_init__(self) -> None:
        self.transfers = DocumentTransfers(self, lambda transfers: None, self._requested)
        self.receiver = DocumentReceiver(
            self._clerk_sends, lambda manifest, data: None, lambda m: m.id not in self.refuse
        )
        self.link: FakeDocumentLink | None = None

    # the kiosk's DocumentSource (its outbox)
    def read(self, doc_id: str) -> bytes:
        return self.documents[doc_id]

    def confirmed(self, doc_id: str) -> None:
        self.deleted.append(doc_id)

    def _requested(self, label: str) -> None:
        if label == "boom":
            raise RuntimeError("a bug in the kiosk's handler")
        self.requests.append(label)

    def _clerk_sends(self, text: str) -> None:
        self.clerk_texts.append(text)
        if self.lose_receipts and json.loads(text)["type"] == "doc.receipt":
            return  # lost with the call
        asyncio.get_running_loop().call_soon(self.transfers.on_message, text)

    def _deliver(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            self.chunks.append(raw)
            if self.corrupt_next_chunk:
                self.corrupt_next_chunk = False
                raw = raw[:-1] + bytes([raw[-1] ^ 0xFF])
        else:
            self.kiosk_texts.append(raw)
        self.receiver.on_message(raw)

    def add(self, size: int, refused: bool = False) -> dp.Manifest:
        data = os.urandom(size)
        digest = hashlib.sha256(data).hexdigest()
        manifest = dp.Manifest(os.urandom(16).hex(), "justificatif.pdf", "application/pdf", size, 2, digest)
        self.documents[manifest.id] = data
        if refused:
            self.refuse.add(manifest.id)
        self.transfers.add(manifest)
        return manifest

    def connect(self, capacity: int | None = None) -> FakeDocumentLink:
        if self.link is not None:
            self.link.close()
            self.transfers.detach(self.link)
        self.link = FakeDocumentLink(self._deliver, capacity)
        self.transfers.attach(self.link)
        return self.link

    def status(self, manifest: dp.Manifest) -> TransferStatus:
        return next(t.status for t in self.transfers.transfers if t.manifest.id == manifest.id)


async def test_every_documents_message_both_ways_matches_its_schema(published: Published) -> None:
    rig = DocumentsRig()
    try:
        rig.receiver.request("justificatif de domicile")
        rig.connect()
        await wait_for(lambda: rig.requests == ["justificatif de domicile"])
        # A call that drops in the middle of a document, then the rebuilt call resumes it.
        resumed = rig.add(700_000)
        link = rig.connect(capacity=300_000)
        await wait_for(lambda: not link.is_open())
        rig.connect()
        await wait_for(lambda: rig.status(resumed) is TransferStatus.RECEIVED)
        # Damaged on the way: the clerk's SHA-256 differs, it rejects, the kiosk sends it again.
        rig.corrupt_next_chunk = True
        damaged = rig.add(40_000)
        await wait_for(lambda: rig.status(damaged) is TransferStatus.RECEIVED)
        # Refused by the clerk.
        refused = rig.add(1000, refused=True)
        await wait_for(lambda: rig.status(refused) is TransferStatus.REFUSED)
        # The receipt is lost with the call: the clerk accepts at the document's size, confirms again.
        rig.lose_receipts = True
        whole = rig.add(5000)
        await wait_for(lambda: whole.id in rig.receiver.received)
        rig.lose_receipts = False
        rig.connect()
        await wait_for(lambda: rig.status(whole) is TransferStatus.RECEIVED)
        # What the kiosk refuses, with every doc.error code.
        for raw in (
            json.dumps({"v": 1, "type": "doc.request", "label": "x" * (dp.MAX_MESSAGE_BYTES + 1)}),
            "{",
            json.dumps({"v": 2, "type": "doc.accept", "id": ID, "offset": 0}),
            json.dumps({"v": 1, "type": "doc.delete", "id": ID}),
            json.dumps({"v": 1, "type": "doc.accept", "id": ID, "offset": 0}),
            json.dumps({"v": 1, "type": "doc.accept", "id": whole.id, "offset": whole.size + 1}),
            json.dumps({"v": 1, "type": "doc.request", "label": "boom"}),
        ):
            rig.transfers.on_message(raw)
        await asyncio.sleep(0.05)
    finally:
        await rig.transfers.close()

    kiosk = [published.check_sent("documents", text) for text in rig.kiosk_texts]
    assert {m["type"] for m in kiosk} == scanned_papers(published.names("documents", KIOSK))
    assert {m["code"] for m in kiosk if m["type"] == "doc.error"} == document_codes_in_code()
    for offer in (m for m in kiosk if m["type"] == "doc.offer"):
        assert dp.parse_manifest(json.dumps(offer)).id == offer["doc"]["id"]  # the reference check
    clerk_messages = []
    for text in rig.clerk_texts:
        message = json.loads(text)
        assert published.accepts("documents", message), text
        dp.parse_clerk_message(text)  # and the kiosk takes it
        clerk_messages.append(message)
    assert {m["type"] for m in clerk_messages} == scanned_papers(published.names("documents", CLERK))
    accepts = [(m["id"], m["offset"]) for m in clerk_messages if m["type"] == "doc.accept"]
    assert any(i == resumed.id and 0 < offset < resumed.size for i, offset in accepts)  # resumed
    assert (whole.id, whole.size) in accepts  # already whole at the clerk's
    assert set(rig.deleted) == {resumed.id, damaged.id, whole.id}
    assert {m["reason"] for m in clerk_messages if m["type"] == "doc.reject"} == {"refused", "hash_mismatch"}
    check_chunks(rig)


def scanned_papers(names: dict[str, str]) -> set[str]:
    """The documents channel's messages about scanned papers (doc.*), not printing's (print.*)."""
    return {kind for kind in names if kind.startswith("doc.")}


def check_chunks(rig: DocumentsRig) -> None:
    """The binary layout the document describes, read independently of dp.parse_chunk: 32 ASCII hex
    characters of the id, an 8-byte big-endian offset, then 1 to 16,384 bytes of the document."""
    assert rig.chunks
    for chunk in rig.chunks:
        assert 32 + 8 < len(chunk) <= 32 + 8 + 16_384
        doc_id = chunk[:32].decode("ascii")
        assert re.fullmatch(r"[0-9a-f]{32}", doc_id) and doc_id in rig.documents
        offset = int.from_bytes(chunk[32:40], "big")
        payload = chunk[40:]
        assert rig.documents[doc_id][offset : offset + len(payload)] == payload
        assert len(payload) == 16_384 or offset + len(payload) == len(rig.documents[doc_id])


# --------------------------------------------------------------------------- clerk messages: the verdicts agree

MAX_SEQ = cp.MAX_SEQ
CONTROL_VALID: list[dict[str, Any]] = [
    {"v": 1, "type": "control.request", "seq": 0},
    {"v": 1, "type": "control.request", "seq": MAX_SEQ},
    *({"v": 1, "type": "pointer", "seq": 3, "action": a, "x": 0.5, "y": 0.25} for a in cp.POINTER_ACTIONS),
    *(
        {"v": 1, "type": "pointer", "seq": 3, "action": "click", "x": 0, "y": 1, "button": b}
        for b in cp.BUTTONS
    ),
    {"v": 1, "type": "pointer", "seq": 4, "action": "wheel", "x": 1, "y": 0, "dx": -10000, "dy": 10000},
    {"v": 1, "type": "pointer", "seq": 4, "action": "wheel", "x": 0.3, "y": 0.7, "dx": 0, "dy": -53.5},
    {"v": 1, "type": "pointer", "seq": 4, "action": "move", "x": 1e-9, "y": 0.999999},
    *({"v": 1, "type": "key", "seq": 5, "key": k} for k in cp.KEYS),
    {"v": 1, "type": "key", "seq": 5, "key": "Tab", "modifiers": ["shift"]},
    {"v": 1, "type": "key", "seq": 5, "key": "ArrowLeft", "modifiers": []},
    {"v": 1, "type": "text", "seq": 6, "text": "a"},
    {"v": 1, "type": "text", "seq": 6, "text": 'Élodie Müller-Ñúñez, 12 rue de l\'Église — 3 € @ "ok"'},
    {"v": 1, "type": "text", "seq": 6, "text": " "},
    {"v": 1, "type": "text", "seq": 6, "text": "x" * cp.MAX_TEXT_CHARS},
    {"v": 1, "type": "text", "seq": 6, "text": "😀" * cp.MAX_TEXT_CHARS},
    {"v": 1, "type": "text", "seq": 6, "text": "a\u00a0b\u2028c"},
    {"v": 1, "type": "navigate", "seq": 8, "url": "https://www.caf.fr/x"},
    {"v": 1, "type": "navigate", "seq": 8, "url": "http://127.0.0.1:8800/demo-form/?etape=2"},
    {"v": 1, "type": "navigate", "seq": 8, "url": "https://x/" + "a" * (cp.MAX_URL_CHARS - 10)},
    {"v": 1, "type": "navigate", "seq": 8, "url": "javascript:alert(1)"},  # read, then refused: not_allowed
    *({"v": 1, "type": "zoom", "seq": 9, "level": level} for level in (*cp.ZOOM_LEVELS, 1, 2)),
]
DOCUMENTS_VALID: list[dict[str, Any]] = [
    {"v": 1, "type": "doc.request", "label": "justificatif de domicile"},
    {"v": 1, "type": "doc.request", "label": "é"},
    {"v": 1, "type": "doc.request", "label": " avis d'imposition 2025 "},
    {"v": 1, "type": "doc.request", "label": "x" * dp.MAX_LABEL_CHARS},
    {"v": 1, "type": "doc.request", "label": "pièce d'identité / passeport"},
    {"v": 1, "type": "doc.accept", "id": ID, "offset": 0},
    {"v": 1, "type": "doc.accept", "id": ID, "offset": dp.MAX_DOCUMENT_BYTES},
    {"v": 1, "type": "doc.receipt", "id": ID, "sha256": SHA},
    *({"v": 1, "type": "doc.reject", "id": ID, "reason": r} for r in dp.REJECT_REASONS),
    json.loads(pp.offer(ID, "Attestation CAF.pdf", 43210, SHA)),
    json.loads(pp.offer(ID, "n" * pp.MAX_NAME_CHARS, pp.MAX_DOCUMENT_BYTES + 1, SHA)),  # read, then refused
    json.loads(pp.offer(ID, "é", 1, SHA)),
    json.loads(pp.end(ID)),
    {"v": 1, "type": "print.cancel", "id": ID},
]
OFFER_VALID: list[dict[str, Any]] = [
    json.loads(dp.offer(dp.Manifest(ID, "justificatif de domicile.pdf", "application/pdf", 43210, 2, SHA))),
    json.loads(dp.offer(dp.Manifest(ID, "n" * 120, "application/pdf", dp.MAX_DOCUMENT_BYTES, 200, SHA))),
    json.loads(dp.offer(dp.Manifest(ID, "x", "application/pdf", 1, 1, SHA))),
]


def kiosk_reads(channel: str, message: Any) -> bool:
    """The kiosk's verdict (for doc.offer: the reference clerk's check of a manifest)."""
    raw = json.dumps(message, ensure_ascii=False)
    try:
        if channel == "control":
            cp.parse_clerk_message(raw)
        elif (
            channel == "documents"
            and isinstance(message, dict)
            and str(message.get("type")).startswith("print.")
        ):
            pp.parse_clerk_message(raw)  # the engine hands print.* to printing (is_print_message)
        elif channel == "documents":
            dp.parse_clerk_message(raw)
        else:
            dp.parse_manifest(raw)
    except (cp.ProtocolViolation, dp.DocumentProtocolError, pp.PrintProtocolError):
        return False
    return True


def contract_reads(published: Published, channel: str, message: Any) -> bool:
    if channel == "offer":
        return bool(published.validator("documents.doc.offer").is_valid(message))
    return published.accepts(channel, message)


def assert_same_verdict(published: Published, channel: str, message: Any) -> None:
    kiosk_ok = kiosk_reads(channel, message)
    schema_ok = contract_reads(published, channel, message)
    assert kiosk_ok == schema_ok, (
        f"{channel}: the kiosk {'accepts' if kiosk_ok else 'refuses'} and the schemas "
        f"{'accept' if schema_ok else 'refuse'} {message!r}"
    )


@pytest.mark.parametrize(
    ("channel", "message"),
    [("control", m) for m in CONTROL_VALID]
    + [("documents", m) for m in DOCUMENTS_VALID]
    + [("offer", m) for m in OFFER_VALID],
)
def test_valid_clerk_messages_are_taken_by_the_kiosk_and_by_the_schemas(
    published: Published, channel: str, message: dict[str, Any]
) -> None:
    assert kiosk_reads(channel, message)
    assert contract_reads(published, channel, message)
    if channel != "offer":  # and by a validator that reads "integer" as JSON Schema does
        name = f"{channel}.{message['type']}"
        assert Draft202012Validator(published.schemas[name]).is_valid(message)


def interesting(schema: dict[str, Any]) -> list[Any]:
    """Values worth trying in a field, from its schema's shape: its bounds and just beyond, its enum
    and near misses, lengths at and over the limit, characters the kiosk refuses, and wrong types."""
    values: list[Any] = [None, True, False, 0, -1, 0.5, 1.0, "", "x", " ", [], {}, ["shift"], 2**53, -(2**53)]
    if "const" in schema:
        values += [schema["const"], str(schema["const"])]
    for value in schema.get("enum", []):
        values += [value, f"{value} ", str(value).upper()] if isinstance(value, str) else [value]
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if "integer" in kinds or "number" in kinds:
        low, high = schema.get("minimum"), schema.get("maximum")
        for bound in (b for b in (low, high) if b is not None):
            values += [bound, bound - 1, bound + 1, float(bound), bound - 0.5, bound + 0.5, str(bound)]
        if low is not None and high is not None:
            values += [(low + high) / 2, (low + high) // 2]
    if "string" in kinds:
        for example in schema.get("examples", ["a"]):
            values += [example, f"{example}\n", f"\n{example}", f"{example}\u0007", f"{example}\u0085"]
            values += [f"{example}\u202e", f"{example}\u2028", example.upper(), f"{example}/", f"{example}\\"]
            values += [f" {example}", example[:-1], f"{example}0"]
        if (limit := schema.get("maxLength")) is not None:
            values += ["a" * limit, "a" * (limit + 1), "é" * limit, " " * limit]
        values += ["\u00a0", "\u3000", " \t", "\u2028", "😀", "\u00a0x"]
    if "array" in kinds:
        values += [[schema["items"]["const"]] * 2, ["ctrl"], [1], [["shift"]]]
    return values


def mutations(message: dict[str, Any], schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in message:
        yield {k: v for k, v in message.items() if k != key}
    for key, prop in schema["properties"].items():
        for value in interesting(prop):
            yield {**message, key: value}
        if prop.get("type") == "object" and isinstance(message.get(key), dict):
            for inner in mutations(message[key], prop):
                yield {**message, key: inner}
    yield {**message, "extra": 1}
    yield {**message, "V": 1}
    if "type" in message:
        yield {**message, "type": "doc.delete" if "doc" in str(message["type"]) else "pointer.move"}


@pytest.mark.parametrize("channel", ["control", "documents", "offer"])
def test_hostile_clerk_messages_the_schemas_refuse_exactly_what_the_kiosk_refuses(
    published: Published, channel: str
) -> None:
    corpus = {"control": CONTROL_VALID, "documents": DOCUMENTS_VALID, "offer": OFFER_VALID}[channel]
    tried = refused = 0
    for message in corpus:
        name = "documents.doc.offer" if channel == "offer" else f"{channel}.{message['type']}"
        for hostile in mutations(message, published.schemas[name]):
            assert_same_verdict(published, channel, hostile)
            tried += 1
            refused += not kiosk_reads(channel, hostile)
    assert tried > 500 and refused > tried // 2


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def value_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values for a field, from its schema's shape, with wrong ones mixed in."""
    options: list[st.SearchStrategy[Any]] = [JSON_VALUES]
    if "const" in schema:
        options.append(st.just(schema["const"]))
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    low, high = schema.get("minimum", -(2**60)), schema.get("maximum", 2**60)
    if "integer" in kinds:
        options.append(st.integers(low - 2, high + 2))
    if "number" in kinds:
        options.append(st.floats(low - 1, high + 1, allow_nan=False))
    if "string" in kinds:
        if schema.get("pattern", "").startswith("^[0-9a-f]"):
            size = schema["maxLength"]
            options.append(st.text(alphabet="0123456789abcdefA\n", min_size=size - 1, max_size=size + 1))
        else:
            options.append(st.text(max_size=min(schema.get("maxLength", 40), 40) + 1))
    if "array" in kinds:
        options.append(st.lists(st.sampled_from(["shift", "ctrl", 1]), max_size=2))
    if "object" in kinds:
        options.append(object_for(schema))
    return st.one_of(st.sampled_from(interesting(schema)), st.one_of(options))  # half at the edges


@st.composite
def object_for(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {}
    for key, prop in schema["properties"].items():
        if draw(st.integers(0, 9)) > 0:  # now and then a field is missing
            message[key] = draw(value_for(prop))
    if draw(st.integers(0, 9)) == 0:
        message[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    return message


@st.composite
def near(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    """One of the schema's examples with one to three fields changed, removed or added: mostly
    messages one mistake away from valid, where a wrong bound or a missing rule shows."""
    message = dict(draw(st.sampled_from(schema["examples"])))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*schema["properties"], "extra"]))
        action = draw(st.integers(0, 9))
        if action == 0:
            message.pop(key, None)
        elif key == "extra":
            message[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        elif schema["properties"][key].get("type") == "object" and isinstance(message.get(key), dict):
            message[key] = draw(near(schema["properties"][key] | {"examples": [message[key]]}))
        else:
            message[key] = draw(value_for(schema["properties"][key]))
    return message


@st.composite
def generated(draw: st.DrawFn, schemas: list[dict[str, Any]]) -> dict[str, Any]:
    schema = draw(st.sampled_from(schemas))
    return draw(near(schema) if draw(st.integers(0, 3)) else object_for(schema))


def check_generated(published: Published, channel: str, data: st.DataObject) -> None:
    if channel == "offer":
        schemas = [published.schemas["documents.doc.offer"]]
    else:
        schemas = [published.schemas[name] for name in published.names(channel, CLERK).values()]
    message = data.draw(generated(schemas))
    assume(bounded_json.nesting_depth(json.dumps(message)) < bounded_json.MAX_DEPTH)
    assert_same_verdict(published, channel, message)


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_generated_control_messages_get_the_same_verdict(published: Published, data: st.DataObject) -> None:
    check_generated(published, "control", data)


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_generated_documents_messages_get_the_same_verdict(published: Published, data: st.DataObject) -> None:
    check_generated(published, "documents", data)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_generated_manifests_get_the_same_verdict_from_the_reference_clerk(
    published: Published, data: st.DataObject
) -> None:
    check_generated(published, "offer", data)


# --------------------------------------------------------------------------- what the schemas cannot say


def test_wire_limits_the_document_states() -> None:
    """Limits on the frame rather than on a field: a message the schemas accept is still refused."""
    text = {"v": 1, "type": "text", "seq": 1, "text": "a"}
    padded = json.dumps(text)
    cp.parse_clerk_message(padded + " " * (cp.MAX_MESSAGE_BYTES - len(padded)))
    with pytest.raises(cp.ProtocolViolation, match="larger") as info:
        cp.parse_clerk_message(padded + " " * (cp.MAX_MESSAGE_BYTES - len(padded) + 1))
    assert info.value.code == "too_large"
    # The control limit counts UTF-8 bytes as sent: the longest URL in \u escapes is too large.
    url = {"v": 1, "type": "navigate", "seq": 1, "url": "https://x/" + "😀" * (cp.MAX_URL_CHARS - 10)}
    cp.parse_clerk_message(json.dumps(url, ensure_ascii=False))
    with pytest.raises(cp.ProtocolViolation) as info:
        cp.parse_clerk_message(json.dumps(url, ensure_ascii=True))
    assert info.value.code == "too_large"
    # Numbers written with more than 32 characters, nesting deeper than 16, and invalid UTF-8.
    for raw in (
        '{"v":1,"type":"pointer","seq":1,"action":"move","x":0.10000000000000000000000000000001,"y":0}',
        '{"v":1,"type":"key","seq":1,"key":"Tab","modifiers":' + "[" * 17 + "]" * 17 + "}",
        b'{"v":1,"type":"text","seq":1,"text":"\xff"}'.decode("utf-8", "surrogateescape"),
        b'{"v":1,"type":"control.request","seq":1}',  # a binary frame
    ):
        with pytest.raises(cp.ProtocolViolation) as info:
            cp.parse_clerk_message(raw)
        assert info.value.code == "invalid_message", raw
    request = json.dumps({"v": 1, "type": "doc.request", "label": "papiers"})
    dp.parse_clerk_message(request + " " * (dp.MAX_MESSAGE_BYTES - len(request)))
    with pytest.raises(dp.DocumentProtocolError) as refused:
        dp.parse_clerk_message(request + " " * (dp.MAX_MESSAGE_BYTES - len(request) + 1))
    assert refused.value.code == "too_large"


def test_integers_are_integers_for_the_kiosk_even_where_json_schema_says_1_0_is_one(
    published: Published,
) -> None:
    for channel, message in (
        ("control", {"v": 1, "type": "text", "seq": 1.0, "text": "a"}),
        ("control", {"v": 1.0, "type": "control.release", "seq": 7}),
        ("documents", {"v": 1.0, "type": "doc.progress", "id": ID, "offset": 262144}),
        ("documents", {"v": 1, "type": "doc.accept", "id": ID, "offset": 0.0}),
        ("documents", {"v": 1, "type": "doc.progress", "id": ID, "offset": 1e3}),
    ):
        name = f"{channel}.{message['type']}"
        assert Draft202012Validator(published.schemas[name]).is_valid(message)  # a plain validator
        assert not published.accepts(channel, message)  # the kiosk's reading
        assert not kiosk_reads(channel, message)


def test_the_kiosk_is_no_more_lenient_than_the_contract(published: Published) -> None:
    """What the kiosk once took and the contract does not: refused now, by both."""
    for channel, message in [
        ("documents", {"v": True, "type": "doc.accept", "id": ID, "offset": 0}),
        ("documents", {"v": 1, "type": "doc.accept", "id": ID + "\n", "offset": 0}),
        ("documents", {"v": 1, "type": "doc.receipt", "id": ID, "sha256": SHA + "\n"}),
        ("offer", {**OFFER_VALID[0], "v": True}),
    ]:
        assert not kiosk_reads(channel, message) and not contract_reads(published, channel, message), message
    # A binary frame is never a message from the clerk, on either channel.
    with pytest.raises(dp.DocumentProtocolError):
        dp.parse_clerk_message(b'{"v":1,"type":"doc.request","label":"papiers"}')
    # The documents limit counts bytes: 120 "é" padded to the limit in characters is over it in bytes.
    request = json.dumps({"v": 1, "type": "doc.request", "label": "é" * 120}, ensure_ascii=False)
    padded = request + " " * (dp.MAX_MESSAGE_BYTES - len(request))
    assert len(padded.encode()) > dp.MAX_MESSAGE_BYTES
    with pytest.raises(dp.DocumentProtocolError) as refused:
        dp.parse_clerk_message(padded)
    assert refused.value.code == "too_large"
