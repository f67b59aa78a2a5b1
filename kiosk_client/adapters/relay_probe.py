"""The pre-flight's TURN check: one Allocate on each TURN URL the central gave, as aiortc would use them
(aioice's TURN client), released at once. The first that succeeds is enough: the call tries its
paths in order (core/ice_paths.py)."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aioice import stun as aioice_stun
from aiortc import RTCIceServer
from aiortc.rtcicetransport import connection_kwargs

from ..core.models import IceServer
from ..core.preflight import NOT_CONFIGURED, OK
from .rtc_aiortc import allocate_once

log = logging.getLogger(__name__)

ALLOCATE_TIMEOUT_S = 5.0


class AioiceRelayProbe:
    async def allocate(self, ice_servers: tuple[IceServer, ...]) -> str:
        failures: list[str] = []
        for server in ice_servers:
            for url in server.urls:
                if not url.startswith(("turn:", "turns:")):
                    continue
                kwargs = connection_kwargs(
                    [RTCIceServer(urls=url, username=server.username, credential=server.credential)]
                )
                if "turn_server" not in kwargs:
                    failures.append(f"{url}: not usable by aiortc")
                    continue
                problem = await self._allocate(kwargs)
                if problem is None:
                    return OK
                failures.append(f"{url}: {problem}")
        if not failures:
            return NOT_CONFIGURED
        log.warning("pre-flight: no TURN allocation: %s", "; ".join(failures))
        return "failed: " + "; ".join(failures)[:300]

    @staticmethod
    async def _allocate(kwargs: dict[str, Any]) -> str | None:
        try:
            await allocate_once(kwargs, ALLOCATE_TIMEOUT_S)
        except aioice_stun.TransactionFailed as exc:
            return f"refused ({exc})"
        except ssl.SSLCertVerificationError as exc:
            return f"untrusted certificate ({exc.verify_message})"
        except (TimeoutError, OSError, ConnectionError, aioice_stun.TransactionError) as exc:
            return f"no answer ({type(exc).__name__})"
        return None
