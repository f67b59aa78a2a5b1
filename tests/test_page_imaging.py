"""Scanned pages: found, straightened, blank sides dropped, encoded per page, assembled as an A4 PDF
that PDFium (Chromium's PDF engine) renders legibly at 100 % zoom."""

from __future__ import annotations

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont

from kiosk_client.adapters import page_imaging as imaging
from kiosk_client.adapters.page_imaging import gray_of
from kiosk_client.adapters.pdf_writer import A4_PT, build_pdf
from kiosk_client.core.scanning import RawPage
from kiosk_client.tools.sample_pages import (
    A4_300,
    LINES,
    blank_page,
    on_scanner_bed,
    photo_page,
    skewed,
    text_page,
)

TEXT_PAGE_BUDGET = 150 * 1024


def render_at_100_percent(pdf: bytes) -> list[np.ndarray]:
    document = pdfium.PdfDocument(pdf)
    pages = []
    for page in document:
        assert page.get_size() == pytest.approx(A4_PT, abs=0.5)
        pages.append(cv2.cvtColor(page.render(scale=96 / 72).to_numpy(), cv2.COLOR_BGR2GRAY))
    return pages


def ink_overlap(rendered: np.ndarray, truth_300dpi: np.ndarray) -> float:
    truth = cv2.resize(truth_300dpi, rendered.shape[::-1], interpolation=cv2.INTER_AREA)
    a, b = rendered < 160, truth < 160
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_typical_text_page_is_bilevel_light_and_legible_at_100_percent() -> None:
    page = imaging.process_image(text_page(), 300)
    assert page is not None and page.encoding == "bilevel"
    assert len(page.data) <= TEXT_PAGE_BUDGET
    (rendered,) = render_at_100_percent(build_pdf([page]))
    clean = np.where(text_page(ink=0, paper=255) > 128, 255, 0).astype(np.uint8)
    assert ink_overlap(rendered, clean) > 0.9  # the letters where the letters are, and only there
    assert rendered.mean() > 230  # white paper, black ink (not inverted)


def test_a_blank_side_is_dropped_but_a_pale_one_is_kept() -> None:
    assert imaging.process_image(blank_page(), 300) is None
    pale = imaging.process_image(text_page(ink=185), 300)  # faded print, ~25 % contrast
    assert pale is not None and pale.encoding == "gray"
    assert len(pale.data) <= TEXT_PAGE_BUDGET
    (rendered,) = render_at_100_percent(build_pdf([pale]))
    assert rendered.min() < 215  # the faint print is still there, darker than the paper


def test_a_photo_is_colour_jpeg_and_not_mistaken_for_blank_or_for_a_sheet_on_a_bed() -> None:
    page = imaging.process_image(photo_page(), 300)
    assert page is not None and page.encoding == "colour"
    assert (page.width, page.height) == (1240, 1754)  # whole page kept, at 150 dpi
    assert page.data[:2] == b"\xff\xd8"


@pytest.mark.parametrize("degrees", [-4.0, 2.5])
def test_a_skewed_page_is_straightened(degrees: float) -> None:
    image = skewed(text_page(), degrees)
    assert imaging.estimate_skew(image) == pytest.approx(degrees, abs=0.3)
    prepared = imaging.prepare(image, 300)
    assert prepared is not None
    assert abs(imaging.estimate_skew(prepared)) <= 0.3


def capitals_page() -> np.ndarray:
    """Text in capitals only: no x-height band, no ascenders or descenders to go by."""
    image = Image.new("L", A4_300, 242)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=46)
    for i, line in enumerate(LINES * 3):
        draw.text((220, 250 + 60 * i), line.upper(), fill=20, font=font)
    return np.asarray(image)


@pytest.mark.parametrize(("ink", "degrees"), [(20, 0.0), (150, 0.0), (20, 2.5)])
def test_a_page_of_text_upside_down_comes_out_upright(ink: int, degrees: float) -> None:
    upright = text_page(ink=ink)
    turned = cv2.rotate(skewed(upright, degrees), cv2.ROTATE_180)
    prepared = imaging.prepare(turned, 300)
    same_page = imaging.prepare(upright, 300)
    assert prepared is not None and same_page is not None
    a, b = imaging.ink_mask(gray_of(prepared)) > 0, imaging.ink_mask(gray_of(same_page)) > 0
    assert (a & b).sum() / (a | b).sum() > 0.5  # the same letters in the same places


def test_upright_pages_are_never_turned() -> None:
    # A page in capitals goes by its accents (above) against its commas (below).
    for image in (text_page(seed=5), text_page(ink=150), text_page(seed=7, lines=4), capitals_page()):
        assert imaging.upside_down(image) is False


def test_pages_without_lines_of_text_are_left_as_they_are() -> None:
    for image in (gray_of(photo_page()), blank_page()):
        for candidate in (image, cv2.rotate(image, cv2.ROTATE_180)):
            assert imaging.upside_down(candidate) is False


def test_a_sheet_on_the_scanner_bed_is_cropped_to_the_sheet_and_turned_upright() -> None:
    sheet = text_page()
    prepared = imaging.prepare(on_scanner_bed(sheet, degrees=4.0), 300)
    assert prepared is not None
    height, width = prepared.shape[:2]
    assert width == pytest.approx(sheet.shape[1], rel=0.02)
    assert height == pytest.approx(sheet.shape[0], rel=0.02)
    assert abs(imaging.estimate_skew(prepared)) <= 0.3


def test_a_page_held_to_the_camera_is_found_and_flattened() -> None:
    frame = np.full((720, 1280, 3), 70, np.uint8)  # a desk, seen by the kiosk's camera
    sheet = cv2.cvtColor(cv2.resize(text_page(), (420, 594)), cv2.COLOR_GRAY2RGB)
    corners = np.array([[0, 0], [419, 0], [419, 593], [0, 593]], np.float32)
    held = np.array([[440, 70], [850, 95], [870, 690], [420, 660]], np.float32)  # tilted towards us
    warp = cv2.getPerspectiveTransform(corners, held)
    cv2.warpPerspective(sheet, warp, (1280, 720), frame, borderMode=cv2.BORDER_TRANSPARENT)
    found = imaging.find_page(imaging.gray_of(frame))
    assert found is not None
    flat = imaging.straighten(frame, found)
    assert flat.shape[0] / flat.shape[1] == pytest.approx(297 / 210, rel=0.08)


def test_a_multi_page_document_is_one_a4_pdf_with_a_page_each() -> None:
    pages = [imaging.process_image(img, 300) for img in (text_page(seed=4), photo_page(), text_page(ink=185))]
    pdf = build_pdf([p for p in pages if p is not None], title="Justificatif (domicile)")
    rendered = render_at_100_percent(pdf)
    assert len(rendered) == 3
    assert len(pdf) < 3 * TEXT_PAGE_BUDGET


def test_a_raw_gray_page_from_the_scanner_goes_through() -> None:
    image = text_page()
    raw = RawPage(image.shape[1], image.shape[0], 1, 300, image.tobytes())
    page = imaging.process_page(raw)
    assert page is not None and page.encoding == "bilevel"
    assert repr(raw) == "RawPage(2480x3508x1 @ 300 dpi)"  # never the pixels in a log


def test_an_empty_document_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        build_pdf([])
