"""What a scan asks for and what it gives back: plain data, no imaging library."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class ScanSource(Enum):
    FLATBED = "flatbed"
    FEEDER = "feeder"
    DUPLEX = "duplex"
    CAMERA = "camera"  # no scanner: the page held up to the kiosk's camera


@dataclass(frozen=True, slots=True)
class ScanRequest:
    source: ScanSource = ScanSource.FLATBED
    dpi: int = 300
    colour: bool = True
    device: str | None = None  # None: the configured one, else the first found

    def __post_init__(self) -> None:
        if not 75 <= self.dpi <= 1200:
            raise ValueError(f"dpi must be within 75..1200, not {self.dpi}")


@dataclass(frozen=True, slots=True)
class ScannerInfo:
    id: str  # the driver's name for it, e.g. "test:0" or "genesys:libusb:001:004"
    label: str  # vendor and model, for people
    sources: tuple[ScanSource, ...]


@dataclass(frozen=True, slots=True)
class RawPage:
    """One scanned side, 8 bits per sample, rows top to bottom, channels RGB when 3."""

    width: int
    height: int
    channels: int  # 1 (gray) or 3 (RGB)
    dpi: int
    pixels: bytes = b""

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError("a page has 1 or 3 channels")
        if len(self.pixels) != self.width * self.height * self.channels:
            raise ValueError("pixel data does not match the page's size")

    def __repr__(self) -> str:  # never dump the citizen's page into a log
        return f"RawPage({self.width}x{self.height}x{self.channels} @ {self.dpi} dpi)"


@dataclass(frozen=True, slots=True)
class ProcessedPage:
    """A page ready for the PDF: cropped, straightened, encoded."""

    encoding: str  # "bilevel" (CCITT G4), "gray" (JPEG) or "colour" (JPEG)
    width: int  # pixels of `data`
    height: int
    dpi: int
    data: bytes  # the image stream as it goes into the PDF
    preview: bytes  # a JPEG for the screen

    def __repr__(self) -> str:
        return (
            f"ProcessedPage({self.encoding} {self.width}x{self.height} @ {self.dpi} dpi, {len(self.data)} B)"
        )


class PageProcessor(Protocol):
    def process(self, page: RawPage) -> ProcessedPage | None:
        """The page ready for the PDF, or None for a blank side. CPU-heavy: call it off the loop."""
        ...

    def assemble(self, pages: list[ProcessedPage], title: str) -> bytes:
        """One PDF of the pages, in order."""
        ...


class PageSink(Protocol):
    def __call__(self, page: RawPage) -> None: ...


class ScannerPort(Protocol):
    async def devices(self) -> list[ScannerInfo]:
        """The scanners attached now (looked up again on every call: one may be plugged in later)."""
        ...

    async def scan(self, request: ScanRequest, on_page: PageSink) -> int:
        """Scans, handing each page over as soon as it is complete; returns the number of pages.
        Raises ScannerError (pages already handed over stay valid)."""
        ...
