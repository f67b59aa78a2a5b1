"""The kiosk's local configuration file (TOML). Secrets never live here: they are in the OS keyring or
sealed systemd credentials."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .navigation import web_origin

LANGUAGES = ("fr", "en")
DEFAULT_KEYRING_BACKEND = "keyring.backends.SecretService.Keyring"
# Where the device token and the outbox key live: the OS keyring, or systemd credentials sealed by
# `kiosk-client enroll` (as root) and handed to the kiosk session by the service manager.
SECRET_STORES = ("keyring", "systemd-credentials")


@dataclass(frozen=True, slots=True)
class CameraSettings:
    device: int | str | None = 0  # index, device path, or None for no camera
    width: int = 640
    height: int = 480
    fps: int = 20


@dataclass(frozen=True, slots=True)
class AudioSettings:
    microphone: str | None = "default"  # ALSA device (PulseAudio/PipeWire's echo-cancelled source by default)
    speaker: str | None = "default"


@dataclass(frozen=True, slots=True)
class FormSettings:
    # Origins every session's form view may visit, besides the appointment's own.
    default_origins: tuple[str, ...] = ()
    # Fields only the citizen may fill (password fields always are), e.g. a FranceConnect password.
    citizen_only_selectors: tuple[str, ...] = ()
    # Origins whose frames, embedded in a form page from another origin, hold nothing only the citizen
    # may see (a map, a video): shown to the clerk. Other cross-origin frames may hold a login and
    # are masked whole in the live form view, since the kiosk cannot look inside them.
    safe_frame_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScannerSettings:
    enabled: bool = True
    device: str | None = None  # e.g. "genesys:libusb:001:004"; None: the first one found
    dpi: int = 300
    stall_timeout_s: int = 30  # a scanner silent this long is considered hung


@dataclass(frozen=True, slots=True)
class DocumentSettings:
    retention_hours: int = 24  # a document the clerk never confirmed is destroyed after this


DEFAULT_PRINTER = "ipp://localhost:631/printers/kiosk"  # the local CUPS queue (README: Printing)


@dataclass(frozen=True, slots=True)
class PrintSettings:
    enabled: bool = True  # the clerk may send documents to show (and print) on the kiosk
    printer: str | None = DEFAULT_PRINTER  # an ipp:// or ipps:// printer URI; None: shown, not printed


SPEECH_ENGINES = ("speechd", "mock", "none")


@dataclass(frozen=True, slots=True)
class AccessibilitySettings:
    # QtTextToSpeech's engine for « Écouter »: "speechd" (speech-dispatcher, with espeak-ng's voices
    # on Debian), "mock" (Qt's silent test engine) or "none" (no read-aloud, no « Écouter » button).
    speech_engine: str = "speechd"
    # -1.0 (slowest) to 1.0 (fastest); a little slower than the engine's normal pace by default, for
    # older listeners.
    speech_rate: float = -0.2
    sound_cues: bool = True  # short sounds when the clerk joins, asks for control or for a document


@dataclass(frozen=True, slots=True)
class UpdateSettings:
    """Staged updates (README: Updates). The spool is the kiosk's (None: `<data_dir>/updates`); the
    status file is the root updater's; the health mark tells the updater this version came up. The
    installer's units (kiosk-updater.path, kiosk-session.service) use these defaults."""

    enabled: bool = True
    spool_dir: Path | None = None
    status_file: Path = Path("/var/lib/kiosk-updater/status.json")
    health_mark: Path = Path("/run/kiosk-client/healthy")


@dataclass(frozen=True, slots=True)
class Settings:
    central_url: str
    data_dir: Path
    language: str = "fr"
    fullscreen: bool = True
    touch_screen: bool = False  # the kiosk session hides the pointer
    keyring_backend: str = DEFAULT_KEYRING_BACKEND
    secret_store: str = "keyring"
    camera: CameraSettings = field(default_factory=CameraSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    form: FormSettings = field(default_factory=FormSettings)
    scanner: ScannerSettings = field(default_factory=ScannerSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    accessibility: AccessibilitySettings = field(default_factory=AccessibilitySettings)
    printing: PrintSettings = field(default_factory=PrintSettings)
    updates: UpdateSettings = field(default_factory=UpdateSettings)

    @property
    def update_spool(self) -> Path:
        return self.updates.spool_dir or self.data_dir / "updates"


class _Section:
    def __init__(self, file: str, name: str, data: object, known: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(file, name, "expected a table")
        self.file, self.name, self.data = file, name, data
        # A typo in a kiosk's config must not be silently ignored.
        for key in data:
            if key not in known:
                raise ConfigError(file, self.key(key), f"unknown key; expected one of {', '.join(known)}")

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, kind: type | tuple[type, ...], expected: str, default: Any) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is not bool:
            raise ConfigError(self.file, self.key(key), f"expected {expected}, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(self.file, self.key(key), f"expected {expected}, got {value!r}")
        return value

    def positive_int(self, key: str, default: int, maximum: int) -> int:
        value = self.get(key, int, f"an integer from 1 to {maximum}", default)
        if not 1 <= value <= maximum:
            raise ConfigError(
                self.file, self.key(key), f"expected an integer from 1 to {maximum}, got {value!r}"
            )
        return int(value)

    def strings(self, key: str, check: Callable[[str], bool], expected: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and check(v) for v in value):
            raise ConfigError(self.file, self.key(key), f"expected a list of {expected}")
        return tuple(value)

    def device(self, key: str, default: str | None) -> str | None:
        value = self.get(key, str, 'a device name, or "none"', default)
        return None if value in (None, "none", "") else str(value)


def _is_origin(value: str) -> bool:
    return web_origin(value) is not None


def parse_settings(text: str, file: str) -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"not valid TOML ({exc})") from None
    _Section(
        file,
        "",
        raw,
        (
            "central",
            "kiosk",
            "camera",
            "audio",
            "secrets",
            "form",
            "scanner",
            "documents",
            "accessibility",
            "printing",
            "updates",
        ),
    )
    updates = _Section(
        file, "updates", raw.get("updates", {}), ("enabled", "spool_dir", "status_file", "health_mark")
    )
    printing = _Section(file, "printing", raw.get("printing", {}), ("enabled", "printer"))
    accessibility = _Section(
        file, "accessibility", raw.get("accessibility", {}), ("speech_engine", "speech_rate", "sound_cues")
    )
    scanner = _Section(
        file, "scanner", raw.get("scanner", {}), ("enabled", "device", "dpi", "stall_timeout_s")
    )
    documents = _Section(file, "documents", raw.get("documents", {}), ("retention_hours",))
    form = _Section(
        file, "form", raw.get("form", {}), ("default_origins", "citizen_only_selectors", "safe_frame_origins")
    )
    central = _Section(file, "central", raw.get("central", {}), ("url",))
    kiosk = _Section(
        file, "kiosk", raw.get("kiosk", {}), ("language", "data_dir", "fullscreen", "touch_screen")
    )
    camera = _Section(file, "camera", raw.get("camera", {}), ("device", "width", "height", "fps"))
    audio = _Section(file, "audio", raw.get("audio", {}), ("microphone", "speaker"))
    secrets = _Section(file, "secrets", raw.get("secrets", {}), ("store", "keyring_backend"))

    url = central.get("url", str, "an http(s) URL", None)
    if url is None:
        raise ConfigError(file, "central.url", "missing; expected the central's http(s) URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(file, "central.url", f"expected an http(s) URL, got {url!r}")

    secret_store = secrets.get("store", str, f"one of {', '.join(SECRET_STORES)}", "keyring")
    if secret_store not in SECRET_STORES:
        raise ConfigError(
            file, "secrets.store", f"expected one of {', '.join(SECRET_STORES)}, got {secret_store!r}"
        )

    language = kiosk.get("language", str, f"one of {', '.join(LANGUAGES)}", "fr")
    if language not in LANGUAGES:
        raise ConfigError(file, "kiosk.language", f"expected one of {', '.join(LANGUAGES)}, got {language!r}")

    cam_device: int | str | None
    raw_device = camera.data.get("device", 0)
    if isinstance(raw_device, bool) or not isinstance(raw_device, int | str):
        raise ConfigError(
            file, "camera.device", f'expected a camera index, a device path or "none", got {raw_device!r}'
        )
    if isinstance(raw_device, int) and raw_device < 0:
        raise ConfigError(file, "camera.device", f"expected a camera index of 0 or more, got {raw_device!r}")
    cam_device = None if raw_device in ("none", "") else raw_device

    return Settings(
        central_url=url.rstrip("/"),
        data_dir=Path(kiosk.get("data_dir", str, "a folder path", "/var/lib/kiosk-client")),
        language=language,
        fullscreen=kiosk.get("fullscreen", bool, "true or false", True),
        touch_screen=kiosk.get("touch_screen", bool, "true or false", False),
        keyring_backend=secrets.get(
            "keyring_backend", str, "a keyring backend class path", DEFAULT_KEYRING_BACKEND
        ),
        secret_store=secret_store,
        camera=CameraSettings(
            device=cam_device,
            width=camera.positive_int("width", 640, 3840),
            height=camera.positive_int("height", 480, 2160),
            fps=camera.positive_int("fps", 20, 60),
        ),
        form=FormSettings(
            default_origins=form.strings(
                "default_origins", _is_origin, "origins such as https://www.example.org"
            ),
            citizen_only_selectors=form.strings(
                "citizen_only_selectors", lambda v: 0 < len(v) < 500, "CSS selectors"
            ),
            # As a browser writes them (lower case, no default port): the page's frames are compared.
            safe_frame_origins=tuple(
                web_origin(o) or o
                for o in form.strings(
                    "safe_frame_origins", _is_origin, "origins such as https://www.example.org"
                )
            ),
        ),
        audio=AudioSettings(
            microphone=audio.device("microphone", "default"), speaker=audio.device("speaker", "default")
        ),
        scanner=ScannerSettings(
            enabled=scanner.get("enabled", bool, "true or false", True),
            device=scanner.device("device", None),
            dpi=_dpi(scanner),
            stall_timeout_s=scanner.positive_int("stall_timeout_s", 30, 600),
        ),
        documents=DocumentSettings(retention_hours=documents.positive_int("retention_hours", 24, 24 * 30)),
        accessibility=_accessibility(accessibility),
        printing=_printing(printing),
        updates=_updates(updates),
    )


def _updates(section: _Section) -> UpdateSettings:
    defaults = UpdateSettings()
    spool = section.get("spool_dir", str, "a folder path", "")
    return UpdateSettings(
        enabled=section.get("enabled", bool, "true or false", True),
        spool_dir=Path(spool) if spool else None,
        status_file=Path(section.get("status_file", str, "a file path", str(defaults.status_file))),
        health_mark=Path(section.get("health_mark", str, "a file path", str(defaults.health_mark))),
    )


def _printing(section: _Section) -> PrintSettings:
    printer = section.get("printer", str, 'an ipp:// or ipps:// printer URI, or "none"', DEFAULT_PRINTER)
    if printer in ("none", ""):
        printer = None
    elif urlsplit(printer).scheme not in ("ipp", "ipps") or not urlsplit(printer).hostname:
        raise ConfigError(
            section.file,
            section.key("printer"),
            f'expected an ipp:// or ipps:// URI, or "none", got {printer!r}',
        )
    return PrintSettings(enabled=section.get("enabled", bool, "true or false", True), printer=printer)


def _accessibility(section: _Section) -> AccessibilitySettings:
    engines = ", ".join(f'"{e}"' for e in SPEECH_ENGINES)
    engine = section.get("speech_engine", str, f"one of {engines}", "speechd")
    if engine not in SPEECH_ENGINES:
        raise ConfigError(
            section.file, section.key("speech_engine"), f"expected one of {engines}, got {engine!r}"
        )
    rate = section.get("speech_rate", (int, float), "a number from -1.0 to 1.0", -0.2)
    if not -1.0 <= rate <= 1.0:
        raise ConfigError(
            section.file, section.key("speech_rate"), f"expected a number from -1.0 to 1.0, got {rate!r}"
        )
    return AccessibilitySettings(
        speech_engine=engine,
        speech_rate=float(rate),
        sound_cues=section.get("sound_cues", bool, "true or false", True),
    )


def _dpi(section: _Section) -> int:
    dpi = section.positive_int("dpi", 300, 1200)
    if dpi < 75:
        raise ConfigError(section.file, section.key("dpi"), f"expected 75 to 1200, got {dpi}")
    return dpi


def load_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), None, f"cannot be read ({exc})") from None
    return parse_settings(text, str(path))
