"""The scanner worker's order of work, with a fake pyinsane2 (the real driver is in test_scanner_sane)."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from kiosk_client.adapters import scanner_worker


class FakeOption:
    def __init__(self, constraint: list[str] | None = None) -> None:
        self.constraint = constraint
        self.value: Any = None
        self.capabilities = SimpleNamespace(is_active=lambda: True)


class FakeFeederRunningOut:
    """pyinsane2's MultipleScan on an empty feeder: read() cancels the job (sane_cancel, where SANE's
    test backend sometimes deadlocks), then raises StopIteration."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def _cancel(self) -> None:
        self.events.append("sane_cancel")

    def read(self) -> None:
        self._cancel()
        raise StopIteration


def fake_pyinsane2(events: list[str]) -> Any:
    device = SimpleNamespace(
        name="fake:0",
        options={"source": FakeOption(["Flatbed", "Automatic Document Feeder"])},
        scan=lambda multiple: SimpleNamespace(scan=FakeFeederRunningOut(events), images=[]),
    )
    return SimpleNamespace(get_devices=lambda: [device], maximize_scan_area=lambda d: None)


def test_the_kiosk_hears_the_feeder_is_empty_before_the_driver_is_cancelled() -> None:
    events: list[str] = []
    channel = scanner_worker.Channel(io.BytesIO())
    sent = channel.send
    channel.send = lambda header, payload=b"": (events.append(header["type"]), sent(header, payload))[-1]  # type: ignore[method-assign]
    job = {"op": "scan", "source": "feeder", "dpi": 100}
    scanner_worker.scan(fake_pyinsane2(events), job, channel)
    assert events == ["error", "sane_cancel"]  # a driver that hangs in sane_cancel can't hold the answer
