"""The engine runs IT staff's commands (core/commands.py) against fake ports: never during a citizen's
session, never once expired, each id at most once, each result reported."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeKioskScreen, MemoryCache
from kiosk_client.core.clock import CentralClock
from kiosk_client.core.commands import (
    EXPIRED,
    IN_SESSION,
    STAFF_PANEL,
    UNSUPPORTED,
    CommandKind,
    CommandResult,
    KioskCommand,
    Outcome,
)
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import KioskEvent
from kiosk_client.core.models import RemoteConfig
from kiosk_client.core.session import Phase
from kiosk_client.core.staff_pin import hash_pin

from .kiosk_rig import NoonClock
from .test_engine import FAST, TIMING, schedule_with


@dataclass
class Kiosk:
    central: FakeCentral
    screen: FakeKioskScreen
    engine: KioskEngine
    events: list[KioskEvent] = field(default_factory=list)

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met within {within}s; session is {self.engine.session}")
            await asyncio.sleep(0.01)

    async def command(self, *commands: KioskCommand) -> list[CommandResult]:
        """Left for the next heartbeat; the results once every one was reported."""
        before = len(self.central.command_results)
        self.central.pending_commands.extend(commands)
        await self.until(lambda: len(self.central.command_results) >= before + len(commands))
        return self.central.command_results[before:]


@pytest.fixture
async def kiosk() -> AsyncIterator[Callable[[FakeCentral], Kiosk]]:
    tasks: list[asyncio.Task[None]] = []

    def start(central: FakeCentral) -> Kiosk:
        events: list[KioskEvent] = []
        engine = KioskEngine(
            central,
            FakeCallFactory(),
            MemoryCache(),
            CentralClock(NoonClock()),
            events.append,
            local_timing=TIMING,
            tick_s=0.01,
            rng=random.Random(7),
            heartbeat_s=0.02,
        )
        screen = FakeKioskScreen((64, 40))
        engine.attach_command_screen(screen)
        tasks.append(asyncio.create_task(engine.run()))
        return Kiosk(central, screen, engine, events)

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def command(ident: str, kind: CommandKind, expires_in_s: float = 300.0) -> KioskCommand:
    return KioskCommand(ident, kind, expires_in_s)


async def idle(k: Kiosk) -> None:
    """Idle, and the start-up reset check over (a screenshot waits for it)."""
    await k.until(lambda: k.engine.session.phase is Phase.IDLE and not k.engine.reset.checking)


async def test_when_idle_each_command_is_done(kiosk: Callable[[FakeCentral], Kiosk]) -> None:
    central = FakeCentral(schedule_with(3600), FAST)
    k = kiosk(central)
    await idle(k)
    [shot] = await k.command(command("c1", CommandKind.SCREENSHOT))
    assert shot.outcome is Outcome.DONE and shot.reason is None
    assert (
        shot.screenshot is not None and shot.screenshot.startswith(b"\x89PNG") and k.screen.screenshots == 1
    )

    schedules, configs = central.schedule_requests, central.config_requests
    [reloaded] = await k.command(command("c2", CommandKind.RELOAD))
    assert reloaded == CommandResult("c2", Outcome.DONE)
    assert (
        k.screen.reloads == 1 and central.config_requests > configs and central.schedule_requests > schedules
    )

    [restarted] = await k.command(command("c3", CommandKind.RESTART))
    assert restarted == CommandResult("c3", Outcome.DONE)
    await k.until(lambda: k.screen.restarts == 1)  # after the central was told: it was told first


async def test_during_a_session_every_command_is_refused_and_the_screen_untouched(
    kiosk: Callable[[FakeCentral], Kiosk],
) -> None:
    central = FakeCentral(schedule_with(0.0), FAST)
    k = kiosk(central)
    await k.until(lambda: bool(central.offers))
    central.answer("a1")
    await k.until(lambda: k.engine.session.phase is Phase.IN_CALL)
    results = await k.command(
        command("s", CommandKind.SCREENSHOT),
        command("l", CommandKind.RELOAD),
        command("r", CommandKind.RESTART),
    )
    assert results == [CommandResult(i, Outcome.REFUSED, IN_SESSION) for i in ("s", "l", "r")]
    assert (k.screen.screenshots, k.screen.reloads, k.screen.restarts) == (0, 0, 0)
    assert k.engine.session.phase is Phase.IN_CALL  # the citizen's call goes on


async def test_an_expired_command_never_runs(kiosk: Callable[[FakeCentral], Kiosk]) -> None:
    k = kiosk(FakeCentral(None, FAST))
    await idle(k)
    results = await k.command(
        command("old", CommandKind.RESTART, 0.0), command("older", CommandKind.SCREENSHOT, -5)
    )
    assert results == [
        CommandResult("old", Outcome.REFUSED, EXPIRED),
        CommandResult("older", Outcome.REFUSED, EXPIRED),
    ]
    assert (k.screen.screenshots, k.screen.restarts) == (0, 0)


async def test_the_same_command_heard_twice_runs_once(kiosk: Callable[[FakeCentral], Kiosk]) -> None:
    central = FakeCentral(None, FAST)
    k = kiosk(central)
    await idle(k)
    await k.command(command("twice", CommandKind.SCREENSHOT))
    heartbeats = len(central.heartbeats)
    central.pending_commands.append(command("twice", CommandKind.SCREENSHOT))  # a central that sends it again
    await k.until(lambda: not central.pending_commands and len(central.heartbeats) > heartbeats + 2)
    [next_one] = await k.command(command("after", CommandKind.SCREENSHOT))  # the loop went on
    assert next_one.outcome is Outcome.DONE
    assert [r.command_id for r in central.command_results] == ["twice", "after"]
    assert k.screen.screenshots == 2


async def test_a_screen_that_sees_a_session_begin_refuses_at_the_last_moment(
    kiosk: Callable[[FakeCentral], Kiosk],
) -> None:
    k = kiosk(FakeCentral(None, FAST))
    await idle(k)
    k.screen.refuse_with = IN_SESSION
    [result] = await k.command(command("late", CommandKind.SCREENSHOT))
    assert result == CommandResult("late", Outcome.REFUSED, IN_SESSION)


async def test_no_screenshot_while_the_staff_panel_is_open(kiosk: Callable[[FakeCentral], Kiosk]) -> None:
    config = RemoteConfig(
        poll_interval_s=0.05, join_before_s=0.3, staff_pin_hash=hash_pin("2468", iterations=10_000)
    )
    k = kiosk(FakeCentral(None, config))
    await idle(k)
    await k.until(lambda: k.engine.staff_report().pin_configured)
    await k.engine.staff_unlock("2468")
    assert k.engine.staff.is_open
    [refused] = await k.command(command("p1", CommandKind.SCREENSHOT))
    assert refused == CommandResult("p1", Outcome.REFUSED, STAFF_PANEL) and k.screen.screenshots == 0
    await k.engine.staff_close()
    [taken] = await k.command(command("p2", CommandKind.SCREENSHOT))
    assert taken.outcome is Outcome.DONE and k.screen.screenshots == 1


async def test_a_kind_this_kiosk_does_not_know_is_refused(kiosk: Callable[[FakeCentral], Kiosk]) -> None:
    k = kiosk(FakeCentral(None, FAST))
    await idle(k)
    [result] = await k.command(KioskCommand("n1", None, 60.0, "collect_logs"))
    assert result == CommandResult("n1", Outcome.REFUSED, UNSUPPORTED)
