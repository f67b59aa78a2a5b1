"""Which camera and sound devices this process still holds open, read from /proc/self/fd.

The reset check's proof that the camera and microphone were released: a call that closed but left a
capture open keeps a descriptor on /dev/video* or /dev/snd/*, whatever the engine believes.
(PipeWire and PulseAudio clients reach the microphone through a socket, not a device file: for them
the engine's own "no call" is the check.)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DEVICE_PREFIXES = ("/dev/video", "/dev/snd/", "/dev/media")


def open_device_files(
    prefixes: tuple[str, ...] = DEVICE_PREFIXES, fd_dir: Path = Path("/proc/self/fd")
) -> list[str]:
    """The device paths among this process's open descriptors. Raises OSError when the descriptors
    cannot be listed (the check then fails: unproven is not clean)."""
    found = []
    for entry in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / entry)
        except OSError:
            continue  # closed while listing (the listing's own descriptor, a thread's file)
        if target.startswith(prefixes):
            found.append(target)
    return sorted(set(found))
