"""Exponential backoff with full jitter, so a fleet of kiosks does not hammer a recovering central."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base_s: float = 1.0, cap_s: float = 120.0, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures, 30))
        self.failures += 1
        # Never below half the base so a flapping central is not retried in a tight loop.
        return max(self.base_s / 2, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.failures = 0
