"""The PrinterPort over IPP (RFC 8010/8011), spoken directly with httpx: to the local CUPS queue
(`ipp://localhost:631/printers/kiosk`, the default: CUPS converts the PDF for a driverless IPP
Everywhere printer, `lpadmin -p kiosk -v <uri> -m everywhere`, or a USB one through ipp-usb) or to
an IPP Everywhere printer that takes PDF itself.

Why IPP and not `lp`: `lp` only queues a job; what became of it (out of paper, jammed, offline,
aborted) is then only in `lpstat`'s localised text. IPP answers in keywords: printer-state and
printer-state-reasons before the job, job-state after it. pycups would do the same but has no
wheels. The subset here is small: Get-Printer-Attributes, Print-Job, Get-Job-Attributes, Cancel-Job,
with the attributes they need; a printer's answer is read with bounds (size, counts) and anything
unexpected is a PrinterError, never a crash.

The job is named "kiosk" whatever the document is called: a printer's or CUPS's job history keeps
job names, and a citizen's letter's title is not for the next visitor (README: set CUPS's
PreserveJobFiles and PreserveJobHistory to No on a kiosk).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..core.printing import PrinterError

log = logging.getLogger(__name__)

PRINT_JOB, CANCEL_JOB, GET_JOB_ATTRIBUTES, GET_PRINTER_ATTRIBUTES = 0x0002, 0x0008, 0x0009, 0x000B
TAG_OPERATION, TAG_JOB, TAG_END, TAG_PRINTER = 0x01, 0x02, 0x03, 0x04
INTEGER, BOOLEAN, ENUM = 0x21, 0x22, 0x23
TEXT, NAME, KEYWORD, URI, CHARSET, LANGUAGE, MIME = 0x41, 0x42, 0x44, 0x45, 0x47, 0x48, 0x49
PRINTER_STOPPED = 5
JOB_CANCELED, JOB_ABORTED, JOB_COMPLETED = 7, 8, 9
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_ATTRIBUTES = 2000
JOB_NAME = "kiosk"
# printer-state-reasons (without their -report/-warning/-error suffix) → the kiosk's error codes.
REASONS = {
    "media-empty": "out_of_paper",
    "media-needed": "out_of_paper",
    "media-jam": "paper_jam",
    "toner-empty": "out_of_ink",
    "marker-supply-empty": "out_of_ink",
    "cover-open": "cover_open",
    "door-open": "cover_open",
    "input-tray-missing": "out_of_paper",
    "offline": "printer_offline",
    "shutdown": "printer_offline",
    "connecting-to-device": "printer_offline",
    "paused": "printer_stopped",
}


@dataclass(slots=True)
class IppResponse:
    status: int
    groups: list[tuple[int, dict[str, list[object]]]] = field(default_factory=list)

    def first(self, group: int, name: str) -> object | None:
        for tag, attributes in self.groups:
            if tag == group and name in attributes and attributes[name]:
                return attributes[name][0]
        return None

    def all(self, group: int, name: str) -> list[object]:
        for tag, attributes in self.groups:
            if tag == group and name in attributes:
                return attributes[name]
        return []


class IppFormatError(ValueError):
    pass


def attribute(tag: int, name: str, *values: bytes) -> bytes:
    out = b""
    for i, value in enumerate(values):
        label = name.encode() if i == 0 else b""
        out += struct.pack(">BH", tag, len(label)) + label + struct.pack(">H", len(value)) + value
    return out


def _int(value: int) -> bytes:
    return struct.pack(">i", value)


def encode_request(operation: int, request_id: int, attributes: list[bytes], data: bytes = b"") -> bytes:
    head = struct.pack(">BBHI", 1, 1, operation, request_id)  # IPP/1.1: every printer speaks it
    body = bytes([TAG_OPERATION]) + b"".join(attributes) + bytes([TAG_END])
    return head + body + data


def decode_response(raw: bytes) -> IppResponse:
    """An IPP response, bounded: strings are decoded leniently, integers as integers, collections and
    other values kept as raw bytes. IppFormatError if it is not IPP."""
    if len(raw) < 9:
        raise IppFormatError("too short for IPP")
    _major, _minor, status, _request = struct.unpack(">BBHI", raw[:8])
    response = IppResponse(status)
    position, count, last = 8, 0, ""
    current: dict[str, list[object]] | None = None
    while position < len(raw):
        tag = raw[position]
        position += 1
        if tag == TAG_END:
            return response
        if tag < 0x10:  # a new attribute group
            current = {}
            response.groups.append((tag, current))
            continue
        if current is None or position + 2 > len(raw):
            raise IppFormatError("an attribute outside any group")
        (name_length,) = struct.unpack(">H", raw[position : position + 2])
        position += 2
        name = raw[position : position + name_length].decode("utf-8", "replace")
        position += name_length
        if position + 2 > len(raw):
            raise IppFormatError("truncated attribute")
        (value_length,) = struct.unpack(">H", raw[position : position + 2])
        position += 2
        value_bytes = raw[position : position + value_length]
        if len(value_bytes) != value_length:
            raise IppFormatError("truncated value")
        position += value_length
        count += 1
        if count > MAX_ATTRIBUTES:
            raise IppFormatError("too many attributes")
        value: object
        if tag in (INTEGER, ENUM) and value_length == 4:
            value = struct.unpack(">i", value_bytes)[0]
        elif tag == BOOLEAN and value_length == 1:
            value = value_bytes != b"\x00"
        elif 0x40 <= tag <= 0x4F:
            value = value_bytes.decode("utf-8", "replace")
        else:
            value = value_bytes
        if name:
            last = name
            current.setdefault(name, []).append(value)
        elif last:  # another value of the same attribute (or a collection's member: kept as values)
            current.setdefault(last, []).append(value)
    raise IppFormatError("no end-of-attributes tag")


def http_url(printer_uri: str) -> str:
    parts = urlsplit(printer_uri)
    if parts.scheme not in ("ipp", "ipps", "http", "https") or not parts.hostname:
        raise ValueError(f"not an IPP printer URI: {printer_uri!r}")
    scheme = {"ipp": "http", "ipps": "https"}.get(parts.scheme, parts.scheme)
    netloc = parts.netloc if parts.port or parts.scheme in ("http", "https") else f"{parts.netloc}:631"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def reason_code(reasons: list[object], *, include_reports: bool) -> str | None:
    """The kiosk's code for the first printer-state-reason it knows. A reason's -report suffix marks
    it as information only (RFC 8011 5.4.12): those count only to explain a job that already failed.
    A -warning one counts: a printer that waits for paper says "media-empty-warning" while the job
    stays "processing" for ever (ippeveprinter does the same)."""
    for reason in reasons:
        if not isinstance(reason, str):
            continue
        keyword = reason
        for suffix in ("-error", "-warning", "-report"):
            if reason.endswith(suffix):
                keyword = reason.removesuffix(suffix)
                if suffix == "-report" and not include_reports:
                    keyword = ""
                break
        if keyword in REASONS:
            return REASONS[keyword]
    return None


class IppPrinter:
    def __init__(
        self,
        printer_uri: str,
        *,
        timeout_s: float = 10.0,
        job_timeout_s: float = 180.0,
        poll_s: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.uri = printer_uri
        self._url = http_url(printer_uri)
        self._timeout_s = timeout_s
        self._job_timeout_s = job_timeout_s
        self._poll_s = poll_s
        self._transport = transport
        self._request_id = 0

    def _operation(self, *extra: bytes) -> list[bytes]:
        return [
            attribute(CHARSET, "attributes-charset", b"utf-8"),
            attribute(LANGUAGE, "attributes-natural-language", b"fr"),
            attribute(URI, "printer-uri", self.uri.encode()),
            *extra,
        ]

    async def _call(
        self, client: httpx.AsyncClient, operation: int, attrs: list[bytes], data: bytes = b""
    ) -> IppResponse:
        self._request_id += 1
        body = encode_request(operation, self._request_id, attrs, data)
        try:
            async with client.stream(
                "POST", self._url, content=body, headers={"Content-Type": "application/ipp"}
            ) as answer:
                if answer.status_code == 404:
                    raise PrinterError("no_printer", f"no printer at {self.uri}")
                if answer.status_code != 200:
                    raise PrinterError("printer_offline", f"the printer answered HTTP {answer.status_code}")
                raw = b""
                async for piece in answer.aiter_bytes():
                    raw += piece
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise PrinterError("job_failed", "the printer's answer is too large")
        except httpx.TimeoutException:
            raise PrinterError("printer_offline", "the printer did not answer in time") from None
        except httpx.HTTPError as exc:
            raise PrinterError(
                "printer_offline", f"the printer cannot be reached: {type(exc).__name__}"
            ) from None
        try:
            return decode_response(raw)
        except IppFormatError as exc:
            raise PrinterError("job_failed", f"the printer's answer is not IPP: {exc}") from None

    async def _printer_state(
        self, client: httpx.AsyncClient
    ) -> tuple[int | None, list[object], bool, list[object]]:
        answer = await self._call(
            client,
            GET_PRINTER_ATTRIBUTES,
            self._operation(
                attribute(
                    KEYWORD,
                    "requested-attributes",
                    b"printer-state",
                    b"printer-state-reasons",
                    b"printer-is-accepting-jobs",
                    b"document-format-supported",
                )
            ),
        )
        if answer.status == 0x0406:
            raise PrinterError("no_printer", f"no printer at {self.uri}")
        if answer.status >= 0x0100:
            raise PrinterError(
                "printer_offline", f"the printer refused to describe itself (0x{answer.status:04x})"
            )
        state = answer.first(TAG_PRINTER, "printer-state")
        accepting = answer.first(TAG_PRINTER, "printer-is-accepting-jobs")
        return (
            state if isinstance(state, int) else None,
            answer.all(TAG_PRINTER, "printer-state-reasons"),
            accepting is not False,
            answer.all(TAG_PRINTER, "document-format-supported"),
        )

    async def check(self) -> None:
        """For the technician's self-test: returns if the printer would take a job now; PrinterError
        (with the citizen's code) otherwise."""
        async with httpx.AsyncClient(
            timeout=self._timeout_s, transport=self._transport, trust_env=False
        ) as client:
            state, reasons, accepting, _ = await self._printer_state(client)
        blocking = reason_code(reasons, include_reports=False)
        if state == PRINTER_STOPPED or not accepting or blocking is not None:
            raise PrinterError(blocking or "printer_stopped", f"the printer reports {reasons}")

    async def print_pdf(self, data: bytes, on_progress: Callable[[str], None]) -> None:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout_s, write=max(self._timeout_s, 60.0)),
            transport=self._transport,
            trust_env=False,
        ) as client:
            state, reasons, accepting, formats = await self._printer_state(client)
            blocking = reason_code(reasons, include_reports=False)
            if state == PRINTER_STOPPED or not accepting:
                raise PrinterError(blocking or "printer_stopped", f"the printer is stopped ({reasons})")
            if blocking is not None:
                raise PrinterError(blocking, f"the printer reports {reasons}")
            if formats and "application/pdf" not in formats and "application/octet-stream" not in formats:
                raise PrinterError("format_unsupported", "the printer does not take PDF (use the CUPS queue)")
            answer = await self._call(
                client,
                PRINT_JOB,
                self._operation(
                    attribute(NAME, "requesting-user-name", b"kiosk"),
                    attribute(NAME, "job-name", JOB_NAME.encode()),
                    attribute(MIME, "document-format", b"application/pdf"),
                ),
                data,
            )
            if answer.status >= 0x0100:
                code = "format_unsupported" if answer.status == 0x040A else "job_failed"
                raise PrinterError(code, f"the printer refused the job (0x{answer.status:04x})")
            job_id = answer.first(TAG_JOB, "job-id")
            if not isinstance(job_id, int):
                raise PrinterError("job_failed", "the printer gave no job id")
            on_progress("sent")
            try:
                await self._follow(client, job_id)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._cancel(client, job_id))
                raise

    async def _follow(self, client: httpx.AsyncClient, job_id: int) -> None:
        deadline = time.monotonic() + self._job_timeout_s
        while True:
            answer = await self._call(
                client,
                GET_JOB_ATTRIBUTES,
                self._operation(
                    attribute(INTEGER, "job-id", _int(job_id)),
                    attribute(KEYWORD, "requested-attributes", b"job-state", b"job-state-reasons"),
                ),
            )
            job_state = answer.first(TAG_JOB, "job-state")
            if answer.status >= 0x0100 or not isinstance(job_state, int):
                raise PrinterError("job_failed", f"the printer lost the job (0x{answer.status:04x})")
            if job_state == JOB_COMPLETED:
                return
            if job_state in (JOB_CANCELED, JOB_ABORTED):
                _, reasons, _, _ = await self._printer_state(client)
                code = reason_code(reasons, include_reports=True) or "job_failed"
                raise PrinterError(
                    code, f"the job ended {'aborted' if job_state == JOB_ABORTED else 'canceled'} ({reasons})"
                )
            # Pending or processing: a printer stopped on an error will not finish it by itself.
            state, reasons, _, _ = await self._printer_state(client)
            blocking = reason_code(reasons, include_reports=False)
            if state == PRINTER_STOPPED or blocking is not None:
                await self._cancel(client, job_id)
                raise PrinterError(blocking or "printer_stopped", f"the printer stopped ({reasons})")
            if time.monotonic() > deadline:
                await self._cancel(client, job_id)
                raise PrinterError("print_timeout", "the printer did not finish the job in time")
            await asyncio.sleep(self._poll_s)

    async def _cancel(self, client: httpx.AsyncClient, job_id: int) -> None:
        """Nothing of the citizen's document waits in a printer's queue for the next visitor."""
        try:
            await self._call(
                client,
                CANCEL_JOB,
                self._operation(
                    attribute(INTEGER, "job-id", _int(job_id)),
                    attribute(NAME, "requesting-user-name", b"kiosk"),
                ),
            )
        except PrinterError as exc:
            log.warning("printing: the job could not be cancelled: %s", exc)
