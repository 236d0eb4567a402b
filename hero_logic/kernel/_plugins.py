"""Plugin loading from entry points, done once at start-up (never at import).

A slot (store, executor, sandbox tier, span listener, version picker) has one provider picked
by name. An unknown name raises :class:`PluginNotFound` listing what is installed in the group
and how to add more.
"""

from __future__ import annotations

import functools
from typing import Any

from ._errors import PluginNotFound

__all__ = ["installed_plugins", "load_plugin"]



@functools.cache
def _group(group: str) -> dict[str, Any]:
    # importlib.metadata is slow to import (~40 ms): the service pays it once, the SDK never.
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=group)}


def installed_plugins(group: str) -> list[str]:
    """Names of the plugins installed in entry-point ``group``, sorted."""
    return sorted(_group(group))


def load_plugin(group: str, name: str, *, required_attrs: tuple[str, ...] = ()) -> Any:
    """Load the object registered as ``name`` in ``group`` and check it has ``required_attrs``.

    Raises :class:`PluginNotFound` naming the group, the name and the installed plugins, or when
    the loaded object lacks an attribute the slot needs.
    """
    entries = _group(group)
    if name not in entries:
        installed = ", ".join(sorted(entries)) or "none"
        msg = (
            f"no plugin named {name!r} in entry-point group {group!r}; installed: {installed}. "
            f"Pick one of those, or install a package that registers {name!r} under "
            f"[project.entry-points.{group!r}] in its pyproject.toml"
        )
        raise PluginNotFound(msg)
    try:
        obj = entries[name].load()
    except Exception as exc:
        msg = f"plugin {name!r} of group {group!r} failed to load ({entries[name].value}): {exc!r}"
        raise PluginNotFound(msg) from exc
    missing = [attr for attr in required_attrs if not hasattr(obj, attr)]
    if missing:
        msg = (
            f"plugin {name!r} of group {group!r} ({entries[name].value}) does not provide "
            f"{', '.join(missing)}: it cannot fill the {group.rsplit('.', 1)[-1]} slot"
        )
        raise PluginNotFound(msg)
    return obj
