"""Every plugin slot, loaded and checked in one place at start-up (never at import).

A slot has one provider picked by name through its entry-point group: the store, the process
executor, the span listener, the sandbox tier and the version picker. :func:`load_slots`
loads them all and checks each against the interface it fills, so a bad setting stops the
service before anything is set up, with an error naming the plugin, the slot and the fix.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import PluginNotFound, SandboxUnavailable
from ._interfaces import VersionPicker
from ._plugins import installed_plugins, load_plugin

if TYPE_CHECKING:
    from ._config import Config
    from ._interfaces import ProcessExecutorSlot, SandboxTier, SpanListenerSlot
    from ._model import WorkflowVersion

__all__ = ["Slots", "load_picker", "load_slots", "sandbox_problem", "select_sandbox_tier", "tier_strengths"]

log = logging.getLogger("hero_logic.kernel")


@attrs.frozen
class Slots:
    """The loaded providers of every slot but the sandbox tier (prepared separately, since it
    sets things up on the machine and must be closed)."""

    store_factory: Any
    """The store plugin: ``store_factory.from_config(config)`` opens the store."""
    executor: ProcessExecutorSlot
    listener: SpanListenerSlot
    picker: VersionPicker


def load_slots(config: Config) -> Slots:
    """Load and check the store, executor, span listener and version picker ``config`` names."""
    return Slots(
        store_factory=load_plugin("hero_logic.store", config.store, required_attrs=("from_config",)),
        executor=load_plugin("hero_logic.executor", "process", required_attrs=("from_config",)).from_config(config),
        listener=load_plugin("hero_logic.span_listener", "unix", required_attrs=("from_config",)).from_config(config),
        picker=load_picker(config, config.version_picker),
    )


def load_picker(config: Config, name: str) -> VersionPicker:
    """The version picker plugin ``name`` (entry-point group ``hero_logic.version_picker``), checked."""
    group = "hero_logic.version_picker"
    picker = load_plugin(group, name, required_attrs=("from_config",)).from_config(config)
    if not isinstance(picker, VersionPicker):
        msg = (
            f"plugin {name!r} of group {group!r} built {picker!r}, which lacks `name` or "
            "`pick(candidates, weights, *, current_version_sid)`: it cannot fill the version_picker slot"
        )
        raise PluginNotFound(msg)
    return picker


_TIER_METHODS = ("from_config", "check", "prepare", "wrap", "close")


def select_sandbox_tier(config: Config) -> SandboxTier:
    """The configured tier, prepared; for ``auto`` the strongest tier that can work here.

    The setting is ``NAME`` or ``NAME:OPTIONS`` (the tier's limits, e.g.
    ``bwrap:memory_mb=512,pids=128``). An explicitly named tier that cannot work here raises
    SandboxUnavailable: a tier is never silently downgraded. ``auto`` tries the installed
    tiers from the strongest down and logs the one it picked.
    """
    group = "hero_logic.sandbox"
    name = config.sandbox.partition(":")[0].strip()
    if name != "auto":
        tier: SandboxTier = load_plugin(group, name, required_attrs=_TIER_METHODS).from_config(config)
        tier.prepare()
        return tier
    candidates: list[SandboxTier] = []
    for candidate_name in installed_plugins(group):
        candidate = load_plugin(group, candidate_name, required_attrs=_TIER_METHODS).from_config(config)
        try:
            candidate.check()
        except SandboxUnavailable as exc:
            log.info("sandbox tier %s is not available here: %s", candidate_name, exc)
            continue
        candidates.append(candidate)
    for candidate in sorted(candidates, key=lambda t: t.strength, reverse=True):
        try:
            candidate.prepare()
        except SandboxUnavailable as exc:
            log.warning("sandbox tier %s passed its check but cannot start: %s", candidate.name, exc)
            continue
        others = ", ".join(t.name for t in candidates if t is not candidate) or "none"
        log.info("sandbox auto: using %s, the strongest tier available (also available: %s)", candidate.name, others)
        return candidate
    msg = "no sandbox tier can work on this machine: install bubblewrap or check the env_scrub tier"
    raise SandboxUnavailable(msg)


def tier_strengths(config: Config) -> dict[str, int]:
    """The strength of every installed sandbox tier, by name (no tier is checked)."""
    group = "hero_logic.sandbox"
    return {
        name: int(load_plugin(group, name, required_attrs=_TIER_METHODS).from_config(config).strength)
        for name in installed_plugins(group)
    }


def sandbox_problem(version: WorkflowVersion, tier: SandboxTier, strengths: dict[str, int]) -> str:
    """Why a service running ``tier`` may not run ``version`` (its minimum sandbox tier), or
    ""; ``strengths`` is :func:`tier_strengths` (needed only when the version names a tier)."""
    need = version.min_sandbox
    if not need or need == tier.name:
        return ""
    if need not in strengths:
        installed = ", ".join(sorted(strengths))
        return (
            f"workflow version {version.sid} requires the sandbox tier {need!r}, which is not "
            f"installed (installed: {installed}): fix @flow(sandbox=...) in its source"
        )
    if tier.strength < strengths[need]:
        return (
            f"workflow version {version.sid} requires the sandbox tier {need!r} or stronger, "
            f"but this service runs {tier.name!r}: start the service with --sandbox {need}"
        )
    return ""
