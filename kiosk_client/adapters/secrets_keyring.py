"""The device token in the OS keyring, on a backend chosen explicitly (never a silent plaintext one)."""

from __future__ import annotations

import base64
import binascii
import importlib
import logging
import secrets

import keyring
import keyring.backend
import keyring.errors

from ..core.errors import SecretStoreError

log = logging.getLogger(__name__)

SERVICE = "kiosk-client"
DEVICE_TOKEN = "device-token"
OUTBOX_KEY = "outbox-key"  # AES-256 key of the document outbox, base64
# Backends that would store secrets in clear or not at all.
REFUSED = ("plaintext", "keyrings.alt", "keyring.backends.fail", "keyring.backends.null", "chainer")


def load_backend(path: str) -> keyring.backend.KeyringBackend:
    if any(marker in path.lower() for marker in REFUSED):
        raise SecretStoreError(f"keyring backend {path!r} is not safe for device secrets")
    module_name, _, class_name = path.rpartition(".")
    try:
        backend_class = getattr(importlib.import_module(module_name), class_name)
        backend = backend_class()
    except (ImportError, AttributeError, ValueError) as exc:
        raise SecretStoreError(f"keyring backend {path!r} cannot be loaded: {exc}") from None
    if not isinstance(backend, keyring.backend.KeyringBackend):
        raise SecretStoreError(f"{path!r} is not a keyring backend")
    try:
        priority = backend_class.priority
    except Exception as exc:  # backends signal "not usable here" by raising from priority
        raise SecretStoreError(f"keyring backend {path!r} is not usable on this machine: {exc}") from None
    if priority <= 0:
        raise SecretStoreError(f"keyring backend {path!r} is not usable on this machine")
    return backend


class KeyringSecrets:
    def __init__(self, backend_path: str) -> None:
        self._backend = load_backend(backend_path)

    def device_token(self) -> str | None:
        try:
            return self._backend.get_password(SERVICE, DEVICE_TOKEN)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreError(f"the keyring refused to give the device token: {exc}") from None

    def store_device_token(self, token: str) -> None:
        try:
            self._backend.set_password(SERVICE, DEVICE_TOKEN, token)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreError(f"the keyring refused to store the device token: {exc}") from None

    def outbox_key(self) -> bytes:
        """The outbox's key, made and stored on first use."""
        try:
            stored = self._backend.get_password(SERVICE, OUTBOX_KEY)
            if stored is not None:
                key = base64.b64decode(stored, validate=True)
                if len(key) != 32:
                    raise SecretStoreError("the outbox key in the keyring is not 32 bytes")
                return key
            key = secrets.token_bytes(32)
            self._backend.set_password(SERVICE, OUTBOX_KEY, base64.b64encode(key).decode())
            return key
        except keyring.errors.KeyringError as exc:
            raise SecretStoreError(f"the keyring refused the outbox key: {exc}") from None
        except binascii.Error:
            raise SecretStoreError("the outbox key in the keyring is not base64") from None


class MemorySecrets:
    """Fake secret store for tests and the demo: the token lives only as long as the process."""

    def __init__(self, token: str | None = None) -> None:
        self._token = token
        self._outbox_key = secrets.token_bytes(32)

    def device_token(self) -> str | None:
        return self._token

    def store_device_token(self, token: str) -> None:
        self._token = token

    def outbox_key(self) -> bytes:
        return self._outbox_key
