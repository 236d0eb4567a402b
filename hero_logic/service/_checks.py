"""The checks every service room shares: one way to name a bad field, a name, a list limit.

Each raises :class:`~hero_logic.kernel.InvalidParams` (-32602) whose ``data`` lists the field
and what is wrong with it, so a client can point at the input to fix.
"""

from __future__ import annotations

import json
from typing import Any

from hero_logic.kernel import InvalidParams

__all__ = ["MAX_LIST_LIMIT", "MAX_NAME_LENGTH", "canonical_json", "check_limit", "check_name", "check_offset", "invalid_field"]

MAX_NAME_LENGTH = 200
"""Longest name of a workflow or preset, in characters (and twice that in UTF-8 bytes)."""
MAX_LIST_LIMIT = 10_000
"""Largest ``limit`` of a list method."""


def invalid_field(field: str, error: str, *, context: str) -> InvalidParams:
    """An InvalidParams naming one bad ``field`` and what is wrong with it."""
    return InvalidParams.fields([{"field": field, "error": error}], context=context)


def check_name(name: str, *, context: str, field: str = "name", what: str = "the workflow") -> str:
    """``name`` without surrounding blanks; refused if empty, too long or not one printable line."""
    stripped = name.strip()
    if not stripped:
        raise invalid_field(field, f"must not be empty: give {what} a name", context=context)
    if len(stripped) > MAX_NAME_LENGTH or len(stripped.encode()) > 2 * MAX_NAME_LENGTH or not stripped.isprintable():
        raise invalid_field(
            field,
            f"must be one line of at most {MAX_NAME_LENGTH} printable characters (no control characters), got {stripped[:80]!r}",
            context=context,
        )
    return stripped


def check_limit(limit: int, *, context: str) -> None:
    """Refuse a list ``limit`` outside 1..MAX_LIST_LIMIT."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        msg = "limit"
        raise invalid_field(msg, f"must be between 1 and {MAX_LIST_LIMIT}, got {limit}", context=context)


def check_offset(offset: int, *, context: str) -> None:
    """Refuse a negative list ``offset``."""
    if offset < 0:
        msg = "offset"
        raise invalid_field(msg, f"must be 0 or more, got {offset}", context=context)


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no blanks: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
