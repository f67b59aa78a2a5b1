"""Real kiosk-client wheels for the staged-update tests, made from this checkout's package with another
version (a wheel is a zip with a dist-info; building one with pip needs setuptools, which the test
environment lacks, and takes seconds, where zipping takes a few hundred milliseconds)."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

import kiosk_client

PACKAGE = Path(kiosk_client.__file__).parent


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(
    out_dir: Path,
    version: str,
    *,
    name: str = "kiosk-client",
    package_version: str | None = None,
    broken_import: bool = False,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """The checkout's kiosk_client as a wheel of `version` (its METADATA), whose package says it is
    `package_version` (default: `version`); `broken_import`: its package raises when imported; `extra`:
    more files, by their path in the wheel (a `.pth` at its top runs at each start of its Python)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = f"{name.replace('-', '_')}-{version}"
    wheel = out_dir / f"{dist}-py3-none-any.whl"
    records: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:

        def add(arcname: str, data: bytes) -> None:
            archive.writestr(arcname, data)
            records.append(_record_line(arcname, data))

        for path in sorted(PACKAGE.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            arcname = f"kiosk_client/{path.relative_to(PACKAGE).as_posix()}"
            data = path.read_bytes()
            if arcname == "kiosk_client/__init__.py":
                text = re.sub(
                    r'__version__ = "[^"]*"', f'__version__ = "{package_version or version}"', data.decode()
                )
                if broken_import:
                    text += '\nraise ImportError("this release is broken on purpose")\n'
                data = text.encode()
            add(arcname, data)
        for arcname, data in (extra or {}).items():
            add(arcname, data)
        info = f"{dist}.dist-info"
        add(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.12\n\n".encode(),
        )
        add(
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: kiosk-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        add(f"{info}/entry_points.txt", b"[console_scripts]\nkiosk-client = kiosk_client.cli:main\n")
        add(f"{info}/top_level.txt", b"kiosk_client\n")
        records.append(f"{info}/RECORD,,")
        archive.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
