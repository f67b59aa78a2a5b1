"""The loudness of the clerk's voice (and of the kiosk's own sounds), in a few large steps.

A citizen hard of hearing touches « Son + »; the next citizen starts at the default again. Steps of
4 dB: small enough that one touch never startles, large enough that each touch is heard (3 dB is
barely noticed); the highest step is +12 dB, which a soft limiter keeps from clipping harshly.
"""

from __future__ import annotations

DEFAULT_LEVEL = 3
MAX_LEVEL = 6
STEP_DB = 4.0


def clamp_level(level: int) -> int:
    return max(1, min(MAX_LEVEL, level))


def gain(level: int) -> float:
    """The linear gain applied to the received audio at this level (1.0 at the default)."""
    return float(10 ** ((clamp_level(level) - DEFAULT_LEVEL) * STEP_DB / 20))
