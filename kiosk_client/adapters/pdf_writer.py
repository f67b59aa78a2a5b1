"""A small PDF writer for scanned pages: one image per A4 page, as the page encoder made it (CCITT G4
for bilevel, JPEG for gray and colour), fitted to the page at its true size when it fits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..core.scanning import ProcessedPage

A4_PT = (595.28, 841.89)
MM_PER_INCH = 25.4


def _image_dict(page: ProcessedPage) -> bytes:
    if page.encoding == "bilevel":
        return (
            b"/ColorSpace /DeviceGray /BitsPerComponent 1 /Filter [/CCITTFaxDecode] "
            b"/DecodeParms [<< /K -1 /BlackIs1 true /Columns %d /Rows %d >>]" % (page.width, page.height)
        )
    space = b"/DeviceRGB" if page.encoding == "colour" else b"/DeviceGray"
    return b"/ColorSpace " + space + b" /BitsPerComponent 8 /Filter /DCTDecode"


def _placement(page: ProcessedPage) -> tuple[float, float, float, float]:
    """x, y, width, height in points: the scan's physical size, shrunk to fit A4 if larger."""
    width = page.width / page.dpi * 72
    height = page.height / page.dpi * 72
    scale = min(1.0, A4_PT[0] / width, A4_PT[1] / height)
    width, height = width * scale, height * scale
    return (A4_PT[0] - width) / 2, (A4_PT[1] - height) / 2, width, height


def build_pdf(pages: Sequence[ProcessedPage], title: str = "Document") -> bytes:
    if not pages:
        raise ValueError("a document has at least one page")
    objects: list[bytes] = []  # objects[i] is object number i + 1

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    tree = add(b"")
    kids: list[int] = []
    for page in pages:
        image = add(
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d %s /Length %d >>\nstream\n"
            % (page.width, page.height, _image_dict(page), len(page.data))
            + page.data
            + b"\nendstream"
        )
        x, y, w, h = _placement(page)
        drawing = b"q %.2f 0 0 %.2f %.2f %.2f cm /Im0 Do Q" % (w, h, x, y)
        contents = add(b"<< /Length %d >>\nstream\n" % len(drawing) + drawing + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R "
                b"/Resources << /XObject << /Im0 %d 0 R >> >> >>" % (tree, *A4_PT, contents, image)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    stamp = datetime.now(UTC).strftime("D:%Y%m%d%H%M%SZ").encode()
    safe_title = title.encode("ascii", "replace").replace(b"\\", b"").replace(b"(", b"").replace(b")", b"")
    info = add(b"<< /Title (%s) /Producer (kiosk-client) /CreationDate (%s) >>" % (safe_title[:120], stamp))

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        catalog,
        info,
        xref,
    )
    return bytes(out)
