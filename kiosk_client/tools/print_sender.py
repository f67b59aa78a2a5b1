"""The clerk's side of printing, in Python (the clerk bot, tests); the clerk console does the same in
JavaScript. Offers a PDF (print.offer), sends its chunks once the kiosk accepts it (paced on the
channel's buffered amount), then print.end, and keeps what the kiosk says of each document."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from ..core import print_protocol as pp
from ..core.document_protocol import MAX_CHUNK

log = logging.getLogger(__name__)

HIGH_WATER = 1024 * 1024


async def _nothing() -> None:
    return None


class PrintSender:
    def __init__(
        self,
        send_text: Callable[[str], None] = lambda text: None,
        send_bytes: Callable[[bytes], None] = lambda data: None,
        buffered_amount: Callable[[], int] = lambda: 0,
    ) -> None:
        # Replaced when the call is rebuilt (the clerk bot sets them from its documents channel).
        self.send_text, self.send_bytes, self.buffered_amount = send_text, send_bytes, buffered_amount
        self.drained: Callable[[], Awaitable[None]] = _nothing  # returns once the buffer has room
        self.documents: dict[str, bytes] = {}  # offered, by id (dropped once refused or closed)
        self.states: dict[str, list[str]] = {}  # every print.status state, by id
        self.reasons: dict[str, list[str]] = {}
        self.errors: list[str] = []  # print.error codes
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def offer(self, data: bytes, name: str) -> str:
        doc_id = secrets.token_hex(16)
        self.documents[doc_id] = data
        self.states[doc_id] = []
        self.send_text(pp.offer(doc_id, name, len(data), hashlib.sha256(data).hexdigest()))
        return doc_id

    def cancel(self, doc_id: str) -> None:
        self.send_text(pp.cancel(doc_id))

    def on_message(self, message: dict[str, Any]) -> None:
        """A print.status or print.error from the kiosk (already read as JSON)."""
        if message.get("type") == "print.error":
            self.errors.append(str(message.get("code")))
        elif message.get("type") == "print.status" and message.get("id") in self.states:
            doc_id, state = str(message["id"]), str(message.get("state"))
            self.states[doc_id].append(state)
            if "reason" in message:
                self.reasons.setdefault(doc_id, []).append(str(message["reason"]))
            if state == "accepted":
                task = asyncio.get_running_loop().create_task(self._send_chunks(doc_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif state in ("refused", "closed"):
                self.documents.pop(doc_id, None)
        self._changed.set()

    async def _send_chunks(self, doc_id: str) -> None:
        data = self.documents.get(doc_id)
        if data is None:
            return
        for offset in range(0, len(data), MAX_CHUNK):
            if self.buffered_amount() > HIGH_WATER:
                await self.drained()
            if self.states[doc_id][-1:] != ["accepted"]:
                return  # refused meanwhile
            self.send_bytes(pp.chunk(doc_id, offset, data[offset : offset + MAX_CHUNK]))
            await asyncio.sleep(0)
        self.send_text(pp.end(doc_id))

    async def wait_for(self, doc_id: str, state: str, timeout_s: float = 30.0) -> list[str]:
        """Waits until the kiosk said `state` (or refused it); returns every state it said."""
        async with asyncio.timeout(timeout_s):
            while state not in self.states[doc_id] and "refused" not in self.states[doc_id]:
                self._changed.clear()
                await self._changed.wait()
        return self.states[doc_id]
