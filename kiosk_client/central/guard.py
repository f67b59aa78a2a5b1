"""What stands between the reference central and a hostile client: rate limits on guessing
(enrolment codes, walk-in codes, clerk and admin tokens), CORS for a council's own clerk app, the clerk console's
security headers, and constant-time secret comparison."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..core import navigation
from .errors import ApiError, error_body
from .turn import TurnOptions

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` attempts at once, then `per_minute` more each minute."""

    burst: int
    per_minute: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_minute <= 0:
            raise ValueError("a rate limit needs burst >= 1 and per_minute > 0")


@dataclass(frozen=True)
class FailureWindow:
    """At most `failures` refused attempts within any `window_s` seconds; the next attempt waits until
    the oldest of them has left the window."""

    failures: int
    window_s: float

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window_s <= 0:
            raise ValueError("a failure window needs failures >= 1 and window_s > 0")


@dataclass(frozen=True)
class CentralOptions:
    """The reference central's own settings (the kiosk config lives in its database instead)."""

    # Web origins of clerk apps allowed to call the clerk API from a browser (CORS), normalised.
    clerk_origins: tuple[str, ...] = ()
    # Enrolment attempts from one client address, successful or not.
    enrolment_per_address: RateLimit = RateLimit(5, 5)
    # Failed enrolments from all addresses together. A wrong code names no kiosk, so this one bucket
    # is what protects every kiosk's outstanding codes against guessing spread over many addresses.
    enrolment_failures: RateLimit = RateLimit(30, 30)
    # Unknown clerk or admin tokens from one client address.
    token_failures_per_address: RateLimit = RateLimit(20, 20)
    # The TURN server whose time-limited credentials the central hands to kiosks and clerks (with the
    # ICE servers of their config); None: only the ICE servers set in the kiosk config are served.
    turn: TurnOptions | None = None
    # Walk-in codes, which a clerk reads out over the phone to the visitor centre's staff: how long one
    # lives, how many one clerk may have live at once (each live code is one more right answer for a
    # guesser: making another withdraws the oldest), how long the session it opens lasts, and how many
    # wrong codes one kiosk may try (six digits: guessing must stay hopeless).
    walk_in_code_lifetime: timedelta = timedelta(minutes=10)
    walk_in_codes_per_clerk: int = 3
    walk_in_duration: timedelta = timedelta(minutes=30)
    walk_in_failures_per_kiosk: FailureWindow = FailureWindow(5, 600.0)
    # A clerk's « available for walk-ins » lasts this long after the console last said it is still
    # there (it says so every third of it): a closed or crashed console stops taking walk-ins soon.
    walk_in_availability_lasts: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clerk_origins", tuple(web_origin(o) for o in self.clerk_origins))


def web_origin(value: str) -> str:
    """`scheme://host[:port]` as a browser writes it in the Origin header, or ValueError."""
    origin = navigation.web_origin(value)
    if origin is None:
        raise ValueError(f"{value!r} is not a web origin (expected e.g. https://clerks.example.org)")
    return origin


# --------------------------------------------------------------------------- rate limits


class TokenBuckets:
    """One token bucket per key (a client address, or one shared key), on the monotonic clock."""

    MAX_KEYS = 10_000

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when they were counted)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self._limit.burst), now))
        return min(float(self._limit.burst), tokens + (now - at) * self._limit.per_minute / 60.0)

    def __len__(self) -> int:
        """How many keys are held (the memory a scan from many addresses costs)."""
        return len(self._buckets)

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0: now), without using an attempt."""
        missing = 1.0 - self._tokens(key, self._clock())
        return 0.0 if missing <= 0 else missing * 60.0 / self._limit.per_minute

    def spend(self, key: str) -> None:
        now = self._clock()
        # Never below empty: requests in flight together may all fail after one check, and a flood
        # must not push the wait (for everyone sharing the key) ever further out.
        self._buckets[key] = (max(0.0, self._tokens(key, now) - 1.0), now)
        if len(self._buckets) > self.MAX_KEYS:
            self._forget(now)

    def take(self, key: str) -> float:
        """Use one attempt if there is one (0 returned), else the seconds until there is one."""
        waiting = self.wait(key)
        if waiting == 0:
            self.spend(key)
        return waiting

    def _forget(self, now: float) -> None:
        # A full bucket is the same as no bucket: dropping those keeps memory bounded under a scan
        # from many addresses without forgetting anyone who is still being held back. If that is not
        # enough, the least recently used half goes, so that this sort runs rarely.
        for key in [k for k in self._buckets if self._tokens(k, now) >= self._limit.burst]:
            del self._buckets[key]
        if len(self._buckets) > self.MAX_KEYS // 2:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for key in oldest[: len(oldest) - self.MAX_KEYS // 2]:
                del self._buckets[key]


class FailureWindows:
    """The times of recent failures, per key (a kiosk id: kiosks are few and enrolled, so the keys are
    bounded), on the monotonic clock."""

    def __init__(self, limit: FailureWindow, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self._limit.window_s:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        now = self._clock()
        times = self._recent(key, now)
        if len(times) < self._limit.failures:
            return 0.0
        return times[-self._limit.failures] + self._limit.window_s - now

    def failed(self, key: str) -> None:
        now = self._clock()
        times = self._recent(key, now)
        times.append(now)
        # Only the last `failures` matter for the wait: a kiosk hammering away costs no more memory.
        while len(times) > self._limit.failures:
            times.popleft()
        self._failures[key] = times


def too_many(what: str, wait_s: float) -> ApiError:
    retry_after = max(1, math.ceil(wait_s))
    return ApiError(
        429,
        "rate_limited",
        f"too many {what}: try again in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def client_address(request: web.Request) -> str:
    # The peer address only: X-Forwarded-For is whatever the client wants it to be. Behind a reverse
    # proxy every client shares the proxy's address (and its buckets).
    return request.remote or "unknown"


class Guard:
    """The central's rate limits, held for the life of the app."""

    def __init__(self, options: CentralOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.enrolment_per_address = TokenBuckets(options.enrolment_per_address, clock)
        self.enrolment_failures = TokenBuckets(options.enrolment_failures, clock)
        self.token_failures = TokenBuckets(options.token_failures_per_address, clock)
        self.walk_in_failures = FailureWindows(options.walk_in_failures_per_kiosk, clock)

    def enrolment_attempt(self, request: web.Request) -> None:
        """Before an enrolment is tried: 429 when this address, or everyone's failures, ran out."""
        waiting = self.enrolment_per_address.take(client_address(request))
        if waiting == 0:
            waiting = self.enrolment_failures.wait("*")
        if waiting > 0:
            log.debug("enrolment attempt from %s refused: rate limited", client_address(request))
            raise too_many("enrolment attempts", waiting)

    def enrolment_failed(self) -> None:
        was_open = self.enrolment_failures.wait("*") == 0
        self.enrolment_failures.spend("*")
        if was_open and self.enrolment_failures.wait("*") > 0:
            # Once per episode, not once per guess: someone may be guessing enrolment codes.
            log.warning("too many failed enrolments: enrolment is paused for every client for a while")

    def token_check_allowed(self, request: web.Request) -> None:
        """Before a clerk or admin token is checked: 429 when this address failed too often."""
        waiting = self.token_failures.wait(client_address(request))
        if waiting > 0:
            raise too_many("failed token checks", waiting)

    def token_failed(self, request: web.Request) -> None:
        self.token_failures.spend(client_address(request))

    def walk_in_allowed(self, kiosk_id: str) -> None:
        """Before a kiosk's walk-in code is checked: 429 once it tried too many wrong codes lately.
        Even a right code waits then, and is not used up."""
        waiting = self.walk_in_failures.wait(kiosk_id)
        if waiting > 0:
            retry_after = max(1, math.ceil(waiting))
            raise ApiError(
                429,
                "too_many_attempts",
                f"too many wrong walk-in codes from this kiosk: try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    def walk_in_failed(self, kiosk_id: str) -> None:
        was_open = self.walk_in_failures.wait(kiosk_id) == 0
        self.walk_in_failures.failed(kiosk_id)
        if was_open and self.walk_in_failures.wait(kiosk_id) > 0:
            log.warning("kiosk %s tried too many wrong walk-in codes: it waits a while", kiosk_id)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time: comparing digests hides the expected secret's length and content from timing,
    and never raises on non-ASCII input (hmac.compare_digest does on non-ASCII str)."""
    return hmac.compare_digest(_digest(given), _digest(expected))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


# --------------------------------------------------------------------------- CORS for clerk apps

# The clerk API: what a clerk token may call, and the protocol's schemas a clerk app may check its
# messages against. Kiosk and admin calls never come from a browser.
CLERK_API = re.compile(
    r"/api/v1/clerk/[a-z-]+(?:/keep-alive)?|/api/v1/appointments/[^/]+/(?:answer|hangup|call)|/api/v1/schemas/(?:[a-z.]+\.json)?"
    r"|/api/v1/clerk/appointments/[^/]+/rating"
)
CORS_METHODS = "GET, POST, PUT"
CORS_REQUEST_HEADERS = "Authorization, Content-Type, If-None-Match"
CORS_EXPOSED_HEADERS = "ETag, Retry-After"
CORS_MAX_AGE_S = 600


def is_clerk_api(path: str) -> bool:
    return CLERK_API.fullmatch(path) is not None


def _add_vary_origin(response: web.StreamResponse) -> None:
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"


def cors_middleware(clerk_origins: tuple[str, ...]) -> Middleware:
    allowed = frozenset(clerk_origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_clerk_api(request.path):
            return await handler(request)
        origin = request.headers.get("Origin")
        trusted = origin is not None and origin in allowed
        response: web.StreamResponse
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if trusted:
                response = web.Response(
                    status=204,
                    headers={
                        "Access-Control-Allow-Methods": CORS_METHODS,
                        "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
                        "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
                    },
                )
            else:
                response = web.json_response(
                    error_body("origin_not_allowed", "this origin is not an allowed clerk origin"),
                    status=403,
                )
        else:
            response = await handler(request)
        # Vary on every answer of these paths, allowed or not, so a cache never hands one origin's
        # answer to another.
        _add_vary_origin(response)
        if trusted:
            assert origin is not None
            # The exact origin, never "*": the Authorization header carries the clerk's token.
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        return response

    return cors


# --------------------------------------------------------------------------- the clerk console's headers

# What clerk.html and clerk.js need: their own script and style files (no inline code, no eval),
# fetch() to this central only, and nothing else. Video comes from MediaStreams (srcObject, which CSP
# does not govern); received documents are blob: links the clerk opens or saves — navigations and
# downloads, which CSP does not govern either. The fleet page shows a kiosk's screenshot as a blob:
# image (fetched with the admin token, which an <img src> could not send).
CONSOLE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob: mediastream:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
CONSOLE_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def is_console(path: str) -> bool:
    return path in ("/clerk", "/fleet") or path.startswith("/clerk/")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response the console's paths produce, files and errors alike."""
    if is_console(request.path):
        response.headers.update(CONSOLE_HEADERS)
    else:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
