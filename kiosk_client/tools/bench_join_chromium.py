"""The browser clerk of `kiosk-client bench join --clerk chromium`, in its own process.

The real clerk console (served by the reference central) in headless Debian Chromium, driven by
Playwright: at each appointment's start the clerk presses "Rejoindre", and the page itself stamps
when the answer was posted and when the first frame of the citizen's video was shown (wall clock, as
the kiosk and the clerk bot stamp theirs). The console holds the call a moment, then hangs up.
Writes the same report as the clerk bot (`{"calls": [...]}`), so the bench reads both alike.

Playwright is a development dependency, like the browser tests that use it: the bench needs it, a
kiosk does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..cli import stop_when_parent_leaves
from .central_process import BotProcess

if TYPE_CHECKING:
    from playwright.async_api import Page

log = logging.getLogger(__name__)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the browser tests run it (see the architecture notes): no sandbox (root in a container), no
# background traffic, the fake camera and microphone granted without a prompt, and no QUIC, so that
# nothing but the call uses the loopback's UDP.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-quic",
]

# Runs in the page from the click on "Rejoindre": resolves once the console has posted its answer
# (it stamps `joinedAt` when the central accepted it) and the citizen's video has a first frame.
# That frame is the first one the <video> presents (requestVideoFrameCallback: decoded, then handed
# to the compositor), or the first decoded one getStats reports if the element never presents one.
# getStats is polled in the page: Playwright's round trips stay out of the figure, but its counters
# trail the decoder by 10-25 ms, which is why it is only the fallback.
FIRST_FRAME_JS = """
async (timeoutMs) => {
  const state = window.clerkConsole;
  const video = document.getElementById("remote");
  const deadline = Date.now() + timeoutMs;
  let firstVideoAt = null;
  video.requestVideoFrameCallback((now, frame) => {
    // presentationTime is on the page's monotonic clock: take it to the wall clock here and now.
    const at = Date.now() - (performance.now() - frame.presentationTime);
    if (firstVideoAt === null || at < firstVideoAt) firstVideoAt = at;
  });
  while (Date.now() < deadline) {
    if (firstVideoAt === null && (await window.clerkStats()).framesDecoded > 0) firstVideoAt = Date.now();
    if (firstVideoAt !== null && state.joinedAt !== null) {
      return { answered_at: state.joinedAt / 1000, first_video_at: firstVideoAt / 1000 };
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { answered_at: state.joinedAt === null ? null : state.joinedAt / 1000, first_video_at: null };
}
"""


async def wait_for_join_button(page: Page, appointment_id: str, timeout_s: float) -> None:
    """Until the console offers to join the appointment (the kiosk has offered; the agenda is drawn
    again after each call)."""
    await page.wait_for_function(
        "(id) => { const b = document.querySelector(`li[data-appointment='${id}'] button`);"
        " return b !== null && !b.disabled; }",
        arg=appointment_id,
        timeout=timeout_s * 1000,
        polling=100,
    )


async def join(page: Page, appointment_id: str, timeout_s: float) -> dict[str, Any]:
    """Press "Rejoindre"; when the answer was posted and the first frame shown (wall clock, s)."""
    await page.evaluate("() => { window.clerkConsole.joinedAt = null; }")
    await page.locator(f'li[data-appointment="{appointment_id}"] button').click()
    result: dict[str, Any] = await page.evaluate(FIRST_FRAME_JS, timeout_s * 1000)
    return result


async def _appointments(central_url: str, token: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(
        base_url=central_url.rstrip("/") + "/api/v1", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.get("/clerk/appointments")
        response.raise_for_status()
        return sorted(response.json()["appointments"], key=lambda a: str(a["start"]))


async def serve(
    central_url: str, token: str, count: int, hold_s: float, call_timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Join the clerk's next `count` appointments from the console, each at its start time, and
    return one report per appointment (times left None when a call did not get that far)."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    appointments = (await _appointments(central_url, token))[:count]
    calls: list[dict[str, Any]] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{central_url}/clerk#token={token}")
            for appointment in appointments:
                start = datetime.fromisoformat(str(appointment["start"]))
                call: dict[str, Any] = {
                    "appointment_id": appointment["id"],
                    "scheduled_start": start.isoformat(),
                    "answered_at": None,
                    "first_video_at": None,
                }
                calls.append(call)
                try:
                    await wait_for_join_button(page, str(appointment["id"]), call_timeout_s)
                    # Like the bot, the clerk joins at the start time (the kiosk has offered by then).
                    await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
                    call.update(await join(page, str(appointment["id"]), call_timeout_s))
                    await asyncio.sleep(hold_s)
                except PlaywrightError as exc:
                    log.warning("appointment %s: the console did not get through: %s", appointment["id"], exc)
                hang_up = page.get_by_role("button", name="Raccrocher")
                if await hang_up.is_visible():
                    await hang_up.click()
                with contextlib.suppress(PlaywrightError):
                    await page.wait_for_function(
                        "() => window.clerkConsole.appointment === null", timeout=10_000
                    )
        finally:
            await browser.close()
    return calls


async def _serve_until_parent_leaves(args: argparse.Namespace) -> list[dict[str, Any]]:
    stop = asyncio.Event()
    stop_when_parent_leaves(stop)  # a killed bench must not leave a browser behind
    clerk = asyncio.ensure_future(serve(args.central, args.token, args.count, args.hold))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({clerk, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not clerk.done():
        clerk.cancel()  # leaving Playwright's context closes the browser
        with contextlib.suppress(asyncio.CancelledError):
            await clerk
        return []
    return clerk.result()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The clerk console in headless Chromium, for bench join.")
    p.add_argument("--central", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--hold", type=float, default=1.0, help="seconds to stay in the call once video shows")
    p.add_argument("--report", type=Path, required=True)
    p.add_argument(
        "--child", action="store_true", help="run by a parent (always: it stops when stdin closes)"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    calls = asyncio.run(_serve_until_parent_leaves(args))
    args.report.write_text(json.dumps({"calls": calls}))
    return 0


class ChromiumClerkProcess(BotProcess):
    """The browser clerk in a child process, run and read as the bot is."""

    MODULE = ("kiosk_client.tools.bench_join_chromium",)


if __name__ == "__main__":
    sys.exit(main())
