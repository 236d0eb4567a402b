"""The shape of the code, checked from its import graph: dependencies point downwards
(``cli → server → admin → rpc → service → kernel → sdk``), there is no import cycle outside the
SDK, doors never reach into the store or the kernel's private modules, and no file is a god
module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "hero_logic"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "node_modules" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every hero_logic module ``name`` imports (at any depth: TYPE_CHECKING and function-level
    imports count too)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from pkg import sub`` depends on the submodule; ``from pkg import name`` on pkg.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("hero_tracing"):
                target = "hero_logic.sdk." + target
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


LAYERS = ["cli", "server", "admin", "ingress", "rpc", "serving", "service", "kernel", "sdk"]
"""Top to bottom: a layer may import the layers below it, never one above."""
BESIDE_SERVICE = {"plugins", "sandbox"}
"""Beside ``service``: they import only ``kernel`` (and ``sdk``)."""


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_import_graph_has_no_cycle_outside_the_sdk() -> None:
    cycles = [c for c in _cycles(_graph()) if not all(m.startswith("hero_logic.sdk.hero_tracing") for m in c)]
    assert cycles == []


def test_dependencies_point_downwards() -> None:
    wrong = []
    for module, targets in _graph().items():
        room = _room(module)
        for target in targets:
            other = _room(target)
            if other in ("", room) or other in ("testing", "seed_flows"):
                continue
            if room in LAYERS and other in LAYERS:
                if LAYERS.index(other) < LAYERS.index(room):
                    wrong.append(f"{module} -> {target}")
            elif room in BESIDE_SERVICE and other not in ("kernel", "sdk"):
                wrong.append(f"{module} -> {target}")
            elif other in BESIDE_SERVICE and room in ("kernel", "sdk"):
                wrong.append(f"{module} -> {target} (a plugin is found by entry point, never imported)")
    assert wrong == []


def test_no_door_reads_the_store_or_the_kernels_private_modules() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if _room(module) in ("rpc", "admin", "cli", "ingress", "serving")
        for target in targets
        if target.startswith("hero_logic.kernel._") or target.startswith("hero_logic.plugins.store")
    ]
    assert wrong == []


def test_rpc_is_the_door_only_and_no_file_is_a_god_module() -> None:
    lines = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    rpc = sum(n for p, n in lines.items() if p.parent.name == "rpc")
    assert rpc <= 2600, f"rpc/ is {rpc} lines: domain logic belongs in service/"
    too_long = {str(p.relative_to(PACKAGE)): n for p, n in lines.items() if n > 600}
    assert too_long == {}


@pytest.mark.parametrize("name", ["_library.py"])
def test_one_file_per_name_where_it_matters(name: str) -> None:
    assert len(list(PACKAGE.rglob(name))) <= 1
