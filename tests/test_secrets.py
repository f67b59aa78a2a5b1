"""The device token's keyring: an explicitly chosen backend, never a plaintext or null one."""

from __future__ import annotations

import keyring.backend
import pytest
from keyring.compat import properties

from kiosk_client.adapters.secrets_keyring import KeyringSecrets, load_backend
from kiosk_client.core.errors import SecretStoreError


class InMemoryTestKeyring(keyring.backend.KeyringBackend):
    """A fake backend for this test only (CI has no Secret Service daemon)."""

    priority = 1  # type: ignore[assignment]
    store: dict[tuple[str, str], str] = {}  # noqa: RUF012

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture(autouse=True)
def empty_test_keyring() -> None:
    InMemoryTestKeyring.store.clear()


class UnusableKeyring(InMemoryTestKeyring):
    # Like SecretService without a D-Bus session: keyring backends say so by raising from priority.
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("no D-Bus session")


@pytest.mark.parametrize(
    "path",
    [
        "keyrings.alt.file.PlaintextKeyring",
        "keyring.backends.fail.Keyring",
        "keyring.backends.null.Keyring",
        "keyring.backends.chainer.ChainerBackend",
    ],
)
def test_unsafe_backends_are_refused(path: str) -> None:
    with pytest.raises(SecretStoreError, match="not safe"):
        load_backend(path)


def test_unknown_or_unusable_backends_are_refused() -> None:
    with pytest.raises(SecretStoreError, match="cannot be loaded"):
        load_backend("nowhere.Keyring")
    with pytest.raises(SecretStoreError, match="not a keyring backend"):
        load_backend("builtins.dict")
    with pytest.raises(SecretStoreError, match="not usable on this machine: no D-Bus session"):
        load_backend(f"{__name__}.UnusableKeyring")


def test_the_token_round_trips_through_the_chosen_backend() -> None:
    secrets = KeyringSecrets(f"{__name__}.InMemoryTestKeyring")
    assert secrets.device_token() is None
    secrets.store_device_token("s3cret")
    assert secrets.device_token() == "s3cret"


def test_the_outbox_key_is_made_once_kept_in_the_keyring_and_checked() -> None:
    first = KeyringSecrets(f"{__name__}.InMemoryTestKeyring").outbox_key()
    again = KeyringSecrets(f"{__name__}.InMemoryTestKeyring").outbox_key()
    assert len(first) == 32 and first == again  # documents kept before a restart stay readable
    InMemoryTestKeyring.store[("kiosk-client", "outbox-key")] = "not base64!"
    with pytest.raises(SecretStoreError, match="not base64"):
        KeyringSecrets(f"{__name__}.InMemoryTestKeyring").outbox_key()
    InMemoryTestKeyring.store[("kiosk-client", "outbox-key")] = "c2hvcnQ="
    with pytest.raises(SecretStoreError, match="not 32 bytes"):
        KeyringSecrets(f"{__name__}.InMemoryTestKeyring").outbox_key()
