"""What the printing tests share: small real PDFs, and CUPS's `ippeveprinter` as the kiosk's printer.

ippeveprinter (Debian cups-ipp-utils) is a real IPP Everywhere printer that prints nothing: with -k
it keeps each job's file in its spool folder, so a test reads back the bytes the printer received.
With -c it runs a command per job; its exit status decides whether the job completes or aborts, and
"STATE: +reason" lines on its stderr set printer-state-reasons, as a real printer reports.
It insists on DNS-SD even with advertising off (-r off): its Avahi client needs a D-Bus *system* bus
to exist, so the rig starts a private dbus-daemon and points DBUS_SYSTEM_BUS_ADDRESS at it (no Avahi
daemon: the client waits for one that never comes, which is all ippeveprinter needs). It also binds
IPv6 as well as IPv4, on every address (it cannot be told to bind only loopback without a hostname
that resolves to both): the port is a random high one and the printer lives only as long as the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NEEDED = ("ippeveprinter", "dbus-daemon", "pdftoppm", "pdfinfo", "prlimit")


def tools_missing() -> list[str]:
    return [tool for tool in NEEDED if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]


def require_tools() -> None:
    """The tools are Debian packages that scripts/bootstrap.sh installs: their absence is a broken
    set-up, not a reason to skip (a skipped test would hide it)."""
    missing = tools_missing()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/bootstrap.sh (cups-ipp-utils, poppler-utils)")


def _escape(text: str) -> bytes:
    return text.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(pages: list[list[str]], *, compress: bool = True, padding: int = 0) -> bytes:
    """A real PDF, A4, one page per list of lines (Helvetica, WinAnsi: French accents print);
    `padding` bytes of comment lines make it as large as a test needs (many chunks)."""
    objects: list[bytes] = []
    count = len(pages)
    font_id = 3 + 2 * count
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    for i, lines in enumerate(pages):
        stream = b"BT /F1 22 Tf 60 770 Td 30 TL "
        for line in lines:
            stream += b"(" + _escape(line) + b") Tj T* "
        stream += b"ET 0.2 w 40 40 515 762 re S"
        body = zlib.compress(stream) if compress else stream
        flate = b" /Filter /FlateDecode" if compress else b""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 {font_id} 0 R >> >>"
            f" /Contents {4 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d%s >>\nstream\n" % (len(body), flate) + body + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + (b"%" + b"-" * 78 + b"\n") * (padding // 80)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


LETTER = [
    ["Caisse d'allocations familiales", "", "Attestation de paiement", "", "Madame, Monsieur,",
     "nous certifions que vous percevez", "l'aide personnalisée au logement.", "", "Fait à Guéret."],
    ["Page 2 sur 2", "", "Conservez ce document :", "il vous sera demandé."],
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StandInPrinter:
    uri: str
    spool: Path
    process: subprocess.Popen[bytes]

    def jobs(self) -> list[Path]:
        """The documents it received (kept with -k), oldest first."""
        return sorted(self.spool.glob("*.pdf"), key=lambda p: int(p.name.split("-", 1)[0]))


@contextlib.contextmanager
def system_bus() -> Iterator[str]:
    # Its socket lives in a short folder of its own: a Unix socket's path is at most 107 bytes, and a
    # pytest-xdist worker's tmp_path alone comes close (the bus then never starts).
    with tempfile.TemporaryDirectory(prefix="kbus-", dir="/tmp") as short:
        yield from _bus(short)


def _bus(folder: str) -> Iterator[str]:
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1", f"--address=unix:dir={folder}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()  # printed once it listens
        assert address.startswith("unix:"), "dbus-daemon did not start"
        yield address
    finally:
        bus.kill()
        bus.wait()


@contextlib.contextmanager
def stand_in_printer(tmp_path: Path, *, job_command: str = "/bin/true") -> Iterator[StandInPrinter]:
    """ippeveprinter on a free port, taking PDF, keeping each job's file; `job_command` runs per job."""
    require_tools()
    spool = tmp_path / "printer-spool"
    spool.mkdir()
    run = tmp_path / "printer-run"
    run.mkdir()
    port = free_port()
    binary = shutil.which("ippeveprinter") or "/usr/sbin/ippeveprinter"
    with system_bus() as bus:
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus}
        log = (run / "ippeveprinter.log").open("wb")
        process = subprocess.Popen(
            [binary, "-r", "off", "-p", str(port), "-d", str(spool), "-k", "-f", "application/pdf",
             "-c", job_command, "Kiosk-Test-Printer"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:  # ready once it accepts connections (it prints nothing when it is)
                if process.poll() is not None:
                    said = (run / "ippeveprinter.log").read_text(errors="replace")
                    hint = " (it needs IPv6 on loopback: ::1)" if "IPv6" in said else ""
                    pytest.fail(f"ippeveprinter stopped{hint}: {said[-500:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "ippeveprinter did not start"
                    time.sleep(0.02)
            yield StandInPrinter(f"ipp://127.0.0.1:{port}/ipp/print", spool, process)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
