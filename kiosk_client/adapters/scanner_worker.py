"""The scanner worker: a child process that owns pyinsane2 (SANE on Linux, WIA on Windows).

A driver that crashes or hangs takes only this process down; the kiosk (scanner_sane.SaneScanner)
kills it and says so. One job per process, read as one JSON line on stdin; answers are frames on
stdout: a 4-byte big-endian header length, a JSON header, then `size` bytes of payload if the header
has one (a page's pixels). pyinsane2 runs single-threaded: its daemon mode breaks on big images.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import IO, Any, BinaryIO

os.environ.setdefault("PYINSANE_SINGLE_THREAD", "1")

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5
SANE_TYPE_FIXED = 2
SOURCE_WORDS = {
    "flatbed": ("flatbed", "platen"),
    "feeder": ("automatic document feeder", "adf front", "adf", "feeder", "document feeder"),
    "duplex": ("adf duplex", "duplex"),
}


class Channel:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        if payload:
            header = {**header, "size": len(payload)}
        raw = json.dumps(header).encode()
        self._out.write(len(raw).to_bytes(4, "big") + raw)
        if payload:
            self._out.write(payload)
        self._out.flush()


def sources_of(device: Any) -> dict[str, str]:
    """Our source names → the driver's value for each, for the sources this device has."""
    option = device.options.get("source")
    if option is None or not isinstance(option.constraint, list):
        return {"flatbed": ""}  # no choice: a flatbed
    found: dict[str, str] = {}
    values = [v for v in option.constraint if isinstance(v, str)]
    for ours in ("duplex", "feeder", "flatbed"):
        for value in values:
            lowered = value.lower()
            if any(word in lowered for word in SOURCE_WORDS[ours]) and value not in found.values():
                if ours == "feeder" and "duplex" in lowered:
                    continue
                found[ours] = value
                break
    return found or {"flatbed": values[0] if values else ""}


def set_option(device: Any, name: str, value: Any) -> None:
    option = device.options.get(name)
    if option is None or not option.capabilities.is_active():
        return
    option.value = value


def set_resolution(device: Any, dpi: int) -> None:
    option = device.options.get("resolution")
    if option is None or not option.capabilities.is_active():
        return
    constraint = option.constraint
    value: int = dpi
    if isinstance(constraint, list) and constraint:
        value = min(constraint, key=lambda v: abs(int(v) - dpi))
    try:
        fixed = int(option.val_type) == SANE_TYPE_FIXED
    except (TypeError, ValueError):
        fixed = False  # WIA and others: plain integers
    option.value = value << 16 if fixed else value  # SANE fixed-point values are 16.16


def set_mode(device: Any, colour: bool) -> None:
    option = device.options.get("mode")
    if option is None or not isinstance(option.constraint, list):
        return
    wanted = ("color", "colour") if colour else ("gray", "grey")
    for value in option.constraint:
        if isinstance(value, str) and any(w in value.lower() for w in wanted):
            option.value = value
            return


def list_devices(pyinsane2: Any) -> list[dict[str, Any]]:
    out = []
    for device in pyinsane2.get_devices():
        try:
            sources = list(sources_of(device))
        except Exception:
            log.exception("could not read the sources of %s", device.name)
            sources = ["flatbed"]
        out.append(
            {"id": device.name, "label": f"{device.vendor} {device.model}".strip(), "sources": sources}
        )
    return out


def page_payload(image: Any) -> tuple[dict[str, Any], bytes]:
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK") else "L")
    channels = 3 if image.mode == "RGB" else 1
    return {"width": image.width, "height": image.height, "channels": channels}, image.tobytes()


def scan(pyinsane2: Any, job: dict[str, Any], channel: Channel) -> None:
    devices = pyinsane2.get_devices()
    if not devices:
        channel.send({"type": "error", "code": "no_scanner", "message": "no scanner found"})
        return
    wanted = job.get("device")
    device = next((d for d in devices if d.name == wanted), None) if wanted else devices[0]
    if device is None:
        channel.send({"type": "error", "code": "no_scanner", "message": f"scanner {wanted} not found"})
        return
    source = str(job.get("source", "flatbed"))
    sources = sources_of(device)
    if source not in sources:
        channel.send(
            {"type": "error", "code": "source_unsupported", "message": f"{device.name} has no {source}"}
        )
        return
    if sources[source]:
        set_option(device, "source", sources[source])
    set_mode(device, bool(job.get("colour", True)))
    set_option(device, "depth", 8)
    dpi = int(job.get("dpi", 300))
    set_resolution(device, dpi)
    pyinsane2.maximize_scan_area(device)

    releases: list[Any] = []
    try:
        channel.send(_scan_pages(device, source, dpi, channel, releases))
    finally:
        for release in releases:
            release()


def _defer_cancel(scan: Any, releases: list[Any]) -> None:
    """pyinsane2 cancels the job (sane_cancel) before it tells us the feeder ran out; some drivers hang
    there: SANE's own `test` backend cancels its reader thread asynchronously and, now and then,
    deadlocks joining it (about 1 job in 70 on a busy machine). So the kiosk hears the answer first and
    the driver is released after; if it hangs then, the kiosk kills this process, having heard all."""
    cancel = getattr(scan, "_cancel", None)
    if callable(cancel):  # pyinsane2's SANE scans; its WIA ones end differently
        scan._cancel = lambda: releases.append(cancel)


def _scan_pages(device: Any, source: str, dpi: int, channel: Channel, releases: list[Any]) -> dict[str, Any]:
    """Sends each page as it comes; returns the job's last frame (done or an error)."""
    from pyinsane2.sane.rawapi import SaneException, SaneStatus

    pages = 0
    sent_progress = time.monotonic()
    read_bytes = 0
    try:
        try:
            session = device.scan(multiple=source != "flatbed")
        except StopIteration:
            return {"type": "error", "code": "feeder_empty", "message": "the feeder is empty"}
        _defer_cancel(session.scan, releases)
        while True:
            try:
                session.scan.read()
                read_bytes += 1
                if time.monotonic() - sent_progress > PROGRESS_EVERY_S:
                    channel.send({"type": "progress", "reads": read_bytes, "pages": pages})
                    sent_progress = time.monotonic()
            except EOFError:
                if not session.images:
                    break
                header, pixels = page_payload(session.images[-1])
                session.images.clear()  # a feeder batch must not pile up in this process
                pages += 1
                channel.send({"type": "page", "dpi": dpi, **header}, pixels)
                sent_progress = time.monotonic()
                if source == "flatbed":
                    break
            except StopIteration:
                break
    except SaneException as exc:
        try:
            status = int(exc.status)
        except (AttributeError, TypeError, ValueError):
            status = -1
        code = {
            SaneStatus.JAMMED: "paper_jammed",
            SaneStatus.NO_DOCS: "feeder_empty",
            SaneStatus.IO_ERROR: "scanner_disconnected",
            SaneStatus.COVER_OPEN: "cover_open",
            SaneStatus.DEVICE_BUSY: "scanner_busy",
        }.get(status, "scanner_failed")
        return {"type": "error", "code": code, "message": str(exc), "pages": pages}
    if pages == 0 and source != "flatbed":
        return {"type": "error", "code": "feeder_empty", "message": "the feeder is empty"}
    return {"type": "done", "pages": pages}


def main(stdin: IO[str] = sys.stdin) -> int:
    # pyinsane2 prints warnings on stdout: keep the real stdout for our frames only.
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    logging.basicConfig(level=logging.INFO, format="scanner-worker %(levelname)s %(message)s")
    channel = Channel(frames)
    try:
        job = json.loads(stdin.readline())
        import pyinsane2

        pyinsane2.init()
        try:
            if job.get("op") == "devices":
                channel.send({"type": "devices", "devices": list_devices(pyinsane2)})
            elif job.get("op") == "scan":
                scan(pyinsane2, job, channel)
            else:
                channel.send({"type": "error", "code": "bad_job", "message": "unknown job"})
        finally:
            pyinsane2.exit()
    except Exception as exc:  # the parent hears of every failure, then this process ends
        log.exception("scanner worker failed")
        channel.send({"type": "error", "code": "scanner_failed", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
