"""The engine loop's thread (runtime.LoopThread), as the window's bridge uses it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc

import pytest

from kiosk_client.runtime import LoopThread


async def answer() -> int:
    return 42


def test_a_stopped_loop_cancels_what_is_submitted_and_leaks_no_coroutine(
    recwarn: pytest.WarningsRecorder,
) -> None:
    loop = LoopThread("test-loop")
    loop.start()
    assert loop.submit(answer()).result(timeout=5) == 42
    loop.stop()
    late = loop.submit(answer())  # the window still sending a command while the application quits
    assert late.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        late.result(timeout=1)
    gc.collect()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_commands_queued_while_the_loop_stops_are_cancelled_not_leaked(
    recwarn: pytest.WarningsRecorder,
) -> None:
    loop = LoopThread("test-loop")
    loop.start()
    loop.loop.call_soon_threadsafe(loop.loop.stop)  # the loop stops before it reaches the command
    loop.submit(answer())
    loop.stop()
    gc.collect()
    assert loop.loop.is_closed()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_a_loop_that_never_ran_cancels_its_commands_without_running_them(
    recwarn: pytest.WarningsRecorder,
) -> None:
    ran: list[str] = []

    async def command() -> None:
        ran.append("ran")

    loop = LoopThread("test-loop")
    loop.submit(command())
    loop.stop()
    gc.collect()
    assert ran == [] and loop.loop.is_closed()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_stopping_from_a_thread_that_runs_a_loop_of_its_own_leaks_nothing(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """As the browser tests do: Playwright's sync API keeps a loop running on the main thread."""
    loop = LoopThread("test-loop")
    loop.loop.call_soon(lambda: None)
    loop.submit(answer())

    async def main_thread_loop() -> None:
        loop.stop()

    asyncio.run(main_thread_loop())
    gc.collect()
    assert loop.loop.is_closed()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
