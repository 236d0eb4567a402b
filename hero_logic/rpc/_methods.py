"""The method table: which coroutines are RPC methods, what params they take, how a call binds.

A service class marks its RPC methods with :func:`rpc_method`; :meth:`MethodTable.from_service`
reads each one's signature (with :func:`typing.get_type_hints`, so ``from __future__ import
annotations`` is fine) into :class:`Param` specs. A call binds params given by name (an object)
or by position (an array, in declared order), checks every one against its annotation, and
raises one :class:`~hero_logic.kernel.InvalidParams` listing *every* problem. The result goes
back through :func:`hero_logic.kernel.to_json`.

Supported annotations: ``str``, ``int`` (not ``bool``; an integral float such as ``3.0`` is
taken), ``float`` (an int is taken), ``bool``, ``Any``, ``None``, ``X | None`` and other unions
of these, ``list[X]``, ``dict[str, X]``, enums and ``Literal`` of strings, and attrs classes
(built with the kernel's converter). A param whose name ends in ``_json`` also accepts the same
value as a JSON-encoded string (CONTRACT.md §3).
"""

from __future__ import annotations

import difflib
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import attrs

import hero_logic
from hero_logic.kernel import InvalidParams, from_json, to_json
from hero_logic.service import MethodInfo, marked_methods, method_info, rpc_method
from hero_logic.service import json_type_name as _json_type

from ._jsonrpc import MethodNotFound, ParseError, loads_strict
from ._openrpc import openrpc_document

__all__ = ["Method", "MethodInfo", "MethodTable", "Param", "RpcCallable", "rpc_method"]

RpcCallable = Callable[..., Awaitable[Any]]

Problem = dict[str, str]
Checker = Callable[[Any, str, list[Problem]], Any]
"""``check(value, field, problems)`` → the converted value, or :data:`_BAD` after noting why."""


MAX_PROBLEMS = 50
"""At most this many problems are listed in one -32602 error."""

_BAD: Any = object()
_MISSING: Any = object()
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


# -- params, methods, the table ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Param:
    """One parameter of an RPC method, in declared order."""

    name: str
    annotation: Any
    required: bool
    default: Any
    """The Python default; meaningless when ``required``."""
    schema: dict[str, Any]
    expected: str = ""
    """What the param takes, in words: "string", "array of string"..."""
    check: Checker = attrs.field(repr=False, eq=False, default=_check_any)


def _identity(value: Any) -> Any:
    return value


_SCALAR_RESULTS = {str, int, float, bool, None, _NoneType}


@attrs.frozen(kw_only=True)
class Method:
    """One RPC method: its name, the coroutine it calls, its params and result schema."""

    name: str
    func: RpcCallable = attrs.field(repr=False, eq=False)
    params: tuple[Param, ...]
    result_schema: dict[str, Any]
    result_name: str
    summary: str = ""
    description: str = ""
    result_description: str = ""
    param_names: frozenset[str] = attrs.field(repr=False)
    to_wire: Callable[[Any], Any] = attrs.field(repr=False, eq=False, default=to_json)
    cancel_on_disconnect: bool = False
    """A pure wait, cancelled when its HTTP client disconnects (see :func:`rpc_method`)."""

    def bind(self, params: dict[str, Any] | list[Any] | None) -> dict[str, Any]:
        """The keyword arguments for ``func``; InvalidParams naming every problem otherwise."""
        problems: list[Problem] = []
        kwargs: dict[str, Any] = {}
        if params is None:
            params = {}
        if isinstance(params, dict):
            seen = 0
            for param in self.params:
                value = params.get(param.name, _MISSING)
                if value is _MISSING:
                    if param.required:
                        problems.append(_missing(param))
                    continue
                seen += 1
                kwargs[param.name] = param.check(value, param.name, problems)
            if seen != len(params):
                takes = ", ".join(p.name for p in self.params) or "no params"
                for key in params:
                    if key not in self.param_names:
                        problems.append({"field": str(key), "error": f"unknown parameter: {self.name} takes {takes}"})
        else:
            declared = len(self.params)
            for param, value in zip(self.params, params, strict=False):
                kwargs[param.name] = param.check(value, param.name, problems)
            for param in self.params[len(params):]:
                if param.required:
                    problems.append(_missing(param))
            for i in range(declared, len(params)):
                takes = ", ".join(p.name for p in self.params) or "no params"
                problems.append({"field": f"params[{i}]", "error": f"unexpected positional parameter: {self.name} takes at most {declared} ({takes})"})
        if problems:
            if len(problems) > MAX_PROBLEMS:
                more = len(problems) - MAX_PROBLEMS
                problems = problems[:MAX_PROBLEMS]
                problems.append({"field": "...", "error": f"{more} more problems not shown"})
            raise InvalidParams.fields(problems, context=self.name)
        return kwargs

    def describe(self, invalid_params_ref: dict[str, str]) -> dict[str, Any]:
        """This method's OpenRPC Method Object (its errors refer to ``invalid_params_ref``)."""
        out: dict[str, Any] = {"name": self.name}
        if self.summary:
            out["summary"] = self.summary
        if self.description:
            out["description"] = self.description
        out["paramStructure"] = "either"
        out["params"] = [{"name": p.name, "required": p.required, "schema": p.schema} for p in self.params]
        result: dict[str, Any] = {"name": self.result_name, "schema": self.result_schema}
        if self.result_description:
            result["description"] = self.result_description
        out["result"] = result
        if self.params:
            out["errors"] = [invalid_params_ref]
        return out


def _missing(param: Param) -> Problem:
    return {"field": param.name, "error": f"missing: this parameter is required (expected {param.expected})"}


class MethodTable:
    """Every RPC method of a service by name, plus ``rpc.discover`` and ``system.ping``."""

    def __init__(self, *, title: str = "hero_logic", version: str = hero_logic.__version__) -> None:
        self.title = title
        self.version = version
        self._methods: dict[str, Method] = {}
        self._schemas = _Schemas()
        self._document: dict[str, Any] | None = None
        self.add(self._discover, name="rpc.discover")
        self.add(_ping, name="system.ping")

    @classmethod
    def from_service(
        cls,
        service: object,
        extra: Mapping[str, RpcCallable] | None = None,
        *,
        title: str = "hero_logic",
        version: str = hero_logic.__version__,
    ) -> MethodTable:
        """A table of every ``@rpc_method`` of ``service`` and the ``extra`` callables by name."""
        table = cls(title=title, version=version)
        table.add_service(service)
        for name, func in (extra or {}).items():
            table.add(func, name=name)
        return table

    def add_service(self, service: object) -> None:
        """Add every ``@rpc_method`` of ``service`` (bound to it)."""
        for attr, info in marked_methods(service):
            self.add(getattr(service, attr), info=info)

    def add(
        self, func: RpcCallable, *, name: str | None = None, info: MethodInfo | None = None
    ) -> Method:
        """Add one coroutine function as a method (``name`` beats ``info.name`` and ``__name__``)."""
        info = info or method_info(func) or MethodInfo()
        method_name = name or info.name or getattr(func, "__name__", "")
        if not method_name:
            msg = f"cannot tell the RPC name of {func!r}: pass name="
            raise TypeError(msg)
        if method_name in self._methods:
            msg = f"two RPC methods are named {method_name!r}: {self._methods[method_name].func!r} and {func!r}"
            raise ValueError(msg)
        method = _build_method(func, method_name, info, self._schemas)
        self._methods[method_name] = method
        self._document = None
        return method

    async def dispatch(self, name: str, params: dict[str, Any] | list[Any] | None) -> Any:
        """Call method ``name`` with ``params`` (the :data:`~._jsonrpc.Dispatch` of the server)."""
        method = self._methods.get(name)
        if method is None:
            raise self._not_found(name)
        return method.to_wire(await method.func(**method.bind(params)))

    def _not_found(self, name: str) -> MethodNotFound:
        close = difflib.get_close_matches(name, self._methods, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        msg = f"method {name!r} not found{hint} (rpc.discover lists all {len(self._methods)})"
        return MethodNotFound(msg, data={"method": name, "did_you_mean": close})

    def document(self) -> dict[str, Any]:
        """The OpenRPC document of this table (computed once, until a method is added)."""
        if self._document is None:
            self._document = openrpc_document(list(self), dict(self.schemas), title=self.title, version=self.version)
        return self._document

    @property
    def schemas(self) -> dict[str, dict[str, Any]]:
        """``components/schemas``: the attrs records the methods take or return."""
        return self._schemas.schemas

    def __getitem__(self, name: str) -> Method:
        return self._methods[name]

    def get(self, name: str) -> Method | None:
        """The method called ``name``, or None."""
        return self._methods.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[Method]:
        return iter(sorted(self._methods.values(), key=lambda m: m.name))

    def __len__(self) -> int:
        return len(self._methods)

    async def _discover(self) -> dict[str, Any]:
        """The OpenRPC document of every method, with param and result schemas."""
        return self.document()


async def _ping() -> str:
    """Answer "pong": the service is up and answering."""
    return "pong"


def _build_method(func: RpcCallable, name: str, info: MethodInfo, registry: _Schemas) -> Method:
    where = f"RPC method {name!r} ({getattr(func, '__qualname__', func)!r})"
    if not inspect.iscoroutinefunction(func):
        msg = f"{where} must be an `async def` function"
        raise TypeError(msg)
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        msg = f"{where}: cannot resolve its annotations ({exc}); import the types at module level"
        raise TypeError(msg) from exc
    params = []
    for p in inspect.signature(func).parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            msg = f"{where}: parameter {p.name!r} is {p.kind.description}; RPC params must be named"
            raise TypeError(msg)
        if p.name not in hints:
            msg = f"{where}: parameter {p.name!r} has no type annotation"
            raise TypeError(msg)
        try:
            kind = _compile(hints[p.name], registry)
        except TypeError as exc:
            msg = f"{where}, parameter {p.name!r}: {exc}"
            raise TypeError(msg) from None
        if p.name.endswith("_json"):
            kind = _json_string(kind)
        required = p.default is p.empty
        schema = dict(kind.schema)
        if not required and "$ref" not in schema:
            try:
                schema["default"] = json.loads(json.dumps(to_json(p.default)))
            except (TypeError, ValueError):
                pass
        params.append(Param(name=p.name, annotation=hints[p.name], required=required,
                            default=None if required else p.default, schema=schema,
                            expected=kind.expected, check=kind.check))
    result = hints.get("return", Any)
    doc = inspect.cleandoc(func.__doc__) if func.__doc__ else ""
    summary, _, description = doc.partition("\n")
    return Method(
        name=name,
        func=func,
        params=tuple(params),
        result_schema=_compile(result, registry, strict=False).schema,
        result_name=_result_name(result),
        summary=info.summary or summary.strip(),
        description=description.strip(),
        result_description=info.result_description,
        param_names=frozenset(p.name for p in params),
        to_wire=_identity if result in _SCALAR_RESULTS else to_json,
        cancel_on_disconnect=info.cancel_on_disconnect,
    )


def _result_name(tp: Any) -> str:
    if isinstance(tp, type) and attrs.has(tp):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", tp.__name__).lower()
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list and args and isinstance(args[0], type) and attrs.has(args[0]):
        one = _result_name(args[0])
        return one + ("es" if one.endswith(("s", "x", "ch", "sh")) else "s")
    return "result"
