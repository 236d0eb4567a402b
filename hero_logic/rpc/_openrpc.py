"""The OpenRPC 1.2.6 document of a method table (served by ``rpc.discover`` and ``/openrpc.json``).

Every method is listed with its params (name, required, JSON schema, in declared order), its
result (name and schema) and ``paramStructure: "either"`` (by name or by position). Records are
described once under ``components/schemas`` and referenced with ``$ref``. The error codes are
those of every :class:`~hero_logic.kernel.HeroLogicError` subclass, found by walking the class
tree, one entry per code, under ``components/errors``: the one place they are documented.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Protocol

from hero_logic.kernel import HeroLogicError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["OPENRPC_VERSION", "DescribesItself", "error_classes", "openrpc_document"]

OPENRPC_VERSION = "1.2.6"


def error_classes() -> list[type[HeroLogicError]]:
    """HeroLogicError and its subclasses, breadth first, the first class of each code only."""
    seen: dict[int, type[HeroLogicError]] = {}
    queue: list[type[HeroLogicError]] = [HeroLogicError]
    while queue:
        cls = queue.pop(0)
        seen.setdefault(cls.code, cls)
        queue.extend(cls.__subclasses__())
    return sorted(seen.values(), key=lambda c: -c.code)


def _error_object(cls: type[HeroLogicError]) -> dict[str, Any]:
    doc = inspect.cleandoc(cls.__doc__ or "").split("\n", 1)[0].strip()
    return {"code": cls.code, "message": doc or cls.__name__}


class DescribesItself(Protocol):
    """A method that gives its own OpenRPC Method Object (:class:`~hero_logic.rpc.Method` does)."""

    def describe(self, invalid_params_ref: dict[str, str]) -> dict[str, Any]: ...


def openrpc_document(
    methods: Sequence[DescribesItself], schemas: Mapping[str, Any], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """The OpenRPC document of ``methods``, each describing itself, with the record ``schemas``."""
    errors = {cls.__name__: _error_object(cls) for cls in error_classes()}
    invalid = next((n for n, e in errors.items() if e["code"] == -32602), "InvalidParams")
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openrpc": OPENRPC_VERSION,
        "info": info,
        "methods": [m.describe({"$ref": f"#/components/errors/{invalid}"}) for m in methods],
        "components": {"schemas": dict(schemas), "errors": errors},
    }
