"""The DTLS race between a clerk that answers `a=setup:active` and the kiosk that learns the answer
late (through the central's long poll).

Chromium starts DTLS as soon as one of its ICE checks is answered, and the kiosk's aioice answers
checks before it has the answer: Chromium's ClientHello reaches the kiosk before the kiosk can start
its DTLS server (the answer comes the long way, through the central). If the kiosk lost those
datagrams, the handshake would wait for the clerk's next retransmission, later the longer the clerk
has been waiting (its timer backs off; aiortc's first one comes after a second). aioice queues them
and the kiosk's DTLS server reads them once it starts: these tests stamp the datagrams the kiosk
receives before it has the answer and check that its DTLS server starts from them.

Real peers only: the kiosk's aiortc configuration, an aiortc clerk made to start DTLS when Chromium
does, and headless Chromium itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from playwright.async_api import Browser, async_playwright

from kiosk_client.adapters.rtc_aiortc import rtc_configuration

from .conftest import CHROMIUM, CHROMIUM_ARGS
from .kiosk_rig import wait_for

pytestmark = pytest.mark.e2e

# How long after the clerk's first DTLS datagram the kiosk gets the answer: the console posts it once
# its ICE gathering is complete, then the central hands it to the kiosk's long poll. Milliseconds on
# loopback; on a rural link the central is a round trip or two further away than the clerk.
ANSWER_LATE_S = 0.3


def is_dtls(datagram: bytes) -> bool:
    return 19 < datagram[0] < 64  # RFC 7983's demultiplexing, as aiortc's RTCDtlsTransport does


class KioskSide:
    """The kiosk's peer connection (its own configuration, a data channel as in every call), with
    the DTLS datagrams it received before it had the answer and the first one its DTLS transport
    read."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.pc.createDataChannel("control", ordered=True)
        self.early: list[bytes] = []
        self.first_early = asyncio.Event()
        self.answered = False
        self.first_read: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def offer(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ice = self.pc.sctp.transport.transport  # one transport for everything (max-bundle)
        connection = ice._connection
        deliver = connection.data_received
        read = ice._recv

        def data_received(data: bytes, component: int) -> None:
            if is_dtls(data) and not self.answered:
                self.early.append(data)
                self.first_early.set()
            deliver(data, component)

        async def recv() -> bytes:
            data: bytes = await read()
            if is_dtls(data) and not self.first_read.done():
                self.first_read.set_result(data)
            return data

        connection.data_received = data_received  # what aioice's sockets call with non-STUN datagrams
        ice._recv = recv  # what RTCDtlsTransport reads from
        description: RTCSessionDescription = self.pc.localDescription
        return description

    async def dtls_came_before_the_answer(self) -> None:
        try:
            await asyncio.wait_for(self.first_early.wait(), 20)
        except TimeoutError:
            raise AssertionError("the clerk sent no DTLS before the kiosk had its answer: no race") from None

    async def accept(self, answer: RTCSessionDescription) -> None:
        self.answered = True
        await self.pc.setRemoteDescription(answer)

    async def connected(self) -> None:
        await wait_for(lambda: self.pc.connectionState == "connected", 20)


def start_dtls_when_a_check_succeeds(clerk: RTCPeerConnection) -> None:
    """Make an aiortc answerer time DTLS as Chromium does. aiortc, being ICE-controlled, waits for
    the kiosk to nominate a pair (which the kiosk can only do once it has the answer) before it
    starts DTLS; Chromium sends its ClientHello on the first pair whose check succeeds. Treating each
    pair as nominated by the kiosk ends the clerk's ICE on its first successful check."""
    connection = clerk.sctp.transport.transport._connection
    check_start = connection.check_start

    async def check_start_as_chromium(pair: Any) -> None:
        pair.remote_nominated = True
        await check_start(pair)

    connection.check_start = check_start_as_chromium


async def test_the_kiosk_starts_dtls_from_a_client_hello_that_came_before_its_answer() -> None:
    kiosk = KioskSide()
    clerk = RTCPeerConnection(rtc_configuration(()))
    try:
        await clerk.setRemoteDescription(await kiosk.offer())
        start_dtls_when_a_check_succeeds(clerk)
        await clerk.setLocalDescription(await clerk.createAnswer())
        assert "a=setup:active" in clerk.localDescription.sdp
        await kiosk.dtls_came_before_the_answer()
        await asyncio.sleep(ANSWER_LATE_S)
        await kiosk.accept(clerk.localDescription)
        await kiosk.connected()
        assert kiosk.first_read.result() in kiosk.early  # not a retransmission made after the answer
    finally:
        await clerk.close()
        await kiosk.pc.close()


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


# What the clerk console does with an offer (clerk.js, answer()): camera and microphone, the answer
# Chromium chooses (setup:active), then every candidate before posting it. The page keeps `pc`.
ANSWER_JS = """
async (offer) => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pc = pc;
  const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  for (const track of media.getTracks()) pc.addTrack(track, media);
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 3000);
    });
  }
  return pc.localDescription.sdp;
}
"""


async def test_chromium_answering_active_shakes_hands_with_what_it_sent_before_the_kiosk_had_the_answer(
    chromium: Browser,
) -> None:
    kiosk = KioskSide()
    page = await chromium.new_page()
    try:
        # getUserMedia needs a secure context: a page of our own at http://localhost.
        await page.route(
            "http://localhost/clerk", lambda route: route.fulfill(body="<!doctype html><title>clerk</title>")
        )
        await page.goto("http://localhost/clerk")
        answer = await page.evaluate(ANSWER_JS, (await kiosk.offer()).sdp)
        assert "a=setup:active" in answer
        await kiosk.dtls_came_before_the_answer()
        await asyncio.sleep(ANSWER_LATE_S)
        await kiosk.accept(RTCSessionDescription(sdp=answer, type="answer"))
        await kiosk.connected()
        assert kiosk.first_read.result() in kiosk.early  # not a retransmission made after the answer
        await page.wait_for_function("() => window.pc.connectionState === 'connected'", timeout=20_000)
    finally:
        await page.close()
        await kiosk.pc.close()


@pytest.mark.parametrize("setup", ["active", "passive"])
async def test_the_kiosk_connects_whichever_dtls_role_the_clerk_answers(setup: str) -> None:
    # The clerk bot answers as aiortc chooses (active); a council's own clerk app may answer passive,
    # which makes the kiosk the DTLS client.
    kiosk = KioskSide()
    clerk = RTCPeerConnection(rtc_configuration(()))
    try:
        await clerk.setRemoteDescription(await kiosk.offer())
        answer = await clerk.createAnswer()
        sdp = answer.sdp.replace("a=setup:active", f"a=setup:{setup}")
        await clerk.setLocalDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await kiosk.accept(clerk.localDescription)
        await kiosk.connected()
        assert kiosk.pc.sctp.transport._role == ("server" if setup == "active" else "client")
    finally:
        await clerk.close()
        await kiosk.pc.close()
