"""The central's enrolment QR code, read the way a kiosk's USB reader reads it: the SVG the admin API
serves is drawn by Qt, decoded by OpenCV's QR detector, and what it holds enrols the kiosk."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from kiosk_client.cli import main

from .conftest import Site
from .test_secrets import InMemoryTestKeyring


def decode_qr(svg: str) -> str:
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    assert renderer.isValid(), svg[:200]
    image = QImage(renderer.defaultSize(), QImage.Format.Format_RGB888)
    image.fill(QColor("white"))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    width, height = image.width(), image.height()
    pixels = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    rgb = pixels.reshape(height, image.bytesPerLine())[:, : width * 3].reshape(height, width, 3)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(np.ascontiguousarray(rgb))
    return str(text)


def test_the_qr_code_of_the_admin_api_enrols_the_kiosk(
    qapp: QApplication, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = site.admin.enrollment_qr(site.kiosk_id)
    assert made["enrol_url"] == f"{site.url}/enrol?code={made['code']}"
    assert made["qr_svg"].startswith("<svg") and "<script" not in made["qr_svg"]
    scanned = decode_qr(made["qr_svg"])
    assert scanned == made["enrol_url"]

    InMemoryTestKeyring.store.clear()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"[central]\nurl = '{site.url}'\n[secrets]\nkeyring_backend = 'tests.test_secrets.InMemoryTestKeyring'\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(scanned + "\n"))  # the reader types it, then Enter
    assert main(["enroll", "--config", str(config), "--scan"]) == 0
    assert len(InMemoryTestKeyring.store[("kiosk-client", "device-token")]) > 30


def test_the_qr_code_names_the_address_kiosks_use(site: Site) -> None:
    made = site.admin.enrollment_qr(site.kiosk_id, "https://central.mairie.example.fr")
    assert made["enrol_url"] == f"https://central.mairie.example.fr/enrol?code={made['code']}"
    for wrong in (
        "ftp://x.example",
        "https://",
        "https://c.example/?a=b",
        42,
        "https://c.example/" + "a" * 500,
    ):
        refused = httpx.post(
            f"{site.url}/api/v1/admin/kiosks/{site.kiosk_id}/enrollment-codes",
            json={"central_url": wrong},
            headers={"Authorization": f"Bearer {site.admin_token}"},
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_field", wrong
    no_body = httpx.post(
        f"{site.url}/api/v1/admin/kiosks/{site.kiosk_id}/enrollment-codes",
        headers={"Authorization": f"Bearer {site.admin_token}"},
    )
    assert no_body.status_code == 201 and no_body.json()["enrol_url"].startswith(site.url + "/enrol?code=")
