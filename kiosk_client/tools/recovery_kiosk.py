"""The kiosk as a process of its own, for `bench recovery` and its tests: the real Qt application
(offscreen) around the real engine, as `kiosk-client run` starts it, but enrolled with a token handed
down in the environment (KIOSK_DEVICE_TOKEN, never on the command line) instead of the keyring, with
no camera or microphone. With KIOSK_OUTBOX_KEY (64 hex digits) it has its documents outbox and a
scanner (SANE's, as SANE_CONFIG_DIR says). Its data folder outlives it, as a terminal's does across
restarts.

    KIOSK_DEVICE_TOKEN=… python -m kiosk_client.tools.recovery_kiosk --central URL --data-dir DIR
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..app import build_engine
from ..core.settings import AccessibilitySettings, AudioSettings, CameraSettings, ScannerSettings, Settings
from ..ui.app import run_kiosk_app

log = logging.getLogger(__name__)

TOKEN_ENV = "KIOSK_DEVICE_TOKEN"
OUTBOX_KEY_ENV = "KIOSK_OUTBOX_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recovery_kiosk")
    parser.add_argument("--central", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        print(f"{TOKEN_ENV} is not set", file=sys.stderr)
        return 2
    outbox_key = bytes.fromhex(os.environ.pop(OUTBOX_KEY_ENV, "")) or None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aioice", "aiortc", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log.info("the kiosk for bench recovery, against %s", args.central)
    settings = Settings(
        central_url=args.central,
        data_dir=args.data_dir,
        camera=CameraSettings(device=None),
        audio=AudioSettings(microphone=None, speaker=None),
        scanner=ScannerSettings(enabled=outbox_key is not None),
        accessibility=AccessibilitySettings(speech_engine="none", sound_cues=False),
    )
    return run_kiosk_app(
        lambda publish, sink, form, frames: build_engine(
            settings, token, publish, sink, form, frames, outbox_key=outbox_key
        ),
        language="fr",
        fullscreen=False,
        form_settings=settings.form,
        accessibility=settings.accessibility,
    )


if __name__ == "__main__":
    sys.exit(main())
