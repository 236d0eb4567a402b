"""JSON on the C accelerator alone, so a flow process never imports ``json`` (and ``re``).

``import json`` pulls in ``re``, ``enum`` and friends: several milliseconds of every play's
cold start. The C module ``_json`` behind it needs none of that. This module gives the SDK a
strict ``loads`` and compact encoders built on it; the pure-Python ``json`` package is only
imported on a rare fallback path.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["encode_basestring", "load_own", "loads", "make_encoder"]

encode_basestring: Callable[[str], str] = _json.encode_basestring
"""``str`` → its JSON string literal, non-ASCII kept as is."""

_WHITESPACE = " \t\n\r"


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


class _Context:
    """The attributes the C scanner reads (those of ``json.JSONDecoder``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo: dict[str, Any] = {}  # noqa: RUF012 - read by the C scanner, which keeps its own


_scan = _json.make_scanner(_Context)  # type: ignore[arg-type]  # any object with these attributes


def loads(text: str | bytes | bytearray) -> Any:
    """The JSON value in ``text``; ValueError (with the position) if it is not strict JSON."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8")
    # A line as the SDK writes it starts with its value: no copy of the text to find it.
    start = 0 if text[:1] in ("{", "[") else len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        msg = f"expecting a JSON value at char {exc.value}"
        raise ValueError(msg) from None
    if end != len(text) and text[end:].strip(_WHITESPACE):
        msg = f"extra data after the JSON value at char {end}"
        raise ValueError(msg)
    return value


def load_own(text: str) -> Any:
    """The value in JSON this process's own encoders wrote: one compact value, nothing around
    it, so the scanner alone reads it (a step's output, on the hot path)."""
    return _scan(text, 0)[0]


def make_encoder(
    default: Callable[[Any], Any], *, sort_keys: bool, allow_nan: bool
) -> Callable[[Any], str]:
    """A compact, UTF-8-keeping encoder function, built once (no circular-reference checks:
    a circular value raises RecursionError, which callers handle)."""
    encoder = _json.make_encoder(
        None, default, encode_basestring, None, ":", ",", sort_keys, False, allow_nan
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode
