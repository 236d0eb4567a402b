"""Compiling a method's parameter annotations into checkers and JSON schemas.

Supported annotations: ``str``, ``int`` (not ``bool``; an integral float such as ``3.0`` is
taken), ``float`` (an int is taken), ``bool``, ``Any``, ``None``, ``X | None`` and other unions
of these, ``list[X]``, ``dict[str, X]``, enums and ``Literal`` of strings, and attrs classes
(built with the kernel's converter). A param whose name ends in ``_json`` also accepts the same
value as a JSON-encoded string (CONTRACT.md §3).
"""

from __future__ import annotations

import enum
import inspect
import json
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs

from hero_logic.kernel import InvalidParams, from_json, to_json
from hero_logic.sdk import type_name as _json_type

from ._jsonrpc import ParseError, loads_strict

__all__ = ["BAD", "Checker", "Kind", "Problem", "Schemas", "check_any", "compile_annotation", "first_line", "json_string"]

Problem = dict[str, str]
Checker = Callable[[Any, str, list[Problem]], Any]
"""``check(value, field, problems)`` → the converted value, or :data:`BAD` after noting why."""

_BAD: Any = object()
BAD = _BAD
_NoneType = type(None)


# -- annotations → checkers and JSON schemas -----------------------------------------------------


@attrs.frozen
class _Kind:
    """One compiled annotation."""

    check: Checker
    schema: dict[str, Any]
    expected: str
    accepts_str: bool = False
    is_any: bool = False


def _got(value: Any) -> str:
    kind = _json_type(value)
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, dict):
        keys = ", ".join(list(value)[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"


def _bad(problems: list[Problem], field: str, expected: str, value: Any) -> Any:
    problems.append({"field": field, "error": f"expected {expected}, got {_got(value)}"})
    return _BAD


def _check_any(value: Any, field: str, problems: list[Problem]) -> Any:
    return value


def _check_str(value: Any, field: str, problems: list[Problem]) -> Any:
    if isinstance(value, str):
        return value
    return _bad(problems, field, "string", value)


def _check_int(value: Any, field: str, problems: list[Problem]) -> Any:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return _bad(problems, field, "integer", value)


def _check_float(value: Any, field: str, problems: list[Problem]) -> Any:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    return _bad(problems, field, "number", value)


def _check_bool(value: Any, field: str, problems: list[Problem]) -> Any:
    if value is True or value is False:
        return value
    return _bad(problems, field, "boolean", value)


def _check_none(value: Any, field: str, problems: list[Problem]) -> Any:
    if value is None:
        return None
    return _bad(problems, field, "null", value)


_ANY = _Kind(_check_any, {}, "any JSON value", is_any=True)
_SIMPLE: dict[Any, _Kind] = {
    Any: _ANY,
    object: _ANY,
    str: _Kind(_check_str, {"type": "string"}, "string", accepts_str=True),
    int: _Kind(_check_int, {"type": "integer"}, "integer"),
    float: _Kind(_check_float, {"type": "number"}, "number"),
    bool: _Kind(_check_bool, {"type": "boolean"}, "boolean"),
    None: _Kind(_check_none, {"type": "null"}, "null"),
    _NoneType: _Kind(_check_none, {"type": "null"}, "null"),
}


def _optional(inner: _Kind) -> _Kind:
    check = inner.check
    expected = f"{inner.expected} or null"

    def check_optional(value: Any, field: str, problems: list[Problem]) -> Any:
        if value is None:
            return None
        before = len(problems)
        converted = check(value, field, problems)
        if len(problems) == before + 1 and problems[-1]["field"] == field:
            problems[-1] = {"field": field, "error": f"expected {expected}, got {_got(value)}"}
        return converted

    simple_type = inner.schema.get("type")
    if len(inner.schema) == 1 and isinstance(simple_type, str):
        schema: dict[str, Any] = {"type": [simple_type, "null"]}
    else:
        schema = {"anyOf": [inner.schema, {"type": "null"}]}
    return _Kind(check_optional, schema, expected, inner.accepts_str)


def _union(arms: list[_Kind]) -> _Kind:
    expected = " or ".join(arm.expected for arm in arms)

    def check_union(value: Any, field: str, problems: list[Problem]) -> Any:
        for arm in arms:
            scratch: list[Problem] = []
            converted = arm.check(value, field, scratch)
            if not scratch:
                return converted
        return _bad(problems, field, expected, value)

    schema = {"anyOf": [arm.schema for arm in arms]}
    return _Kind(check_union, schema, expected, any(arm.accepts_str for arm in arms))


def _list(item: _Kind) -> _Kind:
    expected = "array" if item.is_any else f"array of {item.expected}"
    item_check = item.check

    def check_list(value: Any, field: str, problems: list[Problem]) -> Any:
        if not isinstance(value, list):
            return _bad(problems, field, expected, value)
        if item.is_any:
            return value
        before = len(problems)
        out = [item_check(x, f"{field}[{i}]", problems) for i, x in enumerate(value)]
        return _BAD if len(problems) > before else out

    schema: dict[str, Any] = {"type": "array"}
    if not item.is_any:
        schema["items"] = item.schema
    return _Kind(check_list, schema, expected)


def _dict(value_kind: _Kind) -> _Kind:
    expected = "object" if value_kind.is_any else f"object of {value_kind.expected}"
    value_check = value_kind.check

    def check_dict(value: Any, field: str, problems: list[Problem]) -> Any:
        if not isinstance(value, dict):
            return _bad(problems, field, expected, value)
        if value_kind.is_any:
            return value
        before = len(problems)
        out = {k: value_check(v, f"{field}.{k}", problems) for k, v in value.items()}
        return _BAD if len(problems) > before else out

    schema: dict[str, Any] = {"type": "object"}
    if not value_kind.is_any:
        schema["additionalProperties"] = value_kind.schema
    return _Kind(check_dict, schema, expected)


def _choices(values: list[Any], convert: Callable[[Any], Any], title: str = "") -> _Kind:
    allowed = {(type(v), v): v for v in values}
    expected = "one of " + ", ".join(json.dumps(v) for v in values)

    def check_choice(value: Any, field: str, problems: list[Problem]) -> Any:
        if (type(value), value) in allowed:
            return convert(value)
        return _bad(problems, field, expected, value)

    types_ = sorted({_json_type(v) for v in values})
    schema: dict[str, Any] = {"type": types_[0] if len(types_) == 1 else types_, "enum": values}
    if title:
        schema["title"] = title
    return _Kind(check_choice, schema, expected, accepts_str="string" in types_)


def _record(cls: type, registry: _Schemas) -> _Kind:
    expected = f"{cls.__name__} object"

    def check_record(value: Any, field: str, problems: list[Problem]) -> Any:
        if not isinstance(value, dict):
            return _bad(problems, field, expected, value)
        try:
            return from_json(cls, value, context=field)
        except InvalidParams as exc:
            for problem in exc.data or ():
                sub = problem.get("field", "$")
                path = field if sub in ("", "$") else f"{field}.{sub}"
                problems.append({"field": path, "error": problem.get("error", "invalid")})
            return _BAD

    return _Kind(check_record, registry.ref(cls), expected)


def _json_string(inner: _Kind) -> _Kind:
    """A ``*_json`` param: the value itself, or a string holding it as JSON."""
    if inner.accepts_str:
        return inner
    check = inner.check

    def check_json(value: Any, field: str, problems: list[Problem]) -> Any:
        if isinstance(value, str):
            try:
                value = loads_strict(value)
            except ParseError as exc:
                why = exc.message.removeprefix("parse error: ")
                problems.append({
                    "field": field,
                    "error": f"expected {inner.expected} or a string of JSON, got a string that is not JSON ({why})",
                })
                return _BAD
        return check(value, field, problems)

    as_string = {"type": "string", "contentMediaType": "application/json"}
    schema = {"anyOf": [inner.schema, as_string]} if inner.schema else {}
    return _Kind(check_json, schema, f"{inner.expected} (or a string of JSON)", True, inner.is_any)


class _Schemas:
    """``components/schemas`` of one table: attrs records by name, referenced with ``$ref``."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._names: dict[type, str] = {}

    def ref(self, cls: type) -> dict[str, Any]:
        name = self._names.get(cls)
        if name is None:
            name = cls.__name__
            n = 2
            while name in self.schemas:
                name, n = f"{cls.__name__}{n}", n + 1
            self._names[cls] = name
            self.schemas[name] = {}  # a placeholder, so self-referencing records terminate
            self.schemas[name] = self._record_schema(cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def _record_schema(self, cls: type) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable forward reference: document the fields untyped
            hints = {}
        properties: dict[str, Any] = {}
        required = []
        for field in attrs.fields(cls):
            schema = dict(_compile(hints.get(field.name, Any), self, strict=False).schema)
            default = field.default
            if default is attrs.NOTHING:
                required.append(field.name)
            elif "$ref" not in schema:
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    default = None if default.takes_self else default.factory()
                try:
                    schema["default"] = json.loads(json.dumps(to_json(default)))
                except (TypeError, ValueError):
                    pass
            properties[field.name] = schema
        out: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": properties}
        if required:
            out["required"] = required
        doc = _first_line(cls.__doc__)
        if doc:
            out["description"] = doc
        return out


def _compile(tp: Any, registry: _Schemas, *, strict: bool = True) -> _Kind:
    """Compile an annotation; ``strict=False`` (record fields, results) documents unknowns as {}."""
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is types.UnionType or origin is typing.Union:
        arms = [a for a in args if a is not _NoneType]
        compiled = [_compile(a, registry, strict=strict) for a in arms]
        inner = compiled[0] if len(compiled) == 1 else _union(compiled)
        return _optional(inner) if len(arms) < len(args) else inner
    if tp is list or origin is list:
        return _list(_compile(args[0] if args else Any, registry, strict=strict))
    if tp is dict or origin is dict:
        if args and args[0] is not str:
            if strict:
                msg = f"unsupported annotation {tp!r}: JSON object keys are strings, use dict[str, ...]"
                raise TypeError(msg)
            return _ANY
        return _dict(_compile(args[1] if args else Any, registry, strict=strict))
    if origin is typing.Literal:
        return _choices(list(args), lambda v: v)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _choices([m.value for m in tp], tp, tp.__name__)
    if isinstance(tp, type) and attrs.has(tp):
        return _record(tp, registry)
    if strict:
        msg = (
            f"unsupported annotation {tp!r}: use str, int, float, bool, Any, X | None, "
            "list[X], dict[str, X], an enum, a Literal or an attrs class"
        )
        raise TypeError(msg)
    return _Kind(_check_any, {"description": f"a {getattr(tp, '__name__', tp)!s}"}, "any JSON value", is_any=True)


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n", 1)[0].strip() if doc else ""




Kind = _Kind
Schemas = _Schemas
check_any = _check_any
json_string = _json_string
compile_annotation = _compile
first_line = _first_line
