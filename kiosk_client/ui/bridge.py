"""The one bridge between Qt (main thread) and the engine (its asyncio thread).

Engine → UI: events and frames become Qt signals, queued onto the main thread.
UI → engine: coroutines submitted to the engine's loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..core.control_protocol import InputMessage
from ..core.events import KioskEvent, LiveCheckEnded, SessionDocument, SessionFinished, StateChanged
from ..core.models import RgbImage
from ..core.ports import InputOutcome
from ..core.reset_check import CheckResult
from ..runtime import LoopThread

log = logging.getLogger(__name__)


class EngineBridge(QObject):
    state_changed = Signal(object)  # KioskSnapshot
    session_finished = Signal(object)  # SessionRecord
    remote_frame = Signal()
    local_frame = Signal()
    # InputMessage, admitted() (consent, checked at injection), done(code, reason): applied on the Qt thread
    form_input = Signal(object, object, object)
    session_document = Signal(str, bytes)  # a document the citizen sent: for the form's file chooser
    microphone_level = Signal()  # a new level is waiting: take_microphone_level()
    # The staff's live device check: a picture is waiting (take_check_frame()), a level is waiting
    # (take_check_level()), the check ended and released the devices (the reason: LiveCheckEnded)
    check_frame = Signal()
    check_level = Signal()
    live_check_ended = Signal(str)
    # The reset check: (start_up, done(results)); the window wipes and checks on the Qt thread
    reset_requested = Signal(bool, object)
    # IT staff's commands (core/commands.py): (kind, done(value, error)); the window answers on the Qt thread
    command_requested = Signal(str, object)
    answered = Signal(object, object)  # (on_result, the engine command's future): see ask()

    def __init__(self, loop: LoopThread) -> None:
        super().__init__()
        self._loop = loop
        self._frames_lock = threading.Lock()
        self._latest: dict[str, RgbImage | None] = {"remote": None, "local": None}
        self._level: tuple[float | None] | None = None  # (level,) waiting to be shown; (None,): no microphone
        # The live device check's picture and level waiting to be shown: (value,), (None,): no device
        self._check_frame: tuple[RgbImage | None] | None = None
        self._check_level: tuple[float | None] | None = None
        self.answered.connect(self._deliver)

    # --- engine side (called on the engine's thread)

    def publish(self, event: KioskEvent) -> None:
        if isinstance(event, StateChanged):
            self.state_changed.emit(event.snapshot)
        elif isinstance(event, SessionFinished):
            self.session_finished.emit(event.record)
        elif isinstance(event, SessionDocument):
            self.session_document.emit(event.name, event.data)
        elif isinstance(event, LiveCheckEnded):
            with self._frames_lock:  # nothing of the check waits here once it stopped
                self._check_frame = self._check_level = None
            self.live_check_ended.emit(event.reason)

    def _offer_frame(self, slot: str, image: RgbImage, signal: Any) -> None:
        # Keep only the newest frame: if the UI is behind, older frames are dropped, never queued.
        with self._frames_lock:
            pending = self._latest[slot] is not None
            self._latest[slot] = image
        if not pending:
            signal.emit()

    def remote_frame_arrived(self, image: RgbImage) -> None:
        self._offer_frame("remote", image, self.remote_frame)

    def local_frame_arrived(self, image: RgbImage) -> None:
        self._offer_frame("local", image, self.local_frame)

    def microphone_level_measured(self, level: float | None) -> None:
        # Like frames: only the newest level waits, and one signal for however many arrived.
        with self._frames_lock:
            pending = self._level is not None
            self._level = (level,)
        if not pending:
            self.microphone_level.emit()

    def check_frame_arrived(self, image: RgbImage | None) -> None:
        with self._frames_lock:
            pending = self._check_frame is not None
            self._check_frame = (image,)
        if not pending:
            self.check_frame.emit()

    def check_level_measured(self, level: float | None) -> None:
        with self._frames_lock:
            pending = self._check_level is not None
            self._check_level = (level,)
        if not pending:
            self.check_level.emit()

    # --- UI side (main thread)

    def take_check_frame(self) -> tuple[RgbImage | None] | None:
        with self._frames_lock:
            image, self._check_frame = self._check_frame, None
        return image

    def take_check_level(self) -> tuple[float | None] | None:
        with self._frames_lock:
            level, self._check_level = self._check_level, None
        return level

    def take_microphone_level(self) -> tuple[float | None] | None:
        with self._frames_lock:
            level, self._level = self._level, None
        return level

    def take_frame(self, slot: str) -> RgbImage | None:
        with self._frames_lock:
            image, self._latest[slot] = self._latest[slot], None
        return image

    def submit(self, make: Callable[[], Coroutine[Any, Any, object]]) -> None:
        future = self._loop.submit(make())

        def report(f: Any) -> None:
            if not f.cancelled() and f.exception() is not None:
                log.error("engine command failed: %s", f.exception())

        future.add_done_callback(report)

    def ask[T](self, make: Callable[[], Coroutine[Any, Any, T]], on_result: Callable[[T], None]) -> None:
        """Like submit, and `on_result` gets the command's result on the Qt thread."""
        self._loop.submit(make()).add_done_callback(lambda future: self.answered.emit(on_result, future))

    def _deliver(self, on_result: Callable[[Any], None], future: Any) -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            log.error("engine command failed: %s", future.exception())
            return
        on_result(future.result())


class BridgeVideoSink:
    """The core's VideoSink, MicrophoneMeter and DeviceCheckSink ports, delivering into the bridge."""

    def __init__(self, bridge: EngineBridge) -> None:
        self._bridge = bridge

    def remote_frame(self, image: RgbImage) -> None:
        self._bridge.remote_frame_arrived(image)

    def local_frame(self, image: RgbImage) -> None:
        self._bridge.local_frame_arrived(image)

    def microphone_level(self, level: float | None) -> None:
        self._bridge.microphone_level_measured(level)

    def check_frame(self, image: RgbImage | None) -> None:
        self._bridge.check_frame_arrived(image)

    def check_level(self, level: float | None) -> None:
        self._bridge.check_level_measured(level)


class BridgeFormView:
    """The core's FormViewPort: hands each input to the Qt thread and waits for the form view's answer."""

    def __init__(self, bridge: EngineBridge) -> None:
        self._bridge = bridge

    async def apply(self, message: InputMessage, admitted: Callable[[], bool]) -> InputOutcome:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[InputOutcome] = loop.create_future()

        def done(code: str | None, reason: str) -> None:  # called on the Qt thread
            def resolve() -> None:
                if not answer.done():
                    answer.set_result(InputOutcome(code, reason))

            loop.call_soon_threadsafe(resolve)

        self._bridge.form_input.emit(message, admitted, done)
        return await answer


class BridgeResetScreen:
    """The core's ResetScreenPort: asks the Qt thread to wipe the window and check it, and waits for
    the results (the engine's reset service gives up after its own timeout)."""

    def __init__(self, bridge: EngineBridge) -> None:
        self._bridge = bridge

    async def wipe_and_check(self, start_up: bool) -> list[CheckResult]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[CheckResult]] = loop.create_future()

        def done(results: list[CheckResult]) -> None:  # called on the Qt thread
            def resolve() -> None:
                if not answer.done():
                    answer.set_result(results)

            loop.call_soon_threadsafe(resolve)

        self._bridge.reset_requested.emit(start_up, done)
        return await answer


class BridgeCommandScreen:
    """The core's KioskScreenPort: asks the Qt thread (ui/fleet_commands.py) and waits for its answer."""

    def __init__(self, bridge: EngineBridge) -> None:
        self._bridge = bridge

    async def _ask(self, kind: str) -> object:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[object] = loop.create_future()

        def done(value: object, error: BaseException | None = None) -> None:  # called on the Qt thread
            def resolve() -> None:
                if answer.done():
                    return
                if error is not None:
                    answer.set_exception(error)
                else:
                    answer.set_result(value)

            loop.call_soon_threadsafe(resolve)

        self._bridge.command_requested.emit(kind, done)
        return await answer

    async def screenshot(self) -> bytes:
        png = await self._ask("screenshot")
        assert isinstance(png, bytes)
        return png

    async def reload(self) -> None:
        await self._ask("reload")

    async def restart(self) -> None:
        await self._ask("restart")
