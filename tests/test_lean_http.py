"""The benchmarks' lean HTTP client (tools/lean_http.py) against a real aiohttp server on loopback:
bodies by length and by chunks, answers without a body, kept-alive connections, a server that
closes, and a broken answer as an error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kiosk_client.tools.lean_http import HttpError, LeanClient


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {"method": request.method, "path": request.path_qs, "auth": request.headers.get("Authorization"),
         "body": body.decode(), "peer": request.transport.get_extra_info("peername")[1]},  # type: ignore[union-attr]
        headers={"ETag": '"e1"'},
    )  # fmt: skip


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for part in (b"one,", b"two,", b"three"):
        await response.write(part)
    await response.write_eof()
    return response


async def empty(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["status"]))


async def closing(request: web.Request) -> web.Response:
    return web.Response(text="bye", headers={"Connection": "close"})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/empty/{status}", empty)
    app.router.add_get("/closing", closing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_requests_and_answers_on_kept_alive_connections(server: str) -> None:
    http = LeanClient(server)
    try:
        first = await http.request("PUT", "/echo?x=1", {"Authorization": "Bearer t"}, b'{"a": 1}')
        assert first.status == 200 and first.headers["etag"] == '"e1"'
        seen = json.loads(first.body)
        assert (seen["method"], seen["path"], seen["auth"], seen["body"]) == (
            "PUT",
            "/echo?x=1",
            "Bearer t",
            '{"a": 1}',
        )
        second = json.loads((await http.request("GET", "/echo")).body)
        assert second["peer"] == seen["peer"]  # the same connection, kept alive
        assert (await http.request("GET", "/chunked")).body == b"one,two,three"
        for status in (204, 304):
            answer = await http.request("GET", f"/empty/{status}")
            assert (answer.status, answer.body) == (status, b"")
        assert (await http.request("GET", "/echo")).status == 200  # nothing left over on the connection
        assert (await http.request("GET", "/closing")).body == b"bye"
        assert (await http.request("GET", "/echo")).status == 200  # a new connection after "close"
    finally:
        await http.close()


async def test_a_connection_that_breaks_is_an_error_and_not_reused() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = LeanClient(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(HttpError):
            await http.request("GET", "/")
        with pytest.raises(HttpError):  # on a new connection: the broken one was dropped
            await http.request("GET", "/")
    finally:
        await http.close()
        server.close()
        await server.wait_closed()
