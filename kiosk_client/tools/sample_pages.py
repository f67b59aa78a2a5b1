"""Synthetic scans for the imaging tests and the documents benchmark: a typical French letter
rendered at 300 dpi, with paper tint, scanner noise and, on request, skew and a scanner bed around it."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

A4_300 = (2480, 3508)  # width, height at 300 dpi
LINES = [
    "CAISSE D'ALLOCATIONS FAMILIALES",
    "Attestation de paiement — n° allocataire 1234567 R",
    "",
    "Madame Élodie Müller-Ñúñez",
    "12 rue de l'Église, 23000 Guéret",
    "",
    "Nous certifions que l'intéressée perçoit les prestations suivantes :",
    "  allocations familiales ............................ 141,99 €",
    "  aide personnalisée au logement ................... 212,00 €",
    "  complément familial ............................... 183,45 €",
    "",
    "Période : du 1er janvier au 31 octobre 2026.",
    "Cette attestation est délivrée pour servir et valoir ce que de droit.",
    "Pour toute question : www.caf.fr, rubrique « Mon Compte ».",
    "",
]


def text_page(ink: int = 20, paper: int = 242, seed: int = 1, lines: int = 60) -> np.ndarray:
    """A4 at 300 dpi, gray, a page of 11-point text (what a letter, a bill or a pay slip holds)."""
    image = Image.new("L", A4_300, paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=46)  # ≈ 11 pt at 300 dpi
    heading = ImageFont.load_default(size=70)
    y = 250
    draw.text((220, y), LINES[0], fill=ink, font=heading)
    y += 140
    for i in range(lines):
        line = LINES[1 + i % (len(LINES) - 1)]
        draw.text((220, y), line, fill=ink, font=font)
        y += 52
        if y > A4_300[1] - 250:
            break
    array = np.asarray(image, dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0, 3.0, array.shape)
    return np.clip(array + noise, 0, 255).astype(np.uint8)


def blank_page(paper: int = 240, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    array = np.full((A4_300[1], A4_300[0]), paper, np.float32) + rng.normal(0, 3.0, (A4_300[1], A4_300[0]))
    array[rng.integers(0, A4_300[1], 30), rng.integers(0, A4_300[0], 30)] = 90  # dust specks
    return np.clip(array, 0, 255).astype(np.uint8)


def photo_page(seed: int = 3) -> np.ndarray:
    """A colour page (an ID card photocopy, a photo): smooth colour fields and gradients."""
    rng = np.random.default_rng(seed)
    h, w = A4_300[1], A4_300[0]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack(
        [
            127 + 100 * np.sin(x / 300 + rng.uniform(0, 6)),
            127 + 100 * np.sin(y / 410 + rng.uniform(0, 6)),
            127 + 100 * np.sin((x + y) / 530 + rng.uniform(0, 6)),
        ],
        axis=-1,
    )
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def skewed(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    border = 242 if image.ndim == 2 else (242, 242, 242)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)


def on_scanner_bed(page: np.ndarray, degrees: float = 0.0, bed: int = 60) -> np.ndarray:
    """The page lying, maybe turned, on a darker bed larger than itself (a flatbed, a camera)."""
    h, w = page.shape[:2]
    canvas = np.full((int(h * 1.25), int(w * 1.3)), bed, np.uint8)
    y0, x0 = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
    mask = np.zeros_like(canvas)
    canvas[y0 : y0 + h, x0 : x0 + w] = page
    mask[y0 : y0 + h, x0 : x0 + w] = 255
    matrix = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), degrees, 1.0)
    turned = cv2.warpAffine(canvas, matrix, canvas.shape[::-1], borderValue=bed)
    return turned
