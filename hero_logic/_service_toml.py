"""The packaged ``service.toml``: its text, parsed and checked (cheap: no service imports).

Every binary checks it at start-up: the service description must list the three binaries and
the ``PATH_ROOT`` environment variable.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Any

from hero_logic.kernel import ConfigError

__all__ = ["load_service_toml", "service_toml_text"]


def service_toml_text() -> str:
    """The text of the packaged ``service.toml``."""
    return (files("hero_logic") / "service.toml").read_text()


def load_service_toml() -> dict[str, Any]:
    """``service.toml``, parsed and checked: it must list the three binaries and PATH_ROOT."""
    try:
        data = tomllib.loads(service_toml_text())
    except tomllib.TOMLDecodeError as exc:
        msg = f"the packaged service.toml does not parse: {exc}; reinstall hero-logic"
        raise ConfigError(msg) from None
    names = {b.get("name") for b in data.get("binaries", [])}
    missing = {"hero_logic", "hero_logic_server", "hero_logic_admin"} - names
    envs = {e.get("name") for e in data.get("env", [])}
    if missing or "PATH_ROOT" not in envs:
        msg = f"service.toml is incomplete: missing binaries {sorted(missing)} or [[env]] PATH_ROOT"
        raise ConfigError(msg)
    return data
