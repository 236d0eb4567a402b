"""The interfaces a plugin author imports are pinned, as ``hero_tracing``'s names are: a
change to them is a deliberate act. Built-in plugins import them the same way, from the kernel's
facade, never from its private modules."""

from __future__ import annotations

import ast
from pathlib import Path

import hero_logic.kernel

PLUGIN_FACADE = {
    # every slot
    "Config", "ConfigError", "HeroLogicError", "InvalidParams", "PluginNotFound",
    # executor slot
    "ProcessExecutorSlot", "Launch", "ExitOutcome", "ProcessScope", "ServiceClosed", "ChildSetup", "apply_child_setup",
    # warm starts (optional on the executor and the sandbox tier)
    "WarmExecutor", "WarmTier", "WarmAssignment", "IdleProcess", "WarmProcessLost",
    # sandbox slot
    "SandboxTier", "SandboxUnavailable",
    # span listener slot
    "SpanListenerSlot", "EventSink", "ListenerStatistics",
    # store slot
    "Store", "Put", "Delete", "Write", "StoreStatistics", "StorageFull",
    # version picker slot
    "VersionPicker", "VersionCandidate", "VersionScore", "PickResult", "PickWeights",
    "Benchmark", "BenchmarkStatus", "candidates_note",
    # what answers a flow's requests (the service provides it)
    "FlowRequestHandler",
}

PLUGIN_DIRS = [Path(hero_logic.kernel.__file__).parent.parent / d for d in ("plugins", "sandbox")]


def test_every_name_of_the_plugin_facade_is_exported_by_the_kernel() -> None:
    missing = sorted(n for n in PLUGIN_FACADE if not hasattr(hero_logic.kernel, n))
    assert missing == []


def test_built_in_plugins_import_only_the_facade_from_the_kernel() -> None:
    used: dict[str, set[str]] = {}
    for folder in PLUGIN_DIRS:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hero_logic.kernel"):
                    assert node.module == "hero_logic.kernel", f"{path.name} imports {node.module}: use the facade"
                    for alias in node.names:
                        used.setdefault(alias.name, set()).add(path.name)
    outside = {name: sorted(files) for name, files in used.items() if name not in PLUGIN_FACADE}
    assert outside == {}, "a plugin uses a kernel name outside the pinned facade: add it deliberately"
