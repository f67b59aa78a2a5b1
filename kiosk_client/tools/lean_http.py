"""A lean HTTP/1.1 client for load generators: kept-alive connections, requests written in one go,
responses read by Content-Length (or chunks). What `bench central` sends its thousands of polls and
its call set-ups with: the load shares the machine's two cores with the central it measures, and
aiohttp's client spent about as much CPU per request as the central did to answer it.

Only what the reference central's API needs: no redirects, no cookies, no TLS, no compression.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The connection broke or the server's answer could not be read."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, head: bytes, body: bytes) -> Response:
        self.writer.write(head + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise HttpError(f"no answer: {type(exc).__name__}") from exc
        lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"not an HTTP status line: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(parts[1])
        if status in (204, 304) or 100 <= status < 200:
            return Response(status, headers, b"")
        try:
            if "content-length" in headers:
                data = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                data = await self._chunks()
            else:
                data = await self.reader.read()  # until the server closes
        except asyncio.IncompleteReadError as exc:
            raise HttpError("the answer was cut short") from exc
        return Response(status, headers, data)

    async def _chunks(self) -> bytes:
        data = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return bytes(data)
            data += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class LeanClient:
    """Requests to one server (`http://host:port`), each on an idle kept-alive connection or a new one."""

    def __init__(self, base_url: str) -> None:
        rest = base_url.removeprefix("http://").rstrip("/")
        host, _, port = rest.partition(":")
        self._host, self._port = host, int(port or 80)
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port, limit=MAX_HEAD)
        connection = _Connection(reader, writer)
        self._all.add(connection)
        return connection

    async def warm(self, connections: int) -> None:
        """Opens `connections` connections ahead (a console and a kiosk are connected before a call)."""
        self._idle += await asyncio.gather(*(self._connect() for _ in range(connections)))

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("PUT", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            response = await connection.request(head, body)
        except BaseException:
            connection.close()
            self._all.discard(connection)
            raise
        if response.headers.get("connection", "").lower() == "close":
            connection.close()
            self._all.discard(connection)
        else:
            self._idle.append(connection)
        return response

    async def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
