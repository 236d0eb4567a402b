"""Reading a flow's signature from its source without running it.

Flow sources are untrusted, so the service never imports or executes them: it parses them
with :mod:`ast` and reads the ``@flow(...)`` decorator's keyword literals. The rules match
the SDK's decorator (field normalisation is the same code) and the boot stub's choice of
entry flow.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the package through its place in this tree
    from .hero_tracing._fields import FieldError, doc_summary, normalise_fields, type_name
else:  # at run time it is the top-level package (never hero_logic.sdk.hero_tracing)
    from hero_tracing._fields import FieldError, doc_summary, normalise_fields, type_name

__all__ = ["FlowSignature", "FlowSourceError", "read_flow_signature"]

_PY_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "dict": "object",
    "list": "array",
}
_CONTAINER_TYPES = {
    "List": "array",
    "Sequence": "array",
    "Tuple": "array",
    "tuple": "array",
    "Dict": "object",
    "Mapping": "object",
}
_DECORATOR_KEYWORDS = (
    "name", "description", "inputs", "outputs", "sandbox", "network", "checkpoint", "secrets", "services",
    "strict_replay", "retries", "retry_delay", "retry_backoff", "retry_max_delay", "retry_on", "retry_jitter", "timeout",
)
_RESOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_RUN_TIME_KEYWORDS = ("retry_on",)
"""Arguments that name classes (``retry_on=(ValueError,)``): not literals, not read here."""
MAX_RETRIES = 1000
MAX_DELAY_S = 366 * 24 * 3600


class FlowSourceError(ValueError):
    """A flow source the service cannot accept: ``line`` (1-based, 0 if none) and ``reason``."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class FlowSignature:
    """The entry flow's declared name, description and fields, and every flow in the source.

    ``inputs`` and ``outputs`` hold one dict per field: ``name``, ``field_type`` (``string``,
    ``number``, ``integer``, ``boolean``, ``object`` or ``array``), ``description``,
    ``required`` and ``default``.
    """

    entry_flow: str
    description: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    flows: tuple[str, ...] = ()
    sandbox: str = ""
    """The weakest sandbox tier the entry flow accepts (``@flow(sandbox="bwrap")``), or ""."""
    network: bool = False
    """Whether the entry flow asks for network access (``@flow(network=True)``)."""
    secrets: tuple[str, ...] = ()
    """Secret names the entry flow declares (``@flow(secrets=[...])``)."""
    services: tuple[str, ...] = ()
    """Service socket names the entry flow declares (``@flow(services=[...])``)."""


@dataclass(frozen=True)
class _Found:
    name: str
    function: str
    description: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    sandbox: str = ""
    network: bool = False
    secrets: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


class _PythonTypeNames(ast.NodeTransformer):
    """Turn bare ``str``/``int``/... names into string constants so literal_eval accepts them."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _PY_TYPES:
            return ast.copy_location(ast.Constant(node.id), node)
        return node


def _literal(node: ast.expr, what: str, flow_name: str) -> Any:
    try:
        return ast.literal_eval(_PythonTypeNames().visit(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        reason = (
            f"@flow {flow_name!r}: {what} must be a literal (a dict, list, string, number, "
            "True/False/None), not an expression computed at run time"
        )
        raise FlowSourceError(node.lineno, reason) from None


def _flow_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to ``hero_tracing.flow`` and to the ``hero_tracing`` module at top level."""
    flow_names = {"flow"}
    module_names = {"hero_tracing"}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "hero_tracing":
            for alias in node.names:
                if alias.name == "flow":
                    flow_names.add(alias.asname or "flow")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hero_tracing":
                    module_names.add(alias.asname or "hero_tracing")
    return flow_names, module_names


def _is_flow(node: ast.expr, flow_names: set[str], module_names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in flow_names
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "flow"
        and isinstance(node.value, ast.Name)
        and node.value.id in module_names
    )


def _annotation_type(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        return _annotation_type(node.left) or _annotation_type(node.right)
    if isinstance(node, ast.Name):
        return _PY_TYPES.get(node.id) or _CONTAINER_TYPES.get(node.id)
    if isinstance(node, ast.Attribute):
        return _CONTAINER_TYPES.get(node.attr)
    if isinstance(node, ast.Subscript):
        outer = (
            node.value.attr
            if isinstance(node.value, ast.Attribute)
            else getattr(node.value, "id", "")
        )
        if outer == "Optional":
            return _annotation_type(node.slice)
        return _annotation_type(node.value)
    return None


def _default_type(value: Any) -> str:
    """The field type a literal default implies (``string`` when it implies none)."""
    kind = type_name(value)
    return kind if kind in ("boolean", "integer", "number", "object", "array") else "string"


def _derived_inputs(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[dict[str, Any]]:
    """Inputs read from the parameters: annotations give types, defaults make them optional."""
    args = func.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(
        args.defaults
    )
    params = list(zip(positional, defaults, strict=True)) + list(
        zip(args.kwonlyargs, args.kw_defaults, strict=True)
    )
    fields = []
    for index, (arg, default_node) in enumerate(params):
        if index == 0 and arg.arg in ("self", "cls"):
            continue
        default: Any = None
        has_default = default_node is not None
        if default_node is not None:
            try:
                default = ast.literal_eval(default_node)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                default = None
            if isinstance(default, tuple | set | frozenset):
                default = list(default)
        field_type = _annotation_type(arg.annotation)
        if field_type is None:
            field_type = _default_type(default) if default is not None else "string"
        fields.append(
            {
                "name": arg.arg,
                "field_type": field_type,
                "description": "",
                "required": not has_default,
                "default": default,
            }
        )
    return fields


def _read_flow(func: ast.FunctionDef | ast.AsyncFunctionDef, decorator: ast.expr) -> _Found:
    values: dict[str, Any] = {}
    flow_name = func.name
    if isinstance(decorator, ast.Call):
        if decorator.args:
            reason = f"@flow on {func.name!r} takes keyword arguments only: {'=, '.join(_DECORATOR_KEYWORDS)}="
            raise FlowSourceError(decorator.lineno, reason)
        for keyword in decorator.keywords:
            if keyword.arg not in _DECORATOR_KEYWORDS:
                reason = (
                    f"@flow on {func.name!r} got an unknown argument {keyword.arg or '**'!r}; "
                    f"it takes {', '.join(_DECORATOR_KEYWORDS)}"
                )
                raise FlowSourceError(keyword.value.lineno, reason)
            if keyword.arg in _RUN_TIME_KEYWORDS:
                continue
            values[keyword.arg] = (
                _literal(keyword.value, keyword.arg, func.name),
                keyword.value.lineno,
            )
    name, line = values.get("name", (None, decorator.lineno))
    if name is not None:
        if not isinstance(name, str) or not name:
            raise FlowSourceError(
                line, f"@flow on {func.name!r}: name must be a non-empty string, got {name!r}"
            )
        flow_name = name
    description, line = values.get("description", ("", decorator.lineno))
    if not isinstance(description, str):
        raise FlowSourceError(
            line, f"@flow {flow_name!r}: description must be a string, got {description!r}"
        )
    fields: dict[str, list[dict[str, Any]] | None] = {}
    for what in ("inputs", "outputs"):
        spec, line = values.get(what, (None, decorator.lineno))
        try:
            fields[what] = normalise_fields(spec, what)
        except FieldError as exc:
            raise FlowSourceError(line, f"@flow {flow_name!r}: {exc}") from None
    inputs = fields["inputs"]
    sandbox, line = values.get("sandbox", ("", decorator.lineno))
    if not isinstance(sandbox, str):
        raise FlowSourceError(
            line, f"@flow {flow_name!r}: sandbox must be a tier name such as 'bwrap', got {sandbox!r}"
        )
    _check_policy(values, flow_name)
    network, line = values.get("network", (False, decorator.lineno))
    if not isinstance(network, bool):
        raise FlowSourceError(
            line, f"@flow {flow_name!r}: network must be True or False, got {network!r}"
        )
    names: dict[str, tuple[str, ...]] = {}
    for what in ("secrets", "services"):
        value, line = values.get(what, ([], decorator.lineno))
        if not isinstance(value, list | tuple) or not all(
            isinstance(n, str) and _RESOURCE_NAME.fullmatch(n) for n in value
        ):
            raise FlowSourceError(
                line,
                f"@flow {flow_name!r}: {what} must be a list of names (letters, digits, _ . -; "
                f'starting with a letter or _), e.g. {what}=["OPENAI_API_KEY"]; got {value!r}',
            )
        names[what] = tuple(dict.fromkeys(value))
    strict, line = values.get("strict_replay", (True, decorator.lineno))
    if not isinstance(strict, bool):
        raise FlowSourceError(
            line, f"@flow {flow_name!r}: strict_replay must be True or False, got {strict!r}"
        )
    return _Found(
        name=flow_name,
        function=func.name,
        description=description or doc_summary(ast.get_docstring(func)),
        inputs=inputs if inputs is not None else _derived_inputs(func),
        outputs=fields["outputs"] or [],
        sandbox=sandbox,
        network=network,
        secrets=names["secrets"],
        services=names["services"],
    )


def _check_policy(values: dict[str, tuple[Any, int]], flow_name: str) -> None:
    """Refuse retry and timeout settings the SDK would refuse, naming the argument and the fix."""
    retries, line = values.get("retries", (0, 0))
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise FlowSourceError(line, f"@flow {flow_name!r}: retries must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")
    for what in ("retry_delay", "retry_backoff", "retry_max_delay", "timeout"):
        if what not in values or (what == "timeout" and values[what][0] is None):
            continue
        value, line = values[what]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or not 0 <= value <= MAX_DELAY_S:
            raise FlowSourceError(
                line,
                f"@flow {flow_name!r}: {what} must be a number of seconds from 0 to {MAX_DELAY_S}, got {value!r}",
            )
        if what == "timeout" and value <= 0:
            raise FlowSourceError(line, f"@flow {flow_name!r}: timeout must be more than 0 seconds (or None: no limit), got {value!r}")
        if what == "retry_backoff" and value < 1:
            raise FlowSourceError(line, f"@flow {flow_name!r}: retry_backoff must be 1 or more (1: the same delay every time), got {value!r}")
    jitter, line = values.get("retry_jitter", (True, 0))
    if not isinstance(jitter, bool):
        raise FlowSourceError(line, f"@flow {flow_name!r}: retry_jitter must be True or False, got {jitter!r}")


def read_flow_signature(source: str, entry: str | None = None) -> FlowSignature:
    """The signature of the entry ``@flow`` in ``source`` (never executed).

    The entry is the flow named ``entry`` if given; else the only ``@flow`` in the source;
    else the one named ``main``; else the last one defined. Raises :class:`FlowSourceError`
    for a syntax error, a source without ``@flow``, a decorator argument that is not a
    literal, or an unknown field type.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise FlowSourceError(exc.lineno or 0, f"syntax error: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
        raise FlowSourceError(0, f"the source cannot be parsed: {exc}") from None
    flow_names, module_names = _flow_names(tree)
    found: list[_Found] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if _is_flow(target, flow_names, module_names):
                found.append(_read_flow(node, decorator))
                break
    if not found:
        reason = "no @flow function found: define a function decorated with @flow (from hero_tracing import flow)"
        raise FlowSourceError(0, reason)
    if entry:
        chosen = next((f for f in found if entry in (f.name, f.function)), None)
        if chosen is None:
            names = ", ".join(f.name for f in found)
            raise FlowSourceError(0, f"no @flow named {entry!r} (flows defined: {names})")
    elif len(found) == 1:
        chosen = found[0]
    else:
        chosen = next((f for f in found if "main" in (f.name, f.function)), found[-1])
    return FlowSignature(
        entry_flow=chosen.name,
        description=chosen.description,
        inputs=chosen.inputs,
        outputs=chosen.outputs,
        flows=tuple(f.name for f in found),
        sandbox=chosen.sandbox,
        network=chosen.network,
        secrets=chosen.secrets,
        services=chosen.services,
    )
