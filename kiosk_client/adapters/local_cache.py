"""What survives a restart, on disk, written atomically: the last good schedule and remote config,
the out-of-service state (a restart must not clear it without a passing reset check), and the
session reports the central has not had yet."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..core.crash_loop import RunHistory
from ..core.errors import MalformedResponse
from ..core.models import RemoteConfig, Schedule
from ..core.reset_check import OutOfService
from ..core.wire import parse_remote_config, parse_schedule, remote_config_to_document, schedule_to_document
from .atomic_file import write_atomically

log = logging.getLogger(__name__)


class FileCache:
    def __init__(self, folder: Path) -> None:
        self._schedule = folder / "schedule.json"
        self._config = folder / "remote-config.json"
        self._out_of_service = folder / "out-of-service.json"
        self._reports = folder / "pending-session-reports.json"
        self._runs = folder / "run-history.json"

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable cache file %s: %s", path, exc)
            return None

    def load_schedule(self) -> Schedule | None:
        document = self._read(self._schedule)
        if document is None:
            return None
        try:
            return parse_schedule(document.get("schedule"), document.get("etag"))
        except (MalformedResponse, AttributeError) as exc:
            log.error("ignoring the cached schedule: %s", exc)
            return None

    def save_schedule(self, schedule: Schedule) -> None:
        document = {"etag": schedule.etag, "schedule": schedule_to_document(schedule)}
        write_atomically(self._schedule, json.dumps(document).encode())

    def load_remote_config(self) -> RemoteConfig | None:
        document = self._read(self._config)
        if document is None:
            return None
        try:
            return parse_remote_config(document)
        except MalformedResponse as exc:
            log.error("ignoring the cached remote config: %s", exc)
            return None

    def save_remote_config(self, config: RemoteConfig) -> None:
        write_atomically(self._config, json.dumps(remote_config_to_document(config)).encode())

    def load_out_of_service(self) -> OutOfService | None:
        if not self._out_of_service.exists():
            return None
        document = self._read(self._out_of_service)
        try:
            return OutOfService.from_json(document)
        except ValueError as exc:
            # Unreadable is not "in service": the kiosk stays out until a reset check passes.
            log.error("unreadable out-of-service state (%s): staying out of service", exc)
            return OutOfService(0.0, None, ("unreadable_state",))

    def save_out_of_service(self, state: OutOfService | None) -> None:
        if state is None:
            self._out_of_service.unlink(missing_ok=True)
        else:
            write_atomically(self._out_of_service, json.dumps(state.to_json()).encode())

    def load_pending_reports(self) -> list[dict[str, object]]:
        document = self._read(self._reports)
        if not isinstance(document, list):
            return []
        return [r for r in document if isinstance(r, dict)]

    def save_pending_reports(self, reports: list[dict[str, object]]) -> None:
        write_atomically(self._reports, json.dumps(reports).encode())

    def load_run_history(self) -> RunHistory | None:
        document = self._read(self._runs)
        if document is None:
            return None
        try:
            return RunHistory.from_json(document)
        except ValueError as exc:
            log.error("ignoring the unreadable run history: %s", exc)
            return None

    def save_run_history(self, history: RunHistory) -> None:
        write_atomically(self._runs, json.dumps(history.to_json()).encode())
