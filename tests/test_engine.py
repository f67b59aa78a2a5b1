"""The engine against fake ports: timing, signalling, faults and the reset between citizens."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeFormView, MemoryCache
from kiosk_client.core.clock import CentralClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.errors import AuthenticationFailed, CentralUnavailable, MalformedResponse
from kiosk_client.core.events import KioskEvent, KioskSnapshot, Notice, SessionFinished, StateChanged
from kiosk_client.core.models import Appointment, RemoteConfig, Schedule
from kiosk_client.core.session import EndReason, Phase, Timing
from kiosk_client.core.volume import DEFAULT_LEVEL, MAX_LEVEL, gain

from .kiosk_rig import NoonClock

FAST = RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=0.6)
TIMING = Timing(ended_screen=timedelta(seconds=0.3), rating_for=timedelta(seconds=0.3))


def schedule_with(start_in_s: float, ident: str = "a1", minutes: float = 10) -> Schedule:
    start = NoonClock().now() + timedelta(seconds=start_in_s)
    appointment = Appointment(ident, "CAF", "Mme Martin", start, start + timedelta(minutes=minutes))
    return Schedule("Borne 1", "France Services", (appointment,), etag=f'"{ident}"')


@dataclass
class Harness:
    central: FakeCentral
    calls: FakeCallFactory
    cache: MemoryCache
    engine: KioskEngine
    events: list[KioskEvent] = field(default_factory=list)

    @property
    def snapshot(self) -> KioskSnapshot:
        return self.engine.snapshot()

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met within {within}s; session is {self.engine.session}")
            await asyncio.sleep(0.01)

    def phases(self) -> list[Phase]:
        seen: list[Phase] = []
        for e in self.events:
            if isinstance(e, StateChanged) and (not seen or seen[-1] is not e.snapshot.session.phase):
                seen.append(e.snapshot.session.phase)
        return seen

    def finished(self) -> list[SessionFinished]:
        return [e for e in self.events if isinstance(e, SessionFinished)]


@pytest.fixture
async def harness() -> AsyncIterator[Callable[..., Harness]]:
    tasks: list[asyncio.Task[None]] = []

    def start(
        central: FakeCentral, cache: MemoryCache | None = None, form: FakeFormView | None = None
    ) -> Harness:
        calls = FakeCallFactory()
        cache = cache or MemoryCache()
        h = Harness(central, calls, cache, None)  # type: ignore[arg-type]
        h.engine = KioskEngine(
            central,
            calls,
            cache,
            CentralClock(NoonClock()),
            h.events.append,
            local_timing=TIMING,
            tick_s=0.01,
            rng=random.Random(7),
            form=form,
            default_origins=("https://www.service-public.fr",),
        )
        tasks.append(asyncio.create_task(h.engine.run()))
        return h

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_joins_by_itself_and_the_clerk_ends_the_call(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(0.8), FAST)
    h = harness(central)
    await h.until(lambda: h.snapshot.session.phase is Phase.UPCOMING)
    assert not central.offers  # not before the join window
    await h.until(lambda: bool(central.offers))
    assert h.engine.session.phase is Phase.WAITING_FOR_CLERK
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    await h.until(lambda: h.snapshot.media_flowing)
    central.clerk_hang_up("a1")
    await h.until(lambda: h.engine.session.phase is Phase.ENDED)
    assert h.engine.session.end_reason is EndReason.CLERK_HUNG_UP
    await h.until(lambda: h.engine.session.phase is Phase.IDLE)
    assert h.phases()[:5] == [Phase.IDLE, Phase.UPCOMING, Phase.WAITING_FOR_CLERK, Phase.IN_CALL, Phase.ENDED]
    assert h.calls.calls[0].closed
    assert central.hang_ups == []  # the clerk hung up: nothing to tell them
    [finished] = h.finished()
    assert finished.record.end_reason is EndReason.CLERK_HUNG_UP and finished.record.remote_video_frames == 1
    assert (
        not h.snapshot.media_flowing and h.snapshot.today == ()
    )  # the done appointment is gone from the list


async def test_citizen_hang_up_tells_the_clerk(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(0.0), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    await h.engine.citizen_hang_up()
    assert h.engine.session.end_reason is EndReason.CITIZEN_HUNG_UP
    await h.until(lambda: bool(central.hang_ups))
    assert central.hang_ups == [("a1", central.offers[0][1].call_id, "citizen_hung_up")]


async def test_clerk_late_then_no_show(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(0.2), FAST)
    h = harness(central)
    await h.until(lambda: h.snapshot.session.clerk_late)
    assert h.snapshot.session.phase is Phase.WAITING_FOR_CLERK
    await h.until(lambda: h.engine.session.phase is Phase.ENDED)
    assert h.engine.session.end_reason is EndReason.CLERK_NO_SHOW
    await h.until(lambda: bool(central.hang_ups))
    assert central.hang_ups[0][2] == "clerk_no_show"
    assert h.calls.calls[0].closed


async def test_restart_while_offline_uses_the_saved_schedule(harness: Callable[..., Harness]) -> None:
    cache = MemoryCache()
    cache.schedule = schedule_with(3600)
    cache.config = FAST
    central = FakeCentral(None, FAST)
    central.failure = CentralUnavailable("connection refused")
    h = harness(central, cache)
    await h.until(lambda: Notice.CENTRAL_UNREACHABLE in h.snapshot.notices)
    assert h.snapshot.schedule_known and [a.id for a in h.snapshot.today] == ["a1"]
    assert not h.snapshot.central_reachable
    central.failure = None
    central.schedule = schedule_with(3600, "a2")
    await h.engine.refresh_now()
    await h.until(lambda: h.snapshot.central_reachable, within=10)
    await h.until(lambda: [a.id for a in h.snapshot.today] == ["a2"])
    assert Notice.CENTRAL_UNREACHABLE not in h.snapshot.notices
    assert cache.schedule is not None and cache.schedule.appointments[0].id == "a2"


async def test_failures_back_off_instead_of_hammering(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(None, FAST)
    central.failure = CentralUnavailable("503")
    h = harness(central)
    await asyncio.sleep(2.0)
    # With a 0.05 s poll interval a naive loop would make ~40 requests; backoff keeps it to a few.
    assert 1 <= central.requests - len(central.heartbeats) <= 6
    assert h.engine.session.phase is Phase.IDLE


@pytest.mark.parametrize(
    ("failure", "notice"),
    [
        (AuthenticationFailed(401, "unauthorized", "unknown device token"), Notice.NOT_ENROLLED),
        (MalformedResponse("$.kiosk: missing"), Notice.SCHEDULE_UNREADABLE),
    ],
)
async def test_faults_become_notices_and_the_last_schedule_stays(
    harness: Callable[..., Harness], failure: Exception, notice: Notice
) -> None:
    cache = MemoryCache()
    cache.schedule = schedule_with(3600)
    central = FakeCentral(None, FAST)
    central.failure = failure  # type: ignore[assignment]
    h = harness(central, cache)
    await h.until(lambda: notice in h.snapshot.notices)
    assert [a.id for a in h.snapshot.today] == ["a1"]


async def test_a_dropped_connection_offers_again(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(0.0), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    h.calls.calls[0].drop()
    await h.until(lambda: h.engine.session.reconnecting)
    await h.until(lambda: len(central.offers) == 2, within=10)
    assert h.calls.calls[0].closed and len(h.calls.calls) == 2
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    assert h.calls.calls[1].answer is not None


async def test_mute_and_camera_apply_to_the_call_and_reset_for_the_next_citizen(
    harness: Callable[..., Harness],
) -> None:
    central = FakeCentral(schedule_with(0.0), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    await h.engine.set_microphone(False)
    await h.engine.set_camera(False)
    call = h.calls.calls[0]
    assert not call.microphone and not call.camera
    assert not h.snapshot.microphone_on and not h.snapshot.camera_on
    central.clerk_hang_up("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IDLE)
    assert h.snapshot.microphone_on and h.snapshot.camera_on


async def test_volume_reaches_the_call_and_the_next_citizen_starts_at_the_default(
    harness: Callable[..., Harness],
) -> None:
    central = FakeCentral(schedule_with(0.0, minutes=10), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    call = h.calls.calls[0]
    assert call.speaker_gain == 1.0 and h.snapshot.volume == DEFAULT_LEVEL
    await h.engine.change_volume(+1)
    await h.engine.change_volume(+1)
    assert h.snapshot.volume == DEFAULT_LEVEL + 2
    assert call.speaker_gain == pytest.approx(gain(DEFAULT_LEVEL + 2)) and call.speaker_gain > 2.0
    for _ in range(10):  # never beyond the last step
        await h.engine.change_volume(+1)
    assert h.snapshot.volume == MAX_LEVEL and call.speaker_gain == pytest.approx(gain(MAX_LEVEL))
    await h.engine.change_volume(-1)
    assert call.speaker_gain == pytest.approx(gain(MAX_LEVEL - 1))
    central.clerk_hang_up("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IDLE)
    assert h.snapshot.volume == DEFAULT_LEVEL


async def test_a_new_call_after_a_drop_keeps_the_citizens_volume(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(0.0, minutes=10), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    await h.engine.change_volume(+2)
    h.calls.calls[0].drop()
    await h.until(lambda: len(h.calls.calls) == 2)
    assert h.calls.calls[1].speaker_gain == pytest.approx(gain(DEFAULT_LEVEL + 2))


async def test_heartbeats_report_state_and_devices(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(0.0), FAST)
    h = harness(central)
    h.calls.health["camera"] = "missing"
    await h.until(lambda: any(hb.state == "waiting_for_clerk" for hb in central.heartbeats))
    beat = next(hb for hb in central.heartbeats if hb.state == "waiting_for_clerk")
    assert beat.appointment_id == "a1" and beat.devices["camera"] == "missing"
    await h.until(lambda: Notice.CAMERA_MISSING in h.snapshot.notices)


async def test_skipped_appointments_are_reported(harness: Callable[..., Harness]) -> None:
    schedule = schedule_with(3600)
    central = FakeCentral(
        Schedule(schedule.kiosk_name, schedule.site_name, schedule.appointments, '"x"', (("#1", "bad"),)),
        FAST,
    )
    h = harness(central)
    await h.until(lambda: Notice.APPOINTMENTS_SKIPPED in h.snapshot.notices)
    assert [a.id for a in h.snapshot.today] == ["a1"]


async def test_a_token_refused_when_offering_is_reported_and_retried(harness: Callable[..., Harness]) -> None:
    cache = MemoryCache()
    cache.schedule = schedule_with(0.0)  # known from the last run
    cache.config = RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    central = FakeCentral(cache.schedule, cache.config)
    central.failure = AuthenticationFailed(401, "unauthorized", "token revoked")
    h = harness(central, cache)
    await h.until(lambda: Notice.NOT_ENROLLED in h.snapshot.notices)
    await asyncio.sleep(0.5)
    assert h.engine.session.phase is Phase.WAITING_FOR_CLERK and not central.offers  # waiting, not crashed
    central.failure = None
    await h.until(lambda: bool(central.offers), within=10)
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)


async def test_a_bug_in_a_loop_does_not_freeze_the_kiosk(harness: Callable[..., Harness]) -> None:
    central = FakeCentral(schedule_with(3600), FAST)
    original = central.fetch_schedule
    calls = {"n": 0}

    async def buggy(etag: str | None) -> Schedule | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("a bug")
        return await original(etag)

    central.fetch_schedule = buggy  # type: ignore[method-assign]
    h = harness(central)
    await h.until(lambda: [a.id for a in h.snapshot.today] == ["a1"], within=10)
    assert calls["n"] >= 2


async def test_the_centrals_poll_interval_applies_from_the_first_poll(
    harness: Callable[..., Harness],
) -> None:
    central = FakeCentral(schedule_with(3600), RemoteConfig(poll_interval_s=0.05))
    harness(central)
    await asyncio.sleep(1.0)
    assert central.schedule_requests >= 5  # not one poll then a 15 s default wait


async def test_remote_control_through_the_engine(harness: Callable[..., Harness]) -> None:
    import json

    from kiosk_client.core.control_protocol import TextInput
    from kiosk_client.core.ports import ControlMessageReceived

    form = FakeFormView()
    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central, None, form)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    call = h.calls.calls[0]

    def clerk_sends(seq: int, **fields: object) -> None:
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "seq": seq, **fields})))

    def replies() -> list[dict[str, object]]:
        return [json.loads(t) for t in call.sent_control]

    clerk_sends(1, type="text", text="avant")
    await h.until(lambda: any(r.get("code") == "not_granted" for r in replies()))
    clerk_sends(2, type="control.request")
    await h.until(lambda: h.snapshot.control == "requested")
    assert "https://www.service-public.fr" in h.snapshot.form_origins
    await h.engine.answer_control(True)
    assert h.snapshot.control == "granted"
    clerk_sends(3, type="text", text="Élodie")
    await h.until(lambda: {"v": 1, "type": "ack", "seq": 3} in replies())
    assert form.applied == [TextInput(3, "Élodie")]
    clerk_sends(4, type="navigate", url="https://evil.example/")
    await h.until(lambda: any(r.get("seq") == 4 and r.get("code") == "not_allowed" for r in replies()))
    form.refuse_with = "citizen_only_field"
    clerk_sends(5, type="text", text="secret")
    await h.until(lambda: any(r.get("seq") == 5 and r.get("code") == "citizen_only_field" for r in replies()))
    form.refuse_with = None
    await h.engine.take_back_control()
    assert h.snapshot.control == "none"
    clerk_sends(6, type="text", text="après")
    await h.until(lambda: any(r.get("seq") == 6 and r.get("code") == "not_granted" for r in replies()))
    assert len(form.applied) == 1
    central.clerk_hang_up("a1")
    await h.until(lambda: bool(h.finished()))
    audit = h.finished()[0].record.control_audit
    assert audit is not None and audit["inputs"] == {"text": 1}
    assert audit["refused"] == {"not_granted": 2, "not_allowed": 1, "citizen_only_field": 1}
    assert "Élodie" not in json.dumps(audit) and "secret" not in json.dumps(audit)


async def test_take_back_voids_every_waiting_input_even_on_a_busy_page(
    harness: Callable[..., Harness],
) -> None:
    import json

    from kiosk_client.core.control_protocol import PointerInput, TextInput
    from kiosk_client.core.input_queue import MAX_WAITING
    from kiosk_client.core.ports import ControlMessageReceived

    form = FakeFormView()
    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central, None, form)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    call = h.calls.calls[0]

    def clerk_sends(seq: int, **fields: object) -> None:
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "seq": seq, **fields})))

    def answers(seq: int) -> list[dict[str, object]]:
        return [r for r in map(json.loads, call.sent_control) if r.get("seq") == seq]

    clerk_sends(1, type="control.request")
    await h.engine.answer_control(True)
    form.busy = asyncio.Event()  # the page is busy: the first input is stuck in the form view
    clerk_sends(2, type="text", text="Élodie")
    await h.until(lambda: form.started == 1)
    # A pointer flood while the page is busy: runs of moves collapse to the newest position.
    for seq in range(3, 503):
        clerk_sends(seq, type="pointer", action="move", x=(seq % 100) / 100, y=0.5)
    clerk_sends(503, type="key", key="Enter")
    await h.until(lambda: len(answers(3)) == 1)
    assert all(answers(seq) == [{"v": 1, "type": "ack", "seq": seq}] for seq in range(3, 502))
    # The queue is bounded: beyond MAX_WAITING, inputs are refused at once.
    for seq in range(1000, 1000 + MAX_WAITING + 10):
        clerk_sends(seq, type="key", key="Tab")
    await h.until(lambda: any(r.get("code") == "busy" for seq in range(1000, 1100) for r in answers(seq)))
    # The citizen takes control back (the UI closes the gate on its own thread first).
    h.engine.consent.close()
    await h.engine.take_back_control()
    form.busy.set()  # the page is free again: nothing of the clerk's may reach it now
    await h.until(lambda: len(answers(503)) == 1 and len(answers(2)) == 1)
    assert answers(2)[0]["code"] == "not_granted" and answers(503)[0]["code"] == "not_granted"
    assert answers(502)[0]["code"] == "not_granted"  # the last move was waiting too
    assert form.applied == []
    assert not any(isinstance(m, TextInput | PointerInput) for m in form.applied)


async def test_a_control_message_whose_handling_fails_is_answered_and_the_call_goes_on(
    harness: Callable[..., Harness],
) -> None:
    import json

    from kiosk_client.core.ports import ControlMessageReceived

    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central, None, FakeFormView())
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    call = h.calls.calls[0]
    control = h.engine._control
    assert control is not None

    def broken(raw: str | bytes) -> list[object]:
        raise RecursionError("a bug deep in a handler")

    control.receive = broken  # type: ignore[method-assign,assignment]
    call.on_event(ControlMessageReceived('{"v":1,"seq":1,"type":"control.request"}'))
    replies = [json.loads(t) for t in call.sent_control]
    assert replies[-1]["code"] == "internal_error"
    assert control.audit.refused["internal_error"] == 1
    assert h.engine.session.phase is Phase.IN_CALL


async def test_a_dropped_call_ends_the_clerks_control(harness: Callable[..., Harness]) -> None:
    import json

    from kiosk_client.core.ports import CallConnectionLost, ControlMessageReceived

    form = FakeFormView()
    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central, None, form)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    call = h.calls.calls[0]
    call.on_event(ControlMessageReceived(json.dumps({"v": 1, "seq": 1, "type": "control.request"})))
    await h.engine.answer_control(True)
    assert h.snapshot.control == "granted"
    epoch = h.engine.consent.epoch
    call.on_event(CallConnectionLost("failed"))  # whoever answers the next offer must ask again
    await h.until(lambda: h.snapshot.control == "none")
    assert not h.engine.consent.admits(epoch)
    assert json.loads(call.sent_control[-1])["event"] == "connection_lost"


async def test_inputs_still_waiting_when_the_session_ends_are_answered(
    harness: Callable[..., Harness],
) -> None:
    import json

    from kiosk_client.core.ports import ControlMessageReceived

    form = FakeFormView()
    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central, None, form)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    call = h.calls.calls[0]

    def clerk_sends(seq: int, **fields: object) -> None:
        call.on_event(ControlMessageReceived(json.dumps({"v": 1, "seq": seq, **fields})))

    clerk_sends(1, type="control.request")
    await h.engine.answer_control(True)
    form.busy = asyncio.Event()  # the first input is stuck in a busy page, the others wait
    for seq in range(2, 6):
        clerk_sends(seq, type="key", key="Tab")
    await h.until(lambda: form.started == 1)
    central.clerk_hang_up("a1")
    await h.until(lambda: bool(h.finished()))
    answers = {r.get("seq"): r for r in map(json.loads, call.sent_control)}
    assert all(answers[seq]["code"] == "not_granted" for seq in range(3, 6))
    assert form.applied == []


@pytest.mark.parametrize("by_clerk", [False, True])
async def test_the_goodbye_screen_lasts_its_time_whoever_hangs_up_and_whatever_the_long_polls_say(
    harness: Callable[..., Harness], by_clerk: bool
) -> None:
    from dataclasses import replace
    from email.utils import format_datetime

    central = FakeCentral(
        schedule_with(0.0), RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60)
    )
    h = harness(central)
    h.engine._local_timing = replace(
        TIMING, ended_screen=timedelta(seconds=1.5), rating_for=timedelta(seconds=1.5)
    )
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    clock = h.engine._clock
    local = clock.local_now()
    if by_clerk:
        central.clerk_hang_up("a1")
    else:
        await h.engine.citizen_hang_up()
    await h.until(lambda: h.engine.session.phase is Phase.ENDED)
    ended = asyncio.get_running_loop().time()
    # The answer to a 20 s long-poll, stamped when the central answered: taken for the midpoint of the
    # request, it put the kiosk's clock 10 s ahead (the goodbye lasted 0.2 s, or 20 s after a jump back).
    sent = local - timedelta(seconds=20)
    clock.observe(format_datetime(local, usegmt=True), sent, local)
    await h.until(lambda: h.engine.session.phase is Phase.IDLE, within=5)
    shown = asyncio.get_running_loop().time() - ended
    assert 1.3 <= shown <= 3.0, shown  # its configured 1.5 s, give or take the engine's 0.2 s tick


async def test_after_a_long_cut_the_kiosk_calls_again_within_two_seconds_of_the_central_returning(
    harness: Callable[..., Harness],
) -> None:
    """A cut long enough to end the call (and to fail every request meanwhile) must not leave the kiosk
    sleeping off a back-off when the central is reachable again: the citizen is waiting."""
    central = FakeCentral(schedule_with(0.0, minutes=10), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    central.failure = CentralUnavailable("the link is down")
    h.calls.calls[0].drop()
    await h.until(lambda: h.engine.session.reconnecting)
    await asyncio.sleep(12)  # many failed attempts: an exponential back-off would now wait 10 s or more
    offers = len(central.offers)
    back = time.monotonic()
    central.failure = None
    await h.until(lambda: len(central.offers) > offers, within=5)
    assert time.monotonic() - back <= 2.0


async def test_no_long_poll_outlives_the_call_it_follows(harness: Callable[..., Harness]) -> None:
    # The kiosk stops (or the call's task is cancelled) while it waits on the clerk's signal: the long
    # poll goes with it, rather than holding its connection and failing unheard later.
    central = FakeCentral(schedule_with(0.0), FAST)
    h = harness(central)
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)

    def polls() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if "wait_call" in repr(t.get_coro()) and not t.done()]

    await h.until(lambda: bool(polls()))
    [run] = [t for t in asyncio.all_tasks() if "KioskEngine.run" in repr(t.get_coro())]
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    await asyncio.sleep(0)
    assert polls() == []
