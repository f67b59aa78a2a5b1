"""The project's error tree. Adapters translate library exceptions into these."""

from __future__ import annotations


class KioskError(Exception):
    """Base of every error the kiosk raises on purpose."""


class ConfigError(KioskError):
    """A configuration file is unreadable or holds a wrong value; says which file, key and what was expected."""

    def __init__(self, file: str, key: str | None, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class CentralError(KioskError):
    """Any failure talking to the central."""


class CentralUnavailable(CentralError):
    """The central could not be reached, timed out, or answered with a server error (5xx)."""


class CentralRejected(CentralError):
    """The central refused the request (4xx other than authentication)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"central refused the request ({status} {code}): {message}")


class AuthenticationFailed(CentralRejected):
    """The device token (or enrolment code) was refused: the kiosk must be enrolled again."""


class MalformedResponse(CentralError):
    """The central answered something that does not follow the Central API."""


class CallError(KioskError):
    """The WebRTC call could not be set up or broke."""


class DeviceUnavailable(KioskError):
    """A device (camera, microphone, speaker, scanner) is missing or failed."""


class SecretStoreError(KioskError):
    """The OS keyring is missing, unsafe (plaintext) or refused access."""


class ScannerError(DeviceUnavailable):
    """A scan could not be done or was cut short. `pages_done` pages were delivered before it; they
    are kept. `code` is stable (for the UI's wording and for logs)."""

    code = "scanner_failed"

    def __init__(self, message: str, pages_done: int = 0) -> None:
        self.pages_done = pages_done
        super().__init__(message)


class NoScanner(ScannerError):
    code = "no_scanner"


class FeederEmpty(ScannerError):
    code = "feeder_empty"


class PaperJammed(ScannerError):
    code = "paper_jammed"


class ScannerDisconnected(ScannerError):
    code = "scanner_disconnected"


class ScannerNotResponding(ScannerError):
    code = "scanner_not_responding"


class SourceUnsupported(ScannerError):
    code = "source_unsupported"


class OutboxError(KioskError):
    """The document outbox could not keep or give back a document."""


class OutboxFull(OutboxError):
    """Not enough disk space to keep the document safely: it was not kept (and not sent)."""


class OutboxCorrupt(OutboxError):
    """A stored document fails its authentication (tampered, truncated, or another key)."""


class EnrolmentInputError(KioskError):
    """What was typed or scanned to enrol the kiosk is not an enrolment code for its central."""
