"""JSON from an untrusted peer, read with bounds that Python's json module does not have.

`json.loads` recurses once per nesting level (a few thousand `[` raise RecursionError, which escapes
`except ValueError` handlers), turns a 1e999 literal into infinity, and spends quadratic time
converting long integers. Every JSON text from the clerk's side goes through `loads` below.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 16
MAX_NUMBER_CHARS = 32

# Strings are removed before counting brackets: a "[" inside a string is not nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


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
    """The deepest nesting of brackets outside strings, counted by C iterators (a Python loop over a
    wide 512 KiB array held the central's event loop for ~90 ms)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


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
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise UnsafeJson(f"nested deeper than {max_depth} levels")
    try:
        data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except UnsafeJson:
        raise
    except (ValueError, RecursionError):
        raise UnsafeJson("not JSON") from None
    # Valid UTF-8 holds no lone surrogate, so only an escape can make one ("\ud800"): nothing that
    # stores, hashes or sends the text back could encode it.
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeJson("holds an unpaired surrogate escape") from None
    return data


def has_lone_surrogate(value: str) -> bool:
    """True for text that no UTF-8 decoder produced (a JSON \\ud800 escape can still yield it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
