"""The device token and the outbox key as systemd credentials: sealed on the disk, clear only in memory.

`kiosk-client enroll` (as root) seals them with `systemd-creds encrypt` into /etc/credstore.encrypted:
with the TPM2 chip and this installation's host key (/var/lib/systemd/credential.secret) where a TPM2
is present, with the host key alone otherwise. kiosk-session.service names them in
`LoadCredentialEncrypted=`; the service manager decrypts them at each start into a memory-backed folder
only that service's user can read, `$CREDENTIALS_DIRECTORY`, where this adapter reads them. Nobody
types a password at boot. What protects them: with a TPM2, a copy of the disk is useless without the
chip; with the host key alone, the key is on the same disk, so a full copy of the disk can decrypt them
(the README says so) — it still keeps them out of backups of /etc and out of reach of the kiosk user
and every other unprivileged user."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ..core.errors import SecretStoreError

DEVICE_TOKEN = "kiosk-device-token"
OUTBOX_KEY = "kiosk-outbox-key"
CREDSTORE = Path("/etc/credstore.encrypted")  # searched by name by LoadCredentialEncrypted= (systemd ≥ 252)
KEYS = ("auto", "host", "tpm2", "host+tpm2")
OUTBOX_KEY_BYTES = 32
TOKEN_MAX_BYTES = 4096


def credentials_directory(environ: Mapping[str, str]) -> Path | None:
    """The folder the service manager put this service's credentials in, if it did."""
    value = environ.get("CREDENTIALS_DIRECTORY", "")
    return Path(value) if value else None


class CredentialSealer:
    """Seals secrets with systemd-creds into the credential store (root only). Checks everything it can
    before a one-time enrolment code is spent: root, systemd-creds, the store, the key."""

    def __init__(
        self, store: Path = CREDSTORE, with_key: str = "auto", systemd_creds: str = "systemd-creds"
    ) -> None:
        if with_key not in KEYS:
            raise SecretStoreError(f"--with-key: expected one of {', '.join(KEYS)}, got {with_key!r}")
        tool = shutil.which(systemd_creds)
        if tool is None:
            raise SecretStoreError("systemd-creds is not installed (it comes with systemd 250 and later)")
        if os.geteuid() != 0:
            raise SecretStoreError(
                "sealing the device token needs root (systemd-creds' keys are root's): run the enrolment as root"
            )
        if not store.is_dir() or store.is_symlink():
            raise SecretStoreError(
                f"the credential store {store} is not a folder (run install-kiosk.sh first)"
            )
        self.store = store
        self._tool = tool
        self.with_key = self._resolve(with_key)

    def _resolve(self, with_key: str) -> str:
        if with_key == "host":
            return with_key
        has_tpm2 = (
            subprocess.run([self._tool, "has-tpm2", "--quiet"], capture_output=True, timeout=30).returncode
            == 0
        )
        if with_key == "auto":
            # The TPM2 chip binds the secret to this machine; the host key to this installation. Both:
            # a disk copy alone, or the machine booted from another disk, cannot decrypt.
            return "host+tpm2" if has_tpm2 else "host"
        if "tpm2" in with_key and not has_tpm2:
            raise SecretStoreError(
                f"--with-key={with_key}: this machine has no usable TPM2 chip (systemd-creds has-tpm2)"
            )
        return with_key

    def has(self, name: str) -> bool:
        return (self.store / name).is_file()

    def seal(self, name: str, data: bytes) -> None:
        """Encrypts `data` under `name` (embedded: a renamed file does not decrypt), checks that it decrypts
        back, and only then replaces the stored one; the file is root's, mode 0600."""
        sealed = self._run(
            ["encrypt", f"--with-key={self.with_key}", f"--name={name}", "-", "-"], data, "seal"
        )
        temporary = self.store / f".{name}.{secrets.token_hex(4)}.new"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(sealed)
                out.flush()
                os.fsync(out.fileno())
            if self._run(["decrypt", f"--name={name}", str(temporary), "-"], b"", "check") != data:
                raise SecretStoreError(f"the sealed {name} does not decrypt to what was sealed")
            temporary.replace(self.store / name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    def _run(self, args: list[str], data: bytes, what: str) -> bytes:
        try:
            done = subprocess.run([self._tool, *args], input=data, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise SecretStoreError(f"systemd-creds did not {what} the credential within 60 s") from None
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            raise SecretStoreError(
                f"systemd-creds could not {what} the credential: {detail[-1] if detail else done.returncode}"
            )
        return done.stdout


class CredentialSecrets:
    """The secrets port on systemd credentials: reads what the service manager decrypted; stores (at
    enrolment, as root) through a sealer."""

    def __init__(self, directory: Path | None, sealer: CredentialSealer | None = None) -> None:
        self._directory = directory
        self._sealer = sealer

    def _read(self, name: str, limit: int) -> bytes | None:
        if self._directory is None:
            raise SecretStoreError(
                "$CREDENTIALS_DIRECTORY is not set: the sealed device token reaches the kiosk only when "
                "kiosk-session.service starts it (LoadCredentialEncrypted=)"
            )
        path = self._directory / name
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretStoreError(f"cannot read the credential {name}: {exc.strerror}") from None
        if len(data) > limit:
            raise SecretStoreError(f"the credential {name} is larger than {limit} bytes")
        return data

    def device_token(self) -> str | None:
        data = self._read(DEVICE_TOKEN, TOKEN_MAX_BYTES)
        if data is None:
            return None
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise SecretStoreError(
                f"the credential {DEVICE_TOKEN} is not a device token (not ASCII)"
            ) from None
        return token or None

    def outbox_key(self) -> bytes:
        key = self._read(OUTBOX_KEY, OUTBOX_KEY_BYTES)
        if key is None:
            raise SecretStoreError(
                f"the credential {OUTBOX_KEY} is missing: enrol this kiosk again (as root)"
            )
        if len(key) != OUTBOX_KEY_BYTES:
            raise SecretStoreError(f"the credential {OUTBOX_KEY} is not {OUTBOX_KEY_BYTES} bytes")
        return key

    def store_device_token(self, token: str) -> None:
        """Seals the token, and a new outbox key if there is none yet (documents that wait in the outbox
        stay readable after an enrolment again)."""
        if self._sealer is None:
            raise SecretStoreError("the kiosk cannot store its credentials itself: enrol it as root")
        if not token or not token.isascii() or not token.isprintable() or len(token) > TOKEN_MAX_BYTES:
            raise SecretStoreError("the central gave a device token that cannot be stored")
        if not self._sealer.has(OUTBOX_KEY):
            self._sealer.seal(OUTBOX_KEY, secrets.token_bytes(OUTBOX_KEY_BYTES))
        self._sealer.seal(DEVICE_TOKEN, token.encode("ascii"))
