"""The pieces a field test or bench needs around an emulated link (tools/link_emulator.py): the
reference central in the world namespace, a kiosk, a clerk and an appointment booked on it, and event
loops moved into a namespace so that every socket they open is on one side of the link."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..central.admin import CentralAdmin, Clerk
from ..runtime import LoopThread
from .central_process import CentralProcess
from .link_emulator import FieldLink, NetnsTransport, netns


def move_loop_into(loop: LoopThread, namespace: str, kept: list[Any]) -> None:
    """Every socket the loop's thread makes from now on (ICE, DTLS, HTTP) is in `namespace`."""

    async def enter() -> None:
        context = netns(namespace)
        context.__enter__()
        kept.append(context)  # never exited: the thread stays there until it ends

    loop.submit(enter()).result(timeout=5)


@contextlib.contextmanager
def central_beyond(link: FieldLink, db_path: Path) -> Iterator[CentralProcess]:
    """The reference central in the link's world namespace, on the world side's address: the kiosk
    side reaches it across the link; nothing in the root namespace does."""
    with CentralProcess(db_path, host=link.world_ip, wrap=link.netns_argv("world", [])) as central:
        yield central


@dataclass(frozen=True)
class Booking:
    """A kiosk waiting for enrolment and an appointment of one clerk on it."""

    enrollment_code: str
    clerk: Clerk
    appointment: dict[str, Any]

    @property
    def appointment_id(self) -> str:
        return str(self.appointment["id"])

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(str(self.appointment["start"]))


def book(link: FieldLink, central: CentralProcess, start: datetime, **config: Any) -> Booking:
    """Configure the central (quick joins and polls by default), make a kiosk, a clerk and an
    appointment at `start`. The admin calls are made from the world side: they do not load the link."""
    admin = CentralAdmin(central.url, central.admin_token, NetnsTransport(link.world_ns))
    try:
        admin.configure(
            **({"join_before_seconds": 2, "poll_interval_seconds": 1, "no_show_after_seconds": 600} | config)
        )
        kiosk_id = admin.create_kiosk("Borne 1", "France Services de la vallée")
        clerk = admin.create_clerk("Mme Martin", "CAF")
        code = admin.enrollment_code(kiosk_id)
        appointment = admin.create_appointment(kiosk_id, clerk, "CAF", start)
    finally:
        admin.close()
    return Booking(code, clerk, appointment)
