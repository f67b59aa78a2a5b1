"""The engine's asyncio loop on a thread of its own (Qt keeps the main thread)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

GIL_SWITCH_INTERVAL_S = 0.001


def shorten_gil_switch_interval() -> None:
    """The network loop shares the interpreter with the media threads (aiortc's encoders and
    decoders). With Python's default 5 ms switch interval, a busy media thread holds back the
    clerk's inputs on their way to the Qt thread and the SCTP acknowledgements that pace a document
    transfer (whose throughput is its 128 KB flight over the round trip); 1 ms keeps the hand-over
    short. Both were measured by the benchmarks, which run it as the kiosk does."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux), else None (the stock loop), for asyncio.run's
    `loop_factory`: the central's processes and the benchmarks' load, whose loop and transports cost
    about half the stock loop's CPU per request there. Never the kiosk's loop: aiortc is tested on
    the stock one."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class LoopThread:
    def __init__(self, name: str = "engine-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def submit[T](self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """The coroutine's future; cancelled at once if the loop has stopped (the window can still
        send a command while the application quits), so nothing waits for it nor leaks it."""
        if self.loop.is_closed() or (self._thread.ident is not None and not self._thread.is_alive()):
            coro.close()
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            future.cancel()
            return future
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task, let them clean up, then stop the loop."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                self.submit(cancel_all()).result(timeout=timeout)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=timeout)
        if not self.loop.is_running() and not self.loop.is_closed():
            # Commands submitted while it stopped (or before it ever ran) are still queued: cancel
            # them, rather than let close() drop them ("coroutine ... was never awaited").
            # On a thread of its own: this one may be running a loop already (Playwright's sync API).
            drain = threading.Thread(target=self._drain, name="loop-drain", daemon=True)
            drain.start()
            drain.join(timeout=timeout)
            if not self.loop.is_running():
                self.loop.close()

    def _drain(self) -> None:
        with contextlib.suppress(RuntimeError, asyncio.CancelledError):
            self.loop.run_until_complete(self._cancel_leftovers())

    @staticmethod
    async def _cancel_leftovers() -> None:
        # No await before this: the queued commands became tasks just before this one started, and
        # are cancelled before their first step, so none of them runs.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
