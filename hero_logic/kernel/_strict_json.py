"""Strict JSON for what comes from outside: finite numbers only (no NaN, Infinity or a float too
large for a double), no lone surrogate, nesting no deeper than :data:`MAX_JSON_DEPTH`, valid UTF-8.

One reader for every door (JSON-RPC, the ingress's resume links and webhooks): a value any of
them takes can be stored and sent back as JSON, so a hostile body is refused at the door (the
caller's error) and never fails later inside the service (a 500, or a play's status that cannot
be written).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "loads_strict"]

MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a document may have."""


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not JSON: send finite numbers only"
    raise ValueError(msg)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        msg = f"number {text[:40]} is too large for a float"
        raise ValueError(msg)
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_tree(value: Any, check_strings: bool) -> str | None:
    """Walk a decoded document; return why it is not acceptable, or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_JSON_DEPTH:
                return f"nesting deeper than {MAX_JSON_DEPTH} levels"
            for key, item in node.items():
                if check_strings and _SURROGATE.search(key):
                    return f"lone surrogate in key {key[:40]!a}"
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_JSON_DEPTH:
                return f"nesting deeper than {MAX_JSON_DEPTH} levels"
            stack.extend((item, depth + 1) for item in node)
        elif check_strings and isinstance(node, str) and _SURROGATE.search(node):
            return f"lone surrogate in string {node[:40]!a}: \\u escapes of surrogates must come in pairs"
    return None


def loads_strict(data: bytes | str) -> Any:
    """The strict JSON value in ``data``; ValueError saying what is wrong if it is not one."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        msg = f"body is not valid UTF-8 (byte {exc.start})"
        raise ValueError(msg) from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        msg = f"nesting deeper than {MAX_JSON_DEPTH} levels"
        raise ValueError(msg) from None
    # Both checks are skipped, at C speed, for the usual small document.
    deep = text.count("[") + text.count("{") > MAX_JSON_DEPTH
    escapes = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
    if deep or escapes:
        why = _check_tree(value, escapes)
        if why is not None:
            raise ValueError(why)
    return value
