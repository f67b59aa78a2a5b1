"""JSON from an untrusted peer, read with bounds that Python's json module does not have.

`json.loads` recurses once per nesting level (a few thousand `[` raise RecursionError, which escapes
`except ValueError` handlers), turns a 1e999 literal into infinity, and spends quadratic time
converting long integers. Every JSON text from the clerk's side goes through `loads` below.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 16
MAX_NUMBER_CHARS = 32

# Strings are removed before counting brackets: a "[" inside a string is not nesting.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class UnsafeJson(ValueError):
    """The text is not JSON, or not JSON within the bounds. The message says which, for the peer."""


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson(f"number longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson(f"number longer than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise UnsafeJson("number out of range")
    return value


def _constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not JSON")


def nesting_depth(text: str) -> int:
    depth = deepest = 0
    for char in _STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON text or raise UnsafeJson: invalid UTF-8 (and lone surrogates, which no valid
    UTF-8 text decodes to), nesting deeper than `max_depth`, numbers longer than MAX_NUMBER_CHARS,
    NaN/Infinity, or anything json itself refuses."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeJson("not valid UTF-8") from None
    else:
        text = raw
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeJson("not valid UTF-8") from None
    if nesting_depth(text) > max_depth:
        raise UnsafeJson(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except UnsafeJson:
        raise
    except (ValueError, RecursionError):
        raise UnsafeJson("not JSON") from None


def has_lone_surrogate(value: str) -> bool:
    """True for text that no UTF-8 decoder produced (a JSON \\ud800 escape can still yield it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
