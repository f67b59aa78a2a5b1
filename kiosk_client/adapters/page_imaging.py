"""Scanned pages made light and legible (opencv): find the page, straighten it, turn it upright,
drop blank sides, and pick an encoding per page — text as bilevel (CCITT G4), text with shading as
grayscale JPEG, photos and colour as colour JPEG."""

from __future__ import annotations

import io
import logging
from typing import Any

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin

from ..core.scanning import ProcessedPage, RawPage

log = logging.getLogger(__name__)

Array = np.ndarray[Any, np.dtype[Any]]

A4_MM = (210.0, 297.0)
WORK_PX = 1000  # analysis runs on a copy about this tall
JPEG_DPI = 150  # greyscale and colour pages are sent at this resolution (bilevel keeps the scan's)
PREVIEW_PX = 1200  # the height of the picture the citizen checks on screen


def to_array(page: RawPage) -> Array:
    """RGB or gray uint8 array of a raw page."""
    flat = np.frombuffer(page.pixels, dtype=np.uint8)
    if page.channels == 3:
        return flat.reshape(page.height, page.width, 3)
    return flat.reshape(page.height, page.width)


def gray_of(image: Array) -> Array:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _small(gray: Array, longest: int = WORK_PX) -> tuple[Array, float]:
    scale = min(1.0, longest / max(gray.shape))
    if scale == 1.0:
        return gray, 1.0
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def paper_of(gray: Array, size: int = 31) -> Array:
    """The paper's own brightness around each pixel (ink removed by a dilation, then smoothed), so
    tinted paper and uneven light can be divided out."""
    paper: Array = cv2.medianBlur(cv2.dilate(gray, np.ones((7, 7), np.uint8)), size)
    return paper


def ink_mask(gray: Array) -> Array:
    """Pixels clearly darker than the paper around them (paper tint and uneven lighting removed)."""
    background = paper_of(gray, 21)
    ratio = gray.astype(np.float32) / np.maximum(background.astype(np.float32), 1.0)
    mask = (ratio < 0.82).astype(np.uint8)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))  # scanner speckle out


def is_blank(image: Array) -> bool:
    """A side with nothing on it. Pale print (a faded receipt, pencil) is not blank: it is measured
    against the paper around it, not against black."""
    small, _ = _small(gray_of(image))
    h, w = small.shape
    inner = small[int(h * 0.04) : int(h * 0.96), int(w * 0.04) : int(w * 0.96)]  # edges: shadows
    if float(np.std(cv2.GaussianBlur(inner, (0, 0), 5))) > 12:
        return False  # broad shades: a photo, a coloured form
    mask = ink_mask(inner)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    marks = sum(1 for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 4)
    return marks < 3 and float(mask.mean()) < 0.0005


def find_page(gray: Array) -> Array | None:
    """The four corners (full-size coordinates) of a sheet lying on a darker background, or None
    when the sheet fills the scan (a feeder) or cannot be told apart."""
    small, scale = _small(gray)
    blurred = cv2.GaussianBlur(small, (5, 5), 0)
    _, bright = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    area = small.shape[0] * small.shape[1]
    contour = max(contours, key=cv2.contourArea)
    found = cv2.contourArea(contour)
    if not 0.15 * area <= found <= 0.97 * area:
        return None
    inside = np.zeros_like(small)
    cv2.drawContours(inside, [contour], -1, 255, thickness=cv2.FILLED)
    outside = small[cv2.erode(255 - inside, np.ones((15, 15), np.uint8)) > 0]
    if outside.size == 0 or float(outside.std()) > 30 or outside.mean() > small[inside > 0].mean() - 40:
        return None  # no plain, darker bed around it: the bright shape is part of the page itself
    quad = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
    if len(quad) != 4 or not cv2.isContourConvex(quad):
        rect = cv2.minAreaRect(contour)
        quad = cv2.boxPoints(rect).reshape(-1, 1, 2)
    corners: Array = quad.reshape(4, 2).astype(np.float32) / scale
    return corners


def _order(corners: Array) -> Array:
    """top-left, top-right, bottom-right, bottom-left."""
    s = corners.sum(axis=1)
    d = np.diff(corners, axis=1).ravel()
    return np.array(
        [corners[np.argmin(s)], corners[np.argmin(d)], corners[np.argmax(s)], corners[np.argmax(d)]],
        dtype=np.float32,
    )


def straighten(image: Array, corners: Array) -> Array:
    tl, tr, br, bl = _order(corners)
    width = int(np.rint(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))))
    height = int(np.rint(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(np.array([tl, tr, br, bl]), target)
    border = (255, 255, 255) if image.ndim == 3 else 255
    warped: Array = cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_AREA, borderValue=border
    )
    return warped


def estimate_skew(gray: Array) -> float:
    """The text's angle in degrees (positive: counter-clockwise), from the rotation that makes the
    rows of ink sharpest; 0 when there is too little ink to tell."""
    small, _ = _small(gray)
    mask = ink_mask(small).astype(np.float32)
    if mask.mean() < 0.002:
        return 0.0
    h, w = mask.shape
    centre = (w / 2, h / 2)

    def sharpness(angle: float) -> float:
        rotated = cv2.warpAffine(mask, cv2.getRotationMatrix2D(centre, angle, 1.0), (w, h))
        return float(np.var(rotated.sum(axis=1)))

    coarse = max(np.arange(-6.0, 6.01, 0.5), key=sharpness)
    fine = max(np.arange(coarse - 0.5, coarse + 0.51, 0.1), key=sharpness)
    return -float(round(fine, 2))


ORIENTATION_PX = 1400  # x-height bands need a few pixels: the skew's 1000 px copy is too coarse
ORIENTATION_MARGIN = 1.5  # how much more ink below the lines than above before turning a page


def upside_down(gray: Array) -> bool:
    """True for a page of text upside down (a driver that returns duplex backs turned, a sheet laid
    the wrong way). Latin text has more ascenders (b, d, l, capitals, accents) than descenders (g, p,
    q, y): on an upright line the ink just above the x-height band outweighs the ink just below it.
    Only a clear verdict turns a page; photos, capitals, tables and few lines stay as they are."""
    small, _ = _small(gray, ORIENTATION_PX)
    # A coarser ink mask than ink_mask's (a box blur for its median) is as good here at a fifth of
    # the time: only the rows' totals count.
    paper = cv2.blur(cv2.dilate(small, np.ones((7, 7), np.uint8)), (41, 41))
    profile = (small.astype(np.float32) < 0.82 * paper).sum(axis=1).astype(np.float64)
    if not profile.any():
        return False
    # The x-height bands: the densest rows of each line.
    band = profile >= 0.5 * np.percentile(profile[profile > 0], 90)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], band.astype(np.int8), [0]))))
    above = below = 0.0
    lines = 0
    for top, bottom in zip(edges[::2], edges[1::2], strict=True):
        height = bottom - top
        if height < 3:
            continue  # a rule or a speck, not a line of text
        reach = max(2, round(height * 0.6))
        above += float(profile[max(0, top - reach) : top].sum())
        below += float(profile[bottom : bottom + reach].sum())
        lines += 1
    return lines >= 3 and below > ORIENTATION_MARGIN * max(above, 1.0)


def rotate(image: Array, angle: float) -> Array:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    border = (255, 255, 255) if image.ndim == 3 else 255
    rotated: Array = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)
    return rotated


def classify(image: Array) -> str:
    """ "bilevel" for text in black on paper, "gray" for text with shading, stamps or faint print,
    "colour" for photos and coloured documents."""
    half = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    if half.ndim == 3:
        hsv = cv2.cvtColor(half, cv2.COLOR_RGB2HSV)
        coloured = (hsv[..., 1] > 60) & (hsv[..., 2] > 60)
        if coloured.mean() > 0.02:
            return "colour"
    gray = gray_of(half)
    background = paper_of(gray)
    relative = gray.astype(np.float32) / np.maximum(background.astype(np.float32), 1.0)
    ink = (relative < 0.55).astype(np.uint8)
    # Mid-tones hugging ink are the edges of letters; mid-tones away from ink are shading or a photo.
    near_ink = cv2.dilate(ink, np.ones((5, 5), np.uint8)).astype(bool)
    mid = (relative >= 0.55) & (relative < 0.85) & ~near_ink
    flat_gray = float(np.std(cv2.GaussianBlur(gray, (0, 0), 8))) > 25 and ink.mean() < 0.01
    if mid.mean() > 0.01 or flat_gray:
        return "gray"
    return "bilevel"


def binarise(gray: Array) -> Array:
    """Black text on white, robust to tinted paper and uneven lighting (uint8 0/255)."""
    background = paper_of(gray)
    normalised = cv2.divide(gray, background, scale=255)
    otsu, _ = cv2.threshold(normalised, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # On a nearly empty page Otsu can cut into the paper's grain: never above 80 % of the paper.
    cut = min(otsu, 205.0)
    out: Array = np.where(normalised > cut, 255, 0).astype(np.uint8)
    return out


def whitened(gray: Array) -> Array:
    """Paper tint, uneven light and grain taken to white, the rest kept: far fewer JPEG bytes."""
    background = paper_of(gray)
    normalised = cv2.divide(gray, background, scale=255)
    out: Array = np.where(normalised > 235, 255, normalised).astype(np.uint8)
    return out


def _resample(image: Array, dpi: int, target_dpi: int) -> Array:
    if dpi <= target_dpi:
        return image
    scale = target_dpi / dpi
    resized: Array = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return resized


def encode(image: Array, dpi: int, encoding: str) -> tuple[bytes, int, int, int]:
    """(stream, width, height, dpi) as the PDF embeds it."""
    if encoding == "bilevel":
        bilevel = Image.fromarray(binarise(gray_of(image))).convert("1")
        return g4_stream(bilevel), bilevel.width, bilevel.height, dpi
    if encoding == "colour":
        target = _resample(image, dpi, JPEG_DPI)
    else:
        target = _resample(whitened(gray_of(image)), dpi, JPEG_DPI)
    out_dpi = min(dpi, JPEG_DPI)
    quality = 60 if encoding == "gray" else 70
    pil = Image.fromarray(target)
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), pil.width, pil.height, out_dpi


def g4_stream(image: Image.Image) -> bytes:
    """The CCITT Group 4 data of a bilevel image (what a PDF's CCITTFaxDecode takes)."""
    tiff = io.BytesIO()
    image.save(tiff, "TIFF", compression="group4", strip_size=(image.width + 7) // 8 * image.height)
    with Image.open(io.BytesIO(tiff.getvalue())) as parsed:
        assert isinstance(parsed, TiffImagePlugin.TiffImageFile)
        offsets = parsed.tag_v2[273]  # StripOffsets
        counts = parsed.tag_v2[279]  # StripByteCounts
    raw = tiff.getvalue()
    return b"".join(raw[int(o) : int(o) + int(c)] for o, c in zip(offsets, counts, strict=True))


def preview_of(image: Array) -> bytes:
    scale = min(1.0, PREVIEW_PX / image.shape[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def prepare(image: Array, dpi: int) -> Array | None:
    """Crop, straighten, deskew and turn upright; None for a blank side."""
    if is_blank(image):
        return None
    corners = find_page(gray_of(image))
    if corners is not None:
        image = straighten(image, corners)
    angle = estimate_skew(gray_of(image))
    if abs(angle) >= 0.2:
        image = rotate(image, angle)
    if upside_down(gray_of(image)):
        image = cv2.rotate(image, cv2.ROTATE_180)
    return image


def process_image(image: Array, dpi: int, encoding: str | None = None) -> ProcessedPage | None:
    prepared = prepare(image, dpi)
    if prepared is None:
        return None
    chosen = encoding or classify(prepared)
    data, width, height, out_dpi = encode(prepared, dpi, chosen)
    return ProcessedPage(chosen, width, height, out_dpi, data, preview_of(prepared))


def process_page(page: RawPage, encoding: str | None = None) -> ProcessedPage | None:
    """One scanned side, ready for the PDF; None when it is blank."""
    return process_image(to_array(page), page.dpi, encoding)


class OpenCvPageProcessor:
    """The page-processing port over this module and the PDF writer."""

    def process(self, page: RawPage) -> ProcessedPage | None:
        return process_page(page)

    def assemble(self, pages: list[ProcessedPage], title: str) -> bytes:
        from .pdf_writer import build_pdf

        return build_pdf(pages, title)
