"""Running a flow's source as a module and finding its entry ``@flow``.

The rule for the entry (shared with the service's static reader): the flow named by
``entry`` if given; else the only ``@flow`` defined in the module; else the one named
``main``; else the last one defined.
"""

from __future__ import annotations

import sys

from ._flow import FlowInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

__all__ = ["flows_in", "load_module", "pick_entry"]


def load_module(source: str | bytes, filename: str, module_name: str) -> ModuleType:
    """Compile ``source`` under its real ``filename`` and run it as a fresh module.

    The module is registered in ``sys.modules`` under ``module_name`` (so dataclasses and
    pickling inside it work). Raises ``SyntaxError`` or whatever the module body raises.
    """
    code = compile(source, filename, "exec", dont_inherit=True)
    module = type(sys)(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module
    exec(code, module.__dict__)
    return module


def flows_in(module: ModuleType) -> list[tuple[Callable[..., Any], FlowInfo]]:
    """The ``@flow`` functions defined in ``module`` (not imported into it), in definition order."""
    found: list[tuple[Callable[..., Any], FlowInfo]] = []
    seen: set[int] = set()
    for value in list(vars(module).values()):
        if not callable(value):
            continue
        try:
            info = value.__dict__.get("__hero_flow__") if hasattr(value, "__dict__") else None
        except Exception:  # a hostile or odd object: it is not a flow
            continue
        if isinstance(info, FlowInfo) and info.module == module.__name__ and id(info) not in seen:
            seen.add(id(info))
            found.append((value, info))
    return found


def pick_entry(
    flows: list[tuple[Callable[..., Any], FlowInfo]], entry: str | None = None
) -> tuple[Callable[..., Any], FlowInfo] | None:
    """The entry flow among ``flows`` (see the module docstring), or None."""
    if entry:
        for fn, info in flows:
            if entry in (info.name, getattr(info.fn, "__name__", None)):
                return fn, info
        return None
    if not flows:
        return None
    if len(flows) == 1:
        return flows[0]
    for fn, info in flows:
        if "main" in (info.name, getattr(info.fn, "__name__", None)):
            return fn, info
    return flows[-1]
