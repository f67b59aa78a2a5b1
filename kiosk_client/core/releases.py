"""Software releases (staged updates): what a kiosk-client wheel must be before anyone trusts it.

The central checks a wheel when IT staff upload it, and the terminal's privileged updater checks it
again before installing it (the kiosk user, who downloaded it, could have put anything in its place):
both use these checks. A wheel is a zip file; only its metadata is read here, nothing is extracted.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from typing import IO

PROJECT = "kiosk-client"
# A version as software targets name it (central/software_targets.py uses the same rule).
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,39}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_WHEEL_BYTES = 50 * 1024 * 1024
# pip extracts what the zip holds: a small wheel that unpacks to gigabytes fills the terminal's disk.
MAX_UNPACKED_BYTES = 300 * 1024 * 1024
MAX_MEMBERS = 20_000
MAX_METADATA_BYTES = 256 * 1024


class BadWheel(ValueError):
    """Not a kiosk-client wheel of the version it claims to be (the message says what is wrong)."""


@dataclass(frozen=True, slots=True)
class WheelIdentity:
    name: str
    version: str


def normalized_name(name: str) -> str:
    """PEP 503: `Kiosk_Client` and `kiosk.client` are `kiosk-client`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_filename(version: str) -> str:
    return f"kiosk_client-{version.replace('-', '_')}-py3-none-any.whl"


def _header(metadata: str, field: str) -> str | None:
    for line in metadata.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line; the description follows
        key, _, value = line.partition(":")
        if key.strip().lower() == field.lower():
            return value.strip()
    return None


def inspect_wheel(file: IO[bytes]) -> WheelIdentity:
    """The wheel's name and version from its one `*.dist-info/METADATA`, after checking it is a zip
    whose members stay inside it and unpack to a bounded size; BadWheel otherwise."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadWheel(f"not a wheel (zip) file: {exc}") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise BadWheel(f"more than {MAX_MEMBERS} files in the wheel")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise BadWheel(f"the wheel unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB")
        for member in members:
            parts = member.filename.split("/")
            if member.filename.startswith("/") or "\\" in member.filename or ".." in parts:
                raise BadWheel(f"a file of the wheel points outside it: {member.filename[:100]!r}")
        metadata = [
            m
            for m in members
            if m.filename.count("/") == 1
            and m.filename.endswith(".dist-info/METADATA")
            and m.file_size <= MAX_METADATA_BYTES
        ]
        if len(metadata) != 1:
            raise BadWheel("expected exactly one *.dist-info/METADATA in the wheel")
        try:
            text = archive.read(metadata[0]).decode("utf-8")
        except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as exc:
            raise BadWheel(f"unreadable METADATA: {exc}") from None
    name, version = _header(text, "Name"), _header(text, "Version")
    if not name or not version:
        raise BadWheel("METADATA has no Name or no Version")
    return WheelIdentity(normalized_name(name), version)


def check_wheel(file: IO[bytes], version: str) -> WheelIdentity:
    """inspect_wheel, and it must be kiosk-client at exactly `version`."""
    identity = inspect_wheel(file)
    if identity.name != PROJECT:
        raise BadWheel(f"this wheel is {identity.name[:60]!r}, not {PROJECT}")
    if identity.version != version:
        raise BadWheel(f"this wheel is version {identity.version[:40]!r}, not {version!r}")
    return identity
