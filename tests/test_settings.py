"""The local config file: every error names the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk_client.core.errors import ConfigError
from kiosk_client.core.settings import load_settings, parse_settings

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_example_config_is_valid() -> None:
    settings = load_settings(REPO / "config" / "kiosk.example.toml")
    assert settings.central_url.startswith("https://")
    assert settings.language == "fr"
    assert settings.secret_store == "systemd-credentials"  # what install-kiosk.sh installs


def test_defaults() -> None:
    settings = parse_settings('[central]\nurl = "https://central.example.org/"\n', "k.toml")
    assert settings.central_url == "https://central.example.org"
    assert settings.camera.device == 0 and settings.audio.microphone == "default"
    assert settings.secret_store == "keyring"  # configurations written before sealed credentials


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[kiosk]\nlanguage='fr'\n", "central.url", "missing"),
        ("[central]\nurl='ftp://x'\n", "central.url", "expected an http(s) URL"),
        ("[central]\nurl='https://x'\n[kiosk]\nlanguage='de'\n", "kiosk.language", "expected one of fr, en"),
        (
            "[central]\nurl='https://x'\n[kiosk]\nfullscreen='yes'\n",
            "kiosk.fullscreen",
            "expected true or false",
        ),
        ("[central]\nurl='https://x'\n[camera]\nfps=0\n", "camera.fps", "expected an integer from 1 to 60"),
        (
            "[central]\nurl='https://x'\n[secrets]\nstore='file'\n",
            "secrets.store",
            "expected one of keyring, systemd-credentials",
        ),
        ("[central]\nurl='https://x'\n[camera]\nwidth=true\n", "camera.width", "expected an integer"),
        ("[central]\nurl='https://x'\n[camera]\ndevice=-1\n", "camera.device", "index of 0 or more"),
        ("[central]\nurl='https://x'\n[audio]\nmicrophone=3\n", "audio.microphone", 'or "none"'),
        ("camera = 3\n[central]\nurl='https://x'\n", "camera", "expected a table"),
        (
            "[central]\nurl='https://x'\n[kiosk]\nfulscreen=true\n",
            "kiosk.fulscreen",
            "unknown key; expected one of",
        ),
        ("[centrale]\nurl='https://x'\n", "centrale", "unknown key"),
        ("[central]\nurl='https://x'\n[scanner]\ndpi=50\n", "scanner.dpi", "expected 75 to 1200"),
        ("[central]\nurl='https://x'\n[scanner]\nenabled='no'\n", "scanner.enabled", "true or false"),
        ("[central]\nurl='https://x'\n[scanner]\nsource='adf'\n", "scanner.source", "unknown key"),
        (
            "[central]\nurl='https://x'\n[documents]\nretention_hours=0\n",
            "documents.retention_hours",
            "expected an integer from 1 to 720",
        ),
    ],
)
def test_errors_name_file_key_and_expectation(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, "/etc/kiosk-client/kiosk.toml")
    assert info.value.file == "/etc/kiosk-client/kiosk.toml"
    assert info.value.key == key
    assert expected in str(info.value)
    assert str(info.value).startswith(f"/etc/kiosk-client/kiosk.toml: {key}: ")


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_settings("[central\nurl=", "bad.toml")
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_camera_and_audio_can_be_switched_off() -> None:
    settings = parse_settings(
        "[central]\nurl='https://x'\n[camera]\ndevice='none'\n[audio]\nmicrophone='none'\n", "k"
    )
    assert settings.camera.device is None and settings.audio.microphone is None


def test_form_section() -> None:
    settings = parse_settings(
        "[central]\nurl='https://x'\n[form]\ndefault_origins=['https://www.service-public.fr']\ncitizen_only_selectors=['#fc-password']\n",
        "k",
    )
    assert settings.form.default_origins == ("https://www.service-public.fr",)
    assert settings.form.citizen_only_selectors == ("#fc-password",)
    with pytest.raises(ConfigError, match=r"form\.default_origins: expected a list of origins"):
        parse_settings("[central]\nurl='https://x'\n[form]\ndefault_origins=['file:///etc']\n", "k")
    with pytest.raises(ConfigError, match=r"form\.citizen_only_selectors: expected a list of CSS selectors"):
        parse_settings("[central]\nurl='https://x'\n[form]\ncitizen_only_selectors='#x'\n", "k")


def test_scanner_and_documents_sections() -> None:
    settings = parse_settings(
        "[central]\nurl='https://x'\n[scanner]\ndevice='test:0'\ndpi=200\n[documents]\nretention_hours=48\n",
        "k.toml",
    )
    assert settings.scanner.device == "test:0" and settings.scanner.dpi == 200 and settings.scanner.enabled
    assert settings.documents.retention_hours == 48
    defaults = parse_settings("[central]\nurl='https://x'\n", "k.toml")
    assert defaults.scanner.device is None and defaults.scanner.dpi == 300
    assert defaults.documents.retention_hours == 24


def test_safe_frame_origins_are_read_as_a_browser_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[central]\nurl = "https://central.example.org"\n'
        '[form]\nsafe_frame_origins = ["https://Maps.Example.org:443"]\n'
    )
    assert load_settings(path).form.safe_frame_origins == ("https://maps.example.org",)
    path.write_text('[central]\nurl = "https://central.example.org"\n[form]\nsafe_frame_origins = ["maps"]\n')
    with pytest.raises(ConfigError, match=r"form\.safe_frame_origins"):
        load_settings(path)


def test_accessibility_section() -> None:
    base = "[central]\nurl='https://x'\n"
    defaults = parse_settings(base, "k").accessibility
    assert (defaults.speech_engine, defaults.speech_rate, defaults.sound_cues) == ("speechd", -0.2, True)
    chosen = parse_settings(
        base + "[accessibility]\nspeech_engine='none'\nspeech_rate=0\nsound_cues=false\n", "k"
    ).accessibility
    assert (chosen.speech_engine, chosen.speech_rate, chosen.sound_cues) == ("none", 0.0, False)
    with pytest.raises(ConfigError, match=r"accessibility\.speech_engine.*speechd"):
        parse_settings(base + "[accessibility]\nspeech_engine='espeak'\n", "k")
    with pytest.raises(ConfigError, match=r"accessibility\.speech_rate"):
        parse_settings(base + "[accessibility]\nspeech_rate=2\n", "k")
    with pytest.raises(ConfigError, match=r"accessibility\.volume"):
        parse_settings(base + "[accessibility]\nvolume=3\n", "k")


def test_updates_section() -> None:
    default = parse_settings("[central]\nurl='https://x'\n[kiosk]\ndata_dir='/var/lib/k'\n", "k")
    assert default.updates.enabled and default.update_spool == Path("/var/lib/k/updates")
    # The installer's units watch and write these: the defaults are theirs.
    assert default.updates.status_file == Path("/var/lib/kiosk-updater/status.json")
    assert default.updates.health_mark == Path("/run/kiosk-client/healthy")
    custom = parse_settings(
        "[central]\nurl='https://x'\n[updates]\nenabled=false\nspool_dir='/srv/spool'\nhealth_mark='/tmp/h'\n",
        "k",
    )
    assert not custom.updates.enabled and custom.update_spool == Path("/srv/spool")
    assert custom.updates.health_mark == Path("/tmp/h")
    with pytest.raises(ConfigError, match=r"updates\.spool"):
        parse_settings("[central]\nurl='https://x'\n[updates]\nspool='/x'\n", "k")
