"""The device token as a sealed systemd credential: `kiosk-client enroll` seals it with the real
systemd-creds (the host key: this machine has no TPM2), the service manager's part is played by
`systemd-creds decrypt` into a folder (what LoadCredentialEncrypted= does), and the kiosk reads it from
$CREDENTIALS_DIRECTORY. systemd-creds' host key is a scratch file ($SYSTEMD_CREDENTIAL_SECRET), never
this machine's /var/lib/systemd/credential.secret."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kiosk_client.adapters.secrets_credentials import (
    DEVICE_TOKEN,
    OUTBOX_KEY,
    CredentialSealer,
    CredentialSecrets,
    credentials_directory,
)
from kiosk_client.adapters.secrets_keyring import KeyringSecrets
from kiosk_client.app import open_secrets
from kiosk_client.central.server import CentralThread
from kiosk_client.cli import main
from kiosk_client.core.enrolment import enrolment_url
from kiosk_client.core.errors import SecretStoreError
from kiosk_client.core.settings import parse_settings

from .conftest import Site

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="systemd-creds seals with root's keys: run as root (CI does)"
)


def service_manager_loads(credstore: Path, into: Path, names: tuple[str, ...]) -> Path:
    """What LoadCredentialEncrypted=NAME does at the service's start: decrypt each sealed file (the name
    embedded in it must match) into the service's credentials folder."""
    into.mkdir(mode=0o700, exist_ok=True)
    for name in names:
        subprocess.run(
            ["systemd-creds", "decrypt", f"--name={name}", str(credstore / name), str(into / name)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return into


@pytest.fixture
def host_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch host key for systemd-creds (made on first use), so no test touches this machine's."""
    assert shutil.which("systemd-creds"), "systemd-creds (systemd >= 250) is part of Debian 12"
    key = tmp_path / "credential.secret"
    monkeypatch.setenv("SYSTEMD_CREDENTIAL_SECRET", str(key))
    return key


def config_file(tmp_path: Path, central_url: str) -> Path:
    config = tmp_path / "kiosk.toml"
    config.write_text(f"[central]\nurl = '{central_url}'\n[secrets]\nstore = 'systemd-credentials'\n")
    return config


@needs_root
def test_enrolment_by_qr_code_seals_the_token_that_only_the_service_gets_back(
    site: Site, central: CentralThread, tmp_path: Path, host_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credstore = tmp_path / "credstore.encrypted"
    credstore.mkdir(mode=0o700)
    config = config_file(tmp_path, site.url)
    qr = enrolment_url(site.url, site.enrollment_code)
    args = ["enroll", "--config", str(config), "--with-key", "host", "--credstore", str(credstore)]
    assert main([*args, "--code", qr]) == 0
    assert "sealed in" in capsys.readouterr().out

    sealed = {p.name: p for p in credstore.iterdir()}
    assert set(sealed) == {DEVICE_TOKEN, OUTBOX_KEY}  # no temporary left behind
    for path in sealed.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == 0
    secrets = CredentialSecrets(
        service_manager_loads(credstore, tmp_path / "run1", (DEVICE_TOKEN, OUTBOX_KEY))
    )
    token = secrets.device_token()
    assert token is not None and central.server.store.kiosk_by_token(token)["id"] == site.kiosk_id
    assert token.encode() not in sealed[DEVICE_TOKEN].read_bytes()  # not in clear on the disk
    key = secrets.outbox_key()
    assert len(key) == 32 and key not in sealed[OUTBOX_KEY].read_bytes()

    # A copy of the sealed files without this installation's host key decrypts nothing.
    other = tmp_path / "other-machine.secret"
    refused = subprocess.run(
        ["systemd-creds", "decrypt", f"--name={DEVICE_TOKEN}", str(sealed[DEVICE_TOKEN]), "-"],
        capture_output=True,
        env={**os.environ, "SYSTEMD_CREDENTIAL_SECRET": str(other)},
        timeout=30,
    )
    assert refused.returncode != 0 and token.encode() not in refused.stdout
    # A sealed file renamed to stand for another credential is refused (the name is sealed in it).
    shutil.copy(sealed[OUTBOX_KEY], tmp_path / DEVICE_TOKEN)
    with pytest.raises(subprocess.CalledProcessError):
        service_manager_loads(tmp_path, tmp_path / "run-renamed", (DEVICE_TOKEN,))

    # Enrolled again with a new code: a new token, the same outbox key (waiting documents stay readable).
    assert main([*args, "--code", site.admin.enrollment_code(site.kiosk_id)]) == 0
    again = CredentialSecrets(service_manager_loads(credstore, tmp_path / "run2", (DEVICE_TOKEN, OUTBOX_KEY)))
    assert again.device_token() not in (None, token) and again.outbox_key() == key
    assert central.server.store.kiosk_by_token(token) is None  # the old token no longer works


@needs_root
def test_a_refused_enrolment_spends_no_code_and_writes_nothing(
    site: Site, tmp_path: Path, host_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credstore = tmp_path / "credstore.encrypted"
    credstore.mkdir(mode=0o700)
    config = config_file(tmp_path, site.url)
    args = ["enroll", "--config", str(config), "--with-key", "host", "--credstore", str(credstore)]
    wrong_central = enrolment_url("https://central.other.example", site.enrollment_code)
    assert main([*args, "--code", wrong_central]) == 1
    assert "this kiosk's central is" in capsys.readouterr().err
    assert main([*args, "--code", "no"]) == 1
    assert "an enrolment code is 4 to 64" in capsys.readouterr().err
    missing_store = ["--credstore", str(tmp_path / "absent")]
    assert main([*args, *missing_store, "--code", site.enrollment_code]) == 1
    assert "is not a folder (run install-kiosk.sh first)" in capsys.readouterr().err
    assert list(credstore.iterdir()) == [] and not host_key.exists()
    assert main([*args, "--code", site.enrollment_code]) == 0  # the code was still good


def test_enrolment_reads_the_qr_code_from_the_reader(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A USB barcode reader types the QR code's content and Enter: `enroll --scan` reads that line."""
    import io

    from .test_secrets import InMemoryTestKeyring

    InMemoryTestKeyring.store.clear()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"[central]\nurl = '{site.url}/'\n[secrets]\nstore = 'keyring'\n"
        "keyring_backend = 'tests.test_secrets.InMemoryTestKeyring'\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(enrolment_url(site.url, site.enrollment_code) + "\r\n"))
    assert main(["enroll", "--config", str(config), "--scan"]) == 0
    assert len(InMemoryTestKeyring.store[("kiosk-client", "device-token")]) > 30
    with pytest.raises(SystemExit) as refused:
        main(["enroll", "--config", str(config)])  # --code or --scan
    assert refused.value.code == 2
    assert "one of the arguments --code --scan is required" in capsys.readouterr().err


def test_the_kiosk_reads_what_the_service_manager_gave_it(tmp_path: Path) -> None:
    assert credentials_directory({}) is None
    with pytest.raises(SecretStoreError, match=r"\$CREDENTIALS_DIRECTORY is not set"):
        CredentialSecrets(credentials_directory({})).device_token()
    folder = tmp_path / "credentials"
    folder.mkdir()
    secrets = CredentialSecrets(credentials_directory({"CREDENTIALS_DIRECTORY": str(folder)}))
    assert secrets.device_token() is None  # not enrolled yet: the unit skips a missing credential
    with pytest.raises(SecretStoreError, match="missing: enrol this kiosk again"):
        secrets.outbox_key()
    (folder / DEVICE_TOKEN).write_bytes(b"tok-123\n")
    (folder / OUTBOX_KEY).write_bytes(bytes(range(32)))
    assert secrets.device_token() == "tok-123" and secrets.outbox_key() == bytes(range(32))
    (folder / OUTBOX_KEY).write_bytes(b"short")
    with pytest.raises(SecretStoreError, match="is not 32 bytes"):
        secrets.outbox_key()
    (folder / DEVICE_TOKEN).write_bytes("jeton-é".encode())
    with pytest.raises(SecretStoreError, match="not ASCII"):
        secrets.device_token()
    (folder / DEVICE_TOKEN).write_bytes(b"x" * 5000)
    with pytest.raises(SecretStoreError, match="larger than 4096 bytes"):
        secrets.device_token()
    with pytest.raises(SecretStoreError, match="enrol it as root"):
        secrets.store_device_token("tok")  # the running kiosk cannot seal


def test_the_sealer_refuses_what_cannot_work_before_a_code_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SecretStoreError, match="--with-key: expected one of auto, host, tpm2, host"):
        CredentialSealer(tmp_path, "password")
    with pytest.raises(SecretStoreError, match="systemd-creds is not installed"):
        CredentialSealer(tmp_path, "host", systemd_creds="no-such-systemd-creds")
    if os.geteuid() != 0:
        with pytest.raises(SecretStoreError, match="needs root"):
            CredentialSealer(tmp_path, "host")
        return
    with pytest.raises(SecretStoreError, match="is not a folder"):
        CredentialSealer(tmp_path / "absent", "host")
    has_tpm2 = subprocess.run(["systemd-creds", "has-tpm2", "--quiet"], timeout=30).returncode == 0
    assert CredentialSealer(tmp_path, "auto").with_key == ("host+tpm2" if has_tpm2 else "host")
    if not has_tpm2:
        with pytest.raises(SecretStoreError, match="no usable TPM2 chip"):
            CredentialSealer(tmp_path, "tpm2")


def test_the_configuration_chooses_the_store(tmp_path: Path) -> None:
    sealed = parse_settings(
        "[central]\nurl='https://c.example'\n[secrets]\nstore='systemd-credentials'\n", "k"
    )
    store = open_secrets(sealed, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert isinstance(store, CredentialSecrets) and store.device_token() is None
    keyring = parse_settings(
        "[central]\nurl='https://c.example'\n[secrets]\nkeyring_backend='tests.test_secrets.InMemoryTestKeyring'\n",
        "k",
    )
    assert isinstance(open_secrets(keyring, {"CREDENTIALS_DIRECTORY": str(tmp_path)}), KeyringSecrets)


def test_the_kiosk_says_what_to_do_when_it_has_no_sealed_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, "https://central.example.org")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "none-given"))
    assert main(["run", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "not enrolled: run `kiosk-client enroll" in err and "as root, then restart kiosk-session" in err
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert main(["run", "--config", str(config)]) == 1  # started by hand, not by kiosk-session.service
    assert "$CREDENTIALS_DIRECTORY is not set" in capsys.readouterr().err


def test_the_selftest_sees_whether_the_token_is_sealed(tmp_path: Path) -> None:
    from kiosk_client.tools.selftest import sealed_credentials_check

    check = sealed_credentials_check(tmp_path)
    assert not check["ok"] and "not enrolled" in check["detail"]
    (tmp_path / DEVICE_TOKEN).write_text("sealed")
    assert sealed_credentials_check(tmp_path)["ok"]
