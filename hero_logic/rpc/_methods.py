"""The method table: which coroutines are RPC methods, what params they take, how a call binds.

A service class marks its RPC methods with :func:`rpc_method`; :meth:`MethodTable.from_service`
reads each one's signature (with :func:`typing.get_type_hints`, so ``from __future__ import
annotations`` is fine) into :class:`Param` specs. A call binds params given by name (an object)
or by position (an array, in declared order), checks every one against its annotation, and
raises one :class:`~hero_logic.kernel.InvalidParams` listing *every* problem. The result goes
back through :func:`hero_logic.kernel.to_json`.

The annotations it understands are those of :mod:`._params`.
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import attrs
import trio

import hero_logic
from hero_logic.kernel import InvalidParams, RawJson, dumps, to_json
from hero_logic.service import MethodInfo, Service, marked_methods, method_info, rpc_method

from ._jsonrpc import MethodNotFound
from ._openrpc import openrpc_document
from ._params import Checker, Problem
from ._params import Schemas as _Schemas
from ._params import check_any as _check_any
from ._params import compile_annotation as _compile
from ._params import json_string as _json_string

__all__ = ["BUILT_IN_METHODS", "Method", "MethodInfo", "MethodTable", "Param", "RpcCallable", "admin_method_names", "rpc_method"]

RpcCallable = Callable[..., Awaitable[Any]]

MAX_PROBLEMS = 50
"""At most this many problems are listed in one -32602 error."""

_MISSING: Any = object()
_NoneType = type(None)


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
    large_result: bool = False
    """Encode the result off the event loop (see :func:`rpc_method`)."""

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


ENCODE_PIECE = 256
"""Items of a large list result encoded per ``json.dumps`` call: one call holds the GIL for its
whole length, so a 30 MB answer encoded in one call would stall the event loop thread."""


def _encode_in_pieces(wire: Any) -> RawJson:
    """``wire`` as compact JSON, a list encoded a few items per call (see ENCODE_PIECE)."""
    if not isinstance(wire, list):
        return RawJson(dumps(wire))
    pieces = [dumps(wire[i : i + ENCODE_PIECE])[1:-1] for i in range(0, len(wire), ENCODE_PIECE)]
    joined = [part for i, p in enumerate(pieces) for part in ((b",", p) if i else (p,))]
    return RawJson(b"[", *joined, b"]")


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
        result = await method.func(**method.bind(params))
        if isinstance(result, RawJson):  # the service encoded it already (off the loop)
            return result
        if method.large_result:  # encoded in a worker thread: a big answer never stalls the loop
            return await trio.to_thread.run_sync(lambda: _encode_in_pieces(method.to_wire(result)))
        return method.to_wire(result)

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
        large_result=info.large_result,
    )


def _result_name(tp: Any) -> str:
    if isinstance(tp, type) and attrs.has(tp):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", tp.__name__).lower()
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list and args and isinstance(args[0], type) and attrs.has(args[0]):
        one = _result_name(args[0])
        return one + ("es" if one.endswith(("s", "x", "ch", "sh")) else "s")
    return "result"


BUILT_IN_METHODS = frozenset({"rpc.discover", "system.ping"})
"""Methods every table has, harmless to call from anywhere."""


def admin_method_names() -> frozenset[str]:
    """The RPC methods the web admin may call for the browser: those the service marks
    ``@rpc_method(admin=True)``, and the built-in ones."""
    names = {
        info.name or attr for cls in Service.api_classes() for attr, info in marked_methods(cls) if info.admin
    }
    return frozenset(names) | BUILT_IN_METHODS
