"""The clerk's accepted inputs waiting for the form view: bounded, with stale pointer moves merged.

The form view applies one input at a time, and a busy page can take a while. A clerk's pointer
flood once queued 13 s of moves: only the newest position of a run of moves matters, so a move
replaces a move still waiting behind it. Anything beyond MAX_WAITING is refused at once ("busy")
rather than applied late.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from .control_protocol import InputMessage, PointerInput

MAX_WAITING = 64


@dataclass(frozen=True, slots=True)
class QueuedInput:
    message: InputMessage
    epoch: int  # the consent epoch it was accepted in (see ConsentGate)


def _is_move(item: QueuedInput) -> bool:
    return isinstance(item.message, PointerInput) and item.message.action == "move"


class InputQueue:
    def __init__(self, limit: int = MAX_WAITING) -> None:
        self._items: deque[QueuedInput] = deque()
        self._limit = limit
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: QueuedInput) -> tuple[list[QueuedInput], list[QueuedInput]]:
        """Queue one input. Returns (merged, refused): inputs superseded by this one (answered as
        applied: the pointer ends where the clerk put it), and inputs refused because the queue is full."""
        if (
            _is_move(item)
            and self._items
            and _is_move(self._items[-1])
            and self._items[-1].epoch == item.epoch
        ):
            merged = self._items.pop()
            self._items.append(item)
            return [merged], []
        if len(self._items) >= self._limit:
            return [], [item]
        self._items.append(item)
        self._ready.set()
        return [], []

    async def get(self) -> QueuedInput:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def drain(self) -> list[QueuedInput]:
        """Everything waiting, removed (consent ended: none of it may reach the page)."""
        items = list(self._items)
        self._items.clear()
        return items
