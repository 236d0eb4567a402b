"""Checking values against a flow's declared fields (pure functions).

Used for play inputs (and, later, presets). Every problem is collected, so one error can name
every bad field at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hero_logic.kernel import FieldType, FlowField, InvalidParams
from hero_logic.sdk import type_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["check_inputs", "json_type_name", "matches_type"]


def json_type_name(value: Any) -> str:
    """The JSON type name of a Python value (``integer`` for ints, ``object`` for dicts...).

    The SDK's own definition, so the service and flows name types the same way."""
    return str(type_name(value))


def matches_type(value: Any, field_type: FieldType) -> bool:
    """True if ``value`` is a JSON value of ``field_type`` (an integer is also a number)."""
    actual = json_type_name(value)
    if field_type is FieldType.NUMBER:
        return actual in ("number", "integer")
    return actual == field_type.value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_inputs(
    fields: Iterable[FlowField], values: Mapping[str, Any], *, flow_name: str, param: str = "input_data"
) -> dict[str, Any]:
    """``values`` checked against ``fields``, with declared defaults filled in.

    Raises InvalidParams naming every missing, unknown or mistyped field as
    ``{param}.{field}``. A flow that declares no fields accepts any object.
    """
    declared = {f.name: f for f in fields}
    if not declared:
        return dict(values)
    problems: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    for name, value in values.items():
        spec = declared.get(name)
        if spec is None:
            problems.append({
                "field": f"{param}.{name}",
                "error": f"flow {flow_name!r} declares no input {name!r} "
                f"(declared: {', '.join(sorted(declared))})",
            })
        elif not matches_type(value, spec.field_type):
            problems.append({
                "field": f"{param}.{name}",
                "error": f"flow {flow_name!r} declares input {name!r} as {spec.field_type.value}, "
                f"got {_show(value)} ({json_type_name(value)}): pass a {spec.field_type.value} "
                "or change the @flow inputs",
            })
        else:
            out[name] = value
    for name, spec in declared.items():
        if name in values:
            continue
        if spec.default is not None:
            out[name] = spec.default
        elif spec.required:
            problems.append({
                "field": f"{param}.{name}",
                "error": f"flow {flow_name!r} requires input {name!r} ({spec.field_type.value}), "
                "which is missing",
            })
    if problems:
        raise InvalidParams.fields(problems, context=f"inputs of flow {flow_name!r}")
    return out
