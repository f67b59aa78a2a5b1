"""The figures of `bench field` from what a run recorded: frames shown, probe round trips, documents'
times; the kiosk/Chromium ratios, the issue's goals, and a readable rendering. Pure functions."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FREEZE_S = 0.2  # a gap between two frames shown longer than this is a freeze

# The figures, in the order they are printed: (key, label, unit).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("join_ms", "join (answer → clerk sees video)", "ms"),
    ("clerk_fps", "clerk sees: frames/s", ""),
    ("clerk_received_fps", "clerk's Chromium: frames received/s (getStats)", ""),
    ("clerk_decoded_fps", "clerk's Chromium: frames decoded/s (getStats)", ""),
    ("clerk_freezes_per_min", "clerk sees: freezes/min (gaps > 200 ms)", ""),
    ("clerk_frozen_s_per_min", "clerk sees: seconds frozen/min", "s"),
    ("clerk_longest_gap_ms", "clerk sees: longest gap", "ms"),
    ("kiosk_fps", "kiosk shows the clerk: frames/s", ""),
    ("kiosk_freezes_per_min", "kiosk shows the clerk: freezes/min", ""),
    ("kiosk_frozen_s_per_min", "kiosk shows the clerk: seconds frozen/min", "s"),
    ("rtt_p50_ms", "RTT p50 during the call (probe)", "ms"),
    ("rtt_p95_ms", "RTT p95 during the call (probe)", "ms"),
    ("ice_rtt_ms", "RTT, Chromium's ICE at the clerk (cross-check)", "ms"),
    ("rtt_documents_p50_ms", "RTT p50 while documents go", "ms"),
    ("rtt_documents_p95_ms", "RTT p95 while documents go", "ms"),
    ("clerk_freezes_per_min_documents", "clerk sees: freezes/min while documents go", ""),
    ("letter_s", "3-page letter: sent → received", "s"),
    ("batch_s", "10-page colour batch: sent → received", "s"),
    ("recovery_10s_cut_s", "after a 10 s cut: link back → clerk sees video", "s"),
    ("recovery_60s_cut_s", "after a 60 s cut: link back → clerk sees video", "s"),
    ("documents_lost", "documents lost", ""),
    ("call_drops", "call drops (outside cuts)", ""),
    ("up_queue_p95_ms", "uplink queue p95 (emulator)", "ms"),
    ("cpu_busy", "machine CPU busy (2 cores), steady window", ""),
)


def video_figures(frames: Sequence[float], start: float, end: float) -> dict[str, float]:
    """Frames/s, freezes/min, seconds frozen/min and the longest gap of the frames shown within
    [start, end]; the window's edges count as frames, so a picture that stopped shows as a freeze."""
    span = max(end - start, 1e-3)
    inside = sorted(t for t in frames if start <= t <= end)
    points = [start, *inside, end]
    gaps = [b - a for a, b in itertools.pairwise(points)]
    freezes = [g for g in gaps if g > FREEZE_S]
    return {
        "fps": round(len(inside) / span, 2),
        "freezes_per_min": round(len(freezes) * 60 / span, 2),
        "frozen_s_per_min": round(sum(freezes) * 60 / span, 2),
        "longest_gap_ms": round(max(gaps, default=0.0) * 1000, 1),
    }


def probe_samples(path: Path) -> list[tuple[float, float]]:
    """(wall s sent, rtt ms or -1 if lost) of the link probe's file."""
    samples = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                samples.append((float(parts[0]), float(parts[1])))
    return samples


def _at(ordered: Sequence[float], q: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0


def rtt_figures(samples: Sequence[tuple[float, float]], start: float, end: float) -> dict[str, float]:
    inside = [rtt for at, rtt in samples if start <= at <= end]
    answered = sorted(rtt for rtt in inside if rtt >= 0)
    return {
        "p50": _at(answered, 0.5),
        "p95": _at(answered, 0.95),
        "lost_percent": round(100 * (len(inside) - len(answered)) / max(len(inside), 1), 1),
    }


def first_after(frames: Sequence[float], moment: float) -> float | None:
    """Seconds from `moment` to the first frame shown after it."""
    later = [t for t in frames if t > moment]
    return round(min(later) - moment, 3) if later else None


def ratios(kiosk: dict[str, Any], chromium: dict[str, Any]) -> dict[str, float | None]:
    """kiosk / Chromium for every figure both have as a number (None where Chromium's is 0)."""
    out: dict[str, float | None] = {}
    for key, _, _ in FIGURES:
        a, b = kiosk.get(key), chromium.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float):
            out[key] = round(a / b, 2) if b else None
    return out


def goals(kiosk: dict[str, Any], chromium: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Issue 11's goals, each with whether this run met it (None: not measured in this run)."""

    def both(key: str) -> tuple[Any, Any]:
        return kiosk.get(key), (chromium or {}).get(key)

    def within(key: str, factor: float) -> bool | None:
        a, b = both(key)
        return None if a is None or b is None else bool(a <= factor * b)

    def plus_one(key: str) -> bool | None:
        a, b = both(key)
        return None if a is None or b is None else bool(a <= b + 1)

    def zero(key: str) -> bool | None:
        return None if kiosk.get(key) is None else kiosk.get(key) == 0

    recovery = kiosk.get("recovery_10s_cut_s")
    return {
        "call_drops": {"goal": "0 call drops", "met": zero("call_drops")},
        "clerk_freezes": {
            "goal": "clerk sees ≤ Chromium's freezes/min + 1",
            "met": plus_one("clerk_freezes_per_min"),
        },
        "kiosk_freezes": {
            "goal": "kiosk shows ≤ Chromium's freezes/min + 1",
            "met": plus_one("kiosk_freezes_per_min"),
        },
        "letter": {"goal": "letter ≤ 1.2 × Chromium's", "met": within("letter_s", 1.2)},
        "batch": {"goal": "batch ≤ 1.2 × Chromium's", "met": within("batch_s", 1.2)},
        "recovery_10s_cut": {
            "goal": "video back ≤ 1 s after a 10 s cut",
            "met": None if recovery is None else bool(recovery <= 1.0),
        },
        "documents_lost": {"goal": "0 documents lost", "met": zero("documents_lost")},
    }


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def render(result: dict[str, Any]) -> str:
    """The result for people: a table of the figures for both sides and the ratio, then the goals."""
    kiosk, chromium = result["kiosk"], result.get("chromium") or {}
    ratio = result.get("ratio") or {}
    lines = [
        f"bench field — profile {result['profile']}, {result['duration_s']} s of steady call measured",
        f"  {result['method']['order']}",
        f"  RTT: {result['method']['rtt']}",
        "",
        f"{'figure':<50} {'kiosk':>10} {'Chromium':>10} {'ratio':>7}",
    ]
    for key, label, unit in FIGURES:
        name = f"{label} ({unit})" if unit else label
        lines.append(
            f"{name:<50} {_cell(kiosk.get(key)):>10} {_cell(chromium.get(key)):>10} {_cell(ratio.get(key)):>7}"
        )
    lines.append("")
    for goal in result["goals"].values():
        met = {True: "met", False: "NOT MET", None: "not measured"}[goal["met"]]
        lines.append(f"  {goal['goal']:<50} {met}")
    return "\n".join(lines)
