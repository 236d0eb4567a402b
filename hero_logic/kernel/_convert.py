"""The one cattrs converter between model records and JSON-shaped Python values.

``to_json`` turns a record into dicts, lists and scalars that :func:`json.dumps` accepts;
``from_json`` builds a record back and refuses unknown keys. A structuring failure becomes an
:class:`~hero_logic.kernel.InvalidParams` whose ``data`` names each bad field.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import cattrs

from ._errors import InvalidParams

__all__ = ["converter", "dumps", "from_json", "to_json"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)
"""The project's single converter; register hooks here, never build a second one."""


def to_json(record: Any) -> Any:
    """The JSON-shaped form of ``record`` (an attrs record, or a list/dict of them)."""
    return converter.unstructure(record)


def from_json(cls: type[T], data: Any, *, context: str = "") -> T:
    """Build a ``cls`` from JSON-shaped ``data``; raise InvalidParams naming each bad field."""
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        problems = []
        for line in cattrs.transform_error(exc):
            why, _, path = line.partition(" @ ")
            problems.append({"field": path.removeprefix("$.") or "$", "error": why})
        raise InvalidParams.fields(problems, context=context or cls.__name__) from None
    except (TypeError, ValueError) as exc:
        raise InvalidParams.fields(
            [{"field": "$", "error": str(exc)}], context=context or cls.__name__
        ) from None


def dumps(value: Any) -> bytes:
    """Compact, strict JSON bytes of a JSON-shaped value (no NaN, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
