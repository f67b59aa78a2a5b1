"""Running the reset check for the engine, keeping the kiosk out of service when it fails, and getting
the session reports to the central.

The engine calls `verify` when a session is over (and once at start-up) with what it knows of itself;
the screen's side runs on the Qt thread through the ResetScreenPort. Until a check has passed the
engine offers no call (`blocks_sessions`). A failed check is written to the local cache at once, so a
crash or a restart cannot clear it without a passing check. Reports wait in the cache until the
central has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .backoff import Backoff
from .errors import CentralError, CentralRejected
from .events import SessionRecord
from .ports import CentralPort, LocalCache, ResetScreenPort
from .reset_check import (
    ENGINE_CHECKS,
    SCREEN_CHECKS,
    Check,
    CheckResult,
    OutboxEntry,
    OutOfService,
    ResetReport,
    SettingsFound,
    Trigger,
    devices_released,
    failed,
    leftovers,
    outbox_as_allowed,
    passed,
    settings_at_default,
    verdict,
)
from .session_report import session_report

log = logging.getLogger(__name__)

SCREEN_TIMEOUT_S = 20.0  # the screen wipes and waits for the web profile's destruction: seconds, not more
REPORT_RETRY_BASE_S = 2.0
REPORT_RETRY_CAP_S = 60.0
REPORT_IDLE_S = 300.0
MAX_PENDING_REPORTS = 500  # a kiosk cut off for weeks keeps the newest; the oldest go first


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the engine knows of itself once a session is torn down."""

    call_open: bool
    volume: int
    default_volume: int
    desk_open: bool  # a session's documents desk (its pages in memory, a scan job) still exists
    appointment_id: str | None
    unconfirmed: frozenset[str]  # the document ids the ended session's desk still waited for
    print_open: bool = False  # a session's print desk (the clerk's document in memory) still exists


class ResetService:
    def __init__(
        self,
        central: CentralPort,
        cache: LocalCache,
        changed: Callable[[], None],
        *,
        device_files: Callable[[], list[str]],
        outbox: Callable[[], list[OutboxEntry]] | None = None,
        rng: random.Random | None = None,
        print_files: Callable[[], list[str]] | None = None,
    ) -> None:
        self._central = central
        self._cache = cache
        self._changed = changed  # the engine publishes its state and sends a heartbeat
        self._device_files = device_files
        self._outbox = outbox
        self._print_files = print_files  # the print renderer's temporary files (None: no printing)
        self._rng = rng or random.Random()
        self.screen: ResetScreenPort | None = None
        self.out_of_service: OutOfService | None = None
        # Out of service for a cause no reset check can clear (a crash loop): until staff act.
        self.held: OutOfService | None = None
        self.checking = True  # nothing starts before the start-up check has passed
        self.last_report: ResetReport | None = None
        self._pending: list[dict[str, object]] = []
        self._reports_due = asyncio.Event()

    @property
    def blocks_sessions(self) -> bool:
        return self.checking or self.out_of_service is not None

    def load(self) -> None:
        try:
            self.out_of_service = self._cache.load_out_of_service()
            self._pending = self._cache.load_pending_reports()
        except Exception:
            log.exception("the local cache could not be read; the start-up check decides")
        if self.out_of_service is not None:
            log.error(
                "out of service since the reset check of %s failed (%s); checking again",
                self.out_of_service.appointment_id or "start-up",
                ", ".join(self.out_of_service.failed_checks),
            )

    def hold(self, state: OutOfService | None) -> None:
        """Out of service whatever the checks say (None: released; the next check decides)."""
        self.held = state
        if state is not None:
            self.out_of_service = state
            self._changed()

    # ----------------------------------------------------------------- the check

    async def verify(self, trigger: Trigger, record: SessionRecord | None, facts: EngineFacts) -> ResetReport:
        self.checking = True
        self._changed()
        results = [*await self._screen_results(trigger), *await self._engine_results(facts)]
        required = ENGINE_CHECKS | (SCREEN_CHECKS if self.screen is not None else frozenset())
        report = verdict(trigger, facts.appointment_id, time.time(), results, required)
        self.last_report = report
        if report.passed:
            log.info("reset check passed (%s)", trigger)
            if self.held is not None:
                log.error("staying out of service: %s", ", ".join(self.held.failed_checks))
            elif self.out_of_service is not None:
                log.warning("back in service: the reset check passed")
            self.out_of_service = self.held
        else:
            for result in report.failures():
                log.error("reset check failed: %s: %s", result.check.value, result.detail)
            self.out_of_service = OutOfService.after(report)
        try:
            self._cache.save_out_of_service(self.out_of_service)
        except OSError:
            log.exception("the out-of-service state could not be written")
        self._queue(session_report(record, report))
        self.checking = False
        self._changed()
        return report

    async def _screen_results(self, trigger: Trigger) -> list[CheckResult]:
        if self.screen is None:
            return []
        try:
            async with asyncio.timeout(SCREEN_TIMEOUT_S):
                return await self.screen.wipe_and_check(trigger == "start_up")
        except TimeoutError:
            return [failed(check, "the screen did not answer") for check in sorted(SCREEN_CHECKS)]
        except Exception as exc:
            log.exception("the screen's reset checks failed")
            return [
                failed(check, f"could not check: {type(exc).__name__}") for check in sorted(SCREEN_CHECKS)
            ]

    async def _engine_results(self, facts: EngineFacts) -> list[CheckResult]:
        results = [
            settings_at_default(SettingsFound(volume=facts.volume, default_volume=facts.default_volume)),
            failed(Check.SCAN_TEMPORARIES, "the session's documents desk is still open")
            if facts.desk_open
            else passed(Check.SCAN_TEMPORARIES),
        ]
        try:
            results.append(devices_released(facts.call_open, await asyncio.to_thread(self._device_files)))
        except OSError as exc:
            results.append(failed(Check.DEVICES, f"open files cannot be listed: {exc.strerror}"))
        results.append(await self._printing_result(facts))
        if self._outbox is None:
            results.append(passed(Check.OUTBOX, "no outbox on this kiosk"))
        else:
            try:
                entries = await asyncio.to_thread(self._outbox)
                results.append(
                    outbox_as_allowed(entries, facts.appointment_id, facts.unconfirmed, time.time())
                )
            except Exception as exc:
                log.exception("the outbox could not be listed")
                results.append(failed(Check.OUTBOX, f"the outbox cannot be listed: {type(exc).__name__}"))
        return results

    async def _printing_result(self, facts: EngineFacts) -> CheckResult:
        if facts.print_open:
            return failed(Check.PRINT_FILES, "the session's print desk is still open")
        if self._print_files is None:
            return passed(Check.PRINT_FILES, "no printing on this kiosk")
        try:
            found = await asyncio.to_thread(self._print_files)
        except OSError as exc:
            return failed(Check.PRINT_FILES, f"the print folder cannot be listed: {exc.strerror}")
        return leftovers(Check.PRINT_FILES, found, "print file(s)")

    # ----------------------------------------------------------------- the reports

    def _queue(self, report: dict[str, object]) -> None:
        self._pending = [*self._pending, report][-MAX_PENDING_REPORTS:]
        self._save_pending()
        self._reports_due.set()

    def _save_pending(self) -> None:
        try:
            self._cache.save_pending_reports(self._pending)
        except OSError:
            log.exception("the session reports could not be written; they are kept in memory")

    def central_is_back(self) -> None:
        if self._pending:
            self._reports_due.set()

    @property
    def pending_reports(self) -> int:
        return len(self._pending)

    async def report_loop(self) -> None:
        """Oldest first; a central that is down gets them later (after a back-off, or as soon as the
        schedule poll reaches it again)."""
        backoff = Backoff(base_s=REPORT_RETRY_BASE_S, cap_s=REPORT_RETRY_CAP_S, rng=self._rng)
        while True:
            delay = REPORT_IDLE_S
            while self._pending:
                report = self._pending[0]
                try:
                    await self._central.post_session_report(report)
                except CentralRejected as exc:
                    # Refused as it is: it would be refused again. Logged, not retried for ever.
                    log.error("the central refused a session report: %s", exc)
                except CentralError as exc:
                    log.warning("session report not delivered yet (%d waiting): %s", len(self._pending), exc)
                    delay = backoff.next_delay()
                    break
                else:
                    log.info("session report delivered")
                    backoff.reset()
                self._pending = [r for r in self._pending if r is not report]
                self._save_pending()
            self._reports_due.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reports_due.wait(), timeout=delay)
