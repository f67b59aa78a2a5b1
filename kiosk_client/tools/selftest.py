"""`kiosk-client selftest`: what an IT technician checks on a new terminal."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..core.errors import KioskError
from ..core.settings import Settings


def qt_void_call_check() -> dict[str, Any]:
    """PySide6 6.12 on Python 3.11 aborts after a few thousand void calls: try it in a child process."""
    code = (
        "import os; os.environ.setdefault('QT_QPA_PLATFORM','offscreen');"
        "from PySide6.QtCore import QObject, QTimer; from PySide6.QtWidgets import QApplication;"
        "app=QApplication([]); o=QObject()\n"
        "for i in range(20000): o.setObjectName(f'n{i}')\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return {
        "name": "qt_void_calls",
        "ok": result.returncode == 0 and "ok" in result.stdout,
        "detail": result.stderr[-300:],
    }


def printing_checks(settings: Settings) -> list[dict[str, Any]]:
    """poppler's tools (the clerk's PDFs are read with them, out of process) and the printer."""
    import asyncio
    import shutil

    from ..adapters.printer_ipp import IppPrinter
    from ..core.printing import PrinterError

    if not settings.printing.enabled:
        return [{"name": "printing", "ok": True, "detail": "disabled"}]
    missing = [tool for tool in ("pdfinfo", "pdftoppm", "prlimit") if shutil.which(tool) is None]
    checks: list[dict[str, Any]] = [
        {
            "name": "pdf_reader",
            "ok": not missing,
            "detail": f"missing {', '.join(missing)}" if missing else "ok",
        }
    ]
    uri = settings.printing.printer
    if uri is None:
        checks.append({"name": "printer", "ok": True, "detail": "none: documents are shown, not printed"})
        return checks
    try:
        asyncio.run(IppPrinter(uri).check())
        checks.append({"name": "printer", "ok": True, "detail": uri})
    except PrinterError as exc:
        checks.append({"name": "printer", "ok": False, "detail": f"{uri}: {exc.code} ({exc})"})
    return checks


def run_selftest(config: Path | None) -> dict[str, Any]:
    import PySide6

    from ..adapters.camera_opencv import probe_camera

    checks: list[dict[str, Any]] = [
        {"name": "python", "ok": sys.version_info >= (3, 12), "detail": platform.python_version()},
        {"name": "pyside6", "ok": True, "detail": PySide6.__version__},
        qt_void_call_check(),
    ]
    if config is not None:
        from ..adapters.secrets_keyring import KeyringSecrets
        from ..core.settings import load_settings

        try:
            settings = load_settings(config)
            checks.append({"name": "config", "ok": True, "detail": str(config)})
            checks.append(
                {
                    "name": "camera",
                    "ok": probe_camera(settings.camera.device) in ("ok", "disabled"),
                    "detail": str(settings.camera.device),
                }
            )
            checks.extend(printing_checks(settings))
            if settings.secret_store == "systemd-credentials":
                checks.append(sealed_credentials_check())
            else:
                try:
                    KeyringSecrets(settings.keyring_backend)
                    checks.append({"name": "keyring", "ok": True, "detail": settings.keyring_backend})
                except KioskError as exc:
                    checks.append({"name": "keyring", "ok": False, "detail": str(exc)})
        except KioskError as exc:
            checks.append({"name": "config", "ok": False, "detail": str(exc)})
    return {"checks": checks}


def sealed_credentials_check(store: Path | None = None) -> dict[str, Any]:
    """Whether enrolment sealed the device token (the store is root's: run the self-test as root)."""
    from ..adapters.secrets_credentials import CREDSTORE, DEVICE_TOKEN

    path = (store or CREDSTORE) / DEVICE_TOKEN
    try:
        sealed = path.is_file()
    except PermissionError:
        return {"name": "credentials", "ok": False, "detail": f"cannot look into {path.parent}: run as root"}
    detail = (
        f"{path} (systemd-creds)" if sealed else f"not enrolled: no {path} (kiosk-client enroll, as root)"
    )
    return {"name": "credentials", "ok": sealed, "detail": detail}
