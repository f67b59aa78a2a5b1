"""The composition root of the real kiosk: settings → adapters → engine."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from . import __version__
from .adapters.camera_opencv import load_card
from .adapters.camera_page import CameraPages
from .adapters.central_http import HttpCentral
from .adapters.device_files import open_device_files
from .adapters.live_devices import OpenCvLiveDevices
from .adapters.local_cache import FileCache
from .adapters.media_tracks import FrameSource, LatestFrame
from .adapters.outbox import EncryptedOutbox
from .adapters.page_imaging import OpenCvPageProcessor
from .adapters.pdf_poppler import PopplerRenderer, memory_backed_root
from .adapters.printer_ipp import IppPrinter
from .adapters.relay_probe import AioiceRelayProbe
from .adapters.rtc_aiortc import AiortcCallFactory
from .adapters.scanner_sane import SaneScanner
from .adapters.secrets_credentials import CredentialSealer, CredentialSecrets, credentials_directory
from .adapters.secrets_keyring import KeyringSecrets
from .adapters.update_spool import FileUpdates
from .core.clock import CentralClock, SystemClock
from .core.document_desk import DocumentPorts
from .core.engine import HEARTBEAT_S, KioskEngine
from .core.events import KioskEvent
from .core.ports import DeviceCheckSink, FormViewPort, MicrophoneMeter, SecretStore, VideoSink
from .core.printing import PrintPorts
from .core.session import Timing
from .core.settings import Settings

log = logging.getLogger(__name__)


def build_engine(
    settings: Settings,
    device_token: str,
    publish: Callable[[KioskEvent], None],
    sink: VideoSink | None,
    form: FormViewPort | None = None,
    form_frames: LatestFrame | None = None,
    *,
    ended_screen: timedelta | None = None,
    outbox_key: bytes | None = None,
    camera_source: FrameSource | None = None,
    uplink_control: bool | None = None,
    documents: DocumentPorts | None = None,
    heartbeat_s: float = HEARTBEAT_S,
) -> KioskEngine:
    """`outbox_key` (from the keyring) enables the scanner and the document outbox. Benches may send
    `camera_source` instead of the camera, turn the shared uplink control on or off (None: the
    kiosk's default), and give their own document ports (`documents`: a scanner that hands over
    prepared documents). Tests shorten `heartbeat_s` (IT staff's commands ride on its answer)."""
    clock = CentralClock(SystemClock())
    # A shorter ended screen (tests, benches, the demo) shortens the rating question with it.
    timing = Timing() if ended_screen is None else Timing(ended_screen=ended_screen, rating_for=ended_screen)
    # The UI's sink also takes the microphone's level (the waiting screen's bar).
    meter = sink if isinstance(sink, MicrophoneMeter) else None
    devices = (settings.camera, settings.audio, sink, form_frames, meter)
    calls = (
        AiortcCallFactory(*devices)
        if uplink_control is None
        else AiortcCallFactory(*devices, uplink_control=uplink_control)
    )
    calls.camera_source = camera_source
    # The staff panel's live check opens the same camera and microphone (never during a call).
    live = None
    if isinstance(sink, DeviceCheckSink):
        live = OpenCvLiveDevices(settings.camera, settings.audio, sink)
        live.camera_source = camera_source
    ports = documents
    if ports is None and outbox_key is not None:
        ports = document_ports(settings, outbox_key, calls)
    return KioskEngine(
        HttpCentral(settings.central_url, device_token, clock),
        calls,
        FileCache(settings.data_dir / "cache"),
        clock,
        publish,
        software_version=__version__,
        local_timing=timing,
        form=form,
        default_origins=settings.form.default_origins,
        documents=ports,
        device_files=open_device_files,
        relay_probe=AioiceRelayProbe(),
        live_devices=live,
        printing=print_ports(settings),
        heartbeat_s=heartbeat_s,
        updates=FileUpdates(settings.update_spool, settings.updates.status_file, settings.updates.health_mark)
        if settings.updates.enabled
        else None,
    )


def print_ports(settings: Settings) -> PrintPorts | None:
    """The clerk's documents, shown (and printed). Their temporary folder is in memory-backed storage
    and named after the kiosk's data folder: one kiosk's reset check never sees another's files."""
    if not settings.printing.enabled:
        return None
    key = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:12]
    printer = settings.printing.printer
    return PrintPorts(
        renderer=PopplerRenderer(memory_backed_root(), folder=f"kiosk-client-print-{key}"),
        printer=IppPrinter(printer) if printer is not None else None,
    )


def document_ports(settings: Settings, outbox_key: bytes, calls: AiortcCallFactory) -> DocumentPorts | None:
    if not settings.scanner.enabled:
        return None
    return DocumentPorts(
        scanner=SaneScanner(settings.scanner.device, stall_timeout_s=settings.scanner.stall_timeout_s),
        processor=OpenCvPageProcessor(),
        store=EncryptedOutbox(
            settings.data_dir / "outbox", outbox_key, retention_s=settings.documents.retention_hours * 3600
        ),
        camera=CameraPages(calls.camera_frame),
        dpi=settings.scanner.dpi,
    )


def form_frames() -> LatestFrame:
    """The slot the form view's grabs go through to the call; a labelled card while no form is shown."""
    return LatestFrame(load_card("form-unavailable.png", 640, 400))


def open_secrets(
    settings: Settings, environ: Mapping[str, str], sealer: Callable[[], CredentialSealer] | None = None
) -> SecretStore:
    """The secret store the configuration names ([secrets] store). `sealer` makes what enrolment seals
    with (systemd credentials, as root); the running kiosk only reads what the service manager gave it."""
    if settings.secret_store == "systemd-credentials":
        return CredentialSecrets(credentials_directory(environ), sealer() if sealer is not None else None)
    return KeyringSecrets(settings.keyring_backend)
