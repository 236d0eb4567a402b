"""Declared inputs and outputs of a flow: normalising ``@flow(inputs=..., outputs=...)``.

Shared by the decorator (at import time in the flow process) and by the service's static
reader of flow sources, so both agree on what a declaration means.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "FIELD_TYPES",
    "FieldError",
    "check_value",
    "doc_summary",
    "normalise_fields",
    "output_problem",
    "type_name",
]

FIELD_TYPES = ("string", "number", "integer", "boolean", "object", "array")
_ALIASES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "dict": "object",
    "list": "array",
}
_FIELD_KEYS = ("type", "field_type", "required", "description", "default")


class FieldError(ValueError):
    """A declared input or output that cannot be understood (the message says why)."""


def _field_type(raw: Any, where: str) -> str:
    if isinstance(raw, type):
        raw = raw.__name__
    if isinstance(raw, str):
        name = _ALIASES.get(raw, raw)
        if name in FIELD_TYPES:
            return name
    msg = (
        f"{where} has unknown type {raw!r}: use one of {', '.join(FIELD_TYPES)} "
        f"(or the Python names {', '.join(_ALIASES)})"
    )
    raise FieldError(msg)


def _field(name: Any, spec: Any, what: str) -> dict[str, Any]:
    where = f"{what[:-1]} {name!r}"
    if not isinstance(name, str) or not name:
        msg = f"{what} names must be non-empty strings, got {name!r}"
        raise FieldError(msg)
    if not isinstance(spec, dict):
        return {
            "name": name,
            "field_type": _field_type(spec, where),
            "description": "",
            "required": True,
            "default": None,
        }
    unknown = sorted(str(k) for k in spec if k not in _FIELD_KEYS and k != "name")
    if unknown:
        msg = f"{where} has unknown key(s) {', '.join(map(repr, unknown))}: allowed are {', '.join(_FIELD_KEYS)}"
        raise FieldError(msg)
    raw_type = spec.get("type", spec.get("field_type", "string"))
    description = spec.get("description", "")
    if not isinstance(description, str):
        msg = f"{where} description must be a string, got {description!r}"
        raise FieldError(msg)
    required = spec.get("required", "default" not in spec)
    if not isinstance(required, bool):
        msg = f"{where} 'required' must be true or false, got {required!r}"
        raise FieldError(msg)
    return {
        "name": name,
        "field_type": _field_type(raw_type, where),
        "description": description,
        "required": required,
        "default": spec.get("default"),
    }


def normalise_fields(spec: Any, what: str = "inputs") -> list[dict[str, Any]] | None:
    """Declared fields as a list of ``{name, field_type, description, required, default}``.

    ``spec`` is ``None`` (nothing declared), a dict ``{name: type_or_spec}`` where a spec is a
    type name (``"string"``, ``"str"``, ``str``) or a dict with ``type``, ``required``,
    ``description`` and ``default``; or a list of such dicts each carrying its ``name``. A field
    is required unless it says otherwise or has a default. Raises ``FieldError`` (a
    ``ValueError``) naming the field and the problem.
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        return [_field(name, item, what) for name, item in spec.items()]
    if isinstance(spec, list | tuple):
        fields = []
        for item in spec:
            if not isinstance(item, dict) or "name" not in item:
                msg = f"{what} given as a list need dicts with a 'name', got {item!r}"
                raise FieldError(msg)
            fields.append(_field(item["name"], item, what))
        return fields
    msg = f"{what} must be a dict like {{'prompt': 'string'}}, got {type(spec).__name__}"
    raise FieldError(msg)


def type_name(value: Any) -> str:
    """The JSON type of ``value`` in the words of FlowField (``"null"`` for None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def check_value(field_type: str, value: Any) -> bool:
    """Whether ``value`` is of the JSON type ``field_type`` (an integer is also a number)."""
    actual = type_name(value)
    return actual == field_type or (field_type == "number" and actual == "integer")


def doc_summary(doc: str | None) -> str:
    """The first paragraph of a docstring, its lines joined by spaces ("" when there is none)."""
    if not doc:
        return ""
    lines: list[str] = []
    for raw in doc.strip().splitlines():
        line = raw.strip()
        if not line:
            break
        lines.append(line)
    return " ".join(lines)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def output_problem(name: str, outputs: list[dict[str, Any]], result: Any) -> str | None:
    """Why ``result``, returned by flow ``name``, does not match its declared ``outputs``, or None."""
    if not isinstance(result, dict):
        names = ", ".join(field["name"] for field in outputs)
        return (
            f"flow {name!r} declares outputs ({names}) but returned {type_name(result)} "
            f"{_short(result)}: return a dict with those keys or change the @flow outputs"
        )
    for field in outputs:
        field_name, field_type = field["name"], field["field_type"]
        if field_name not in result:
            if field["required"]:
                keys = ", ".join(map(repr, result)) or "none"
                return (
                    f"flow {name!r} declares output {field_name!r} ({field_type}) but its result "
                    f"has no such key (keys: {keys}): add it or mark it required=False"
                )
            continue
        value = result[field_name]
        if value is None and not field["required"]:
            continue
        if not check_value(field_type, value):
            return (
                f"flow {name!r} declares output {field_name!r} as {field_type}, got "
                f"{_short(value)} ({type_name(value)}): return a {field_type} or change the @flow outputs"
            )
    return None
