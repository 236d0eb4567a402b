"""What the service adds to each run of a play (the kernel's RunPreparer): the version's
environment (waiting while it builds), the local service sockets it declared, and a redactor
that knows the secrets it may read.

Service sockets are named by the operator, ``--service-socket NAME=PATH`` (repeatable) or
``HERO_LOGIC_SERVICE_SOCKETS=name=path,...``; a version lists the names it uses in
``@flow(services=[...])``, and only those are bound into its sandbox. A declared name the
service does not know, or whose socket is missing, fails the play at start, saying so.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import ConfigError, RunExtras, WrongState

if TYPE_CHECKING:
    from hero_logic.kernel import Config, Play, WorkflowVersion

    from ._environments import Environments
    from ._secrets import Secrets

__all__ = ["RunPreparation", "parse_service_sockets"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


def parse_service_sockets(spec: str) -> dict[str, Path]:
    """``"aibroker=/run/ai.sock,db=/run/db.sock"`` → names to absolute paths (ConfigError)."""
    sockets: dict[str, Path] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not _NAME.fullmatch(name) or not raw.startswith("/"):
            msg = (
                f"service socket {item!r} is not NAME=PATH with an absolute path and a name of "
                "letters, digits, '_', '.', '-' (e.g. --service-socket aibroker=/run/aibroker.sock)"
            )
            raise ConfigError(msg)
        if name in sockets:
            msg = f"service socket {name!r} is given twice: name each socket once"
            raise ConfigError(msg)
        sockets[name] = Path(raw)
    return sockets


@attrs.define(eq=False)
class RunPreparation:
    """The service's RunPreparer."""

    config: Config
    environments: Environments
    secrets: Secrets
    sockets: dict[str, Path] = attrs.Factory(dict)

    @classmethod
    def build(cls, config: Config, environments: Environments, secrets: Secrets) -> RunPreparation:
        """Checked at start-up: a malformed --service-socket stops the service."""
        return cls(config, environments, secrets, parse_service_sockets(config.service_sockets))

    async def prepare_run(self, play: Play, version: WorkflowVersion) -> RunExtras:
        """Wait for the environment; check and collect the declared service sockets; load the
        redactor of the declared secrets."""
        packages = await self.environments.wait_ready(version)
        sockets: dict[str, Path] = {}
        for name in version.services:
            path = self.sockets.get(name)
            if path is None:
                known = ", ".join(sorted(self.sockets)) or "none"
                msg = (
                    f"the flow declares the service socket {name!r}, which this service does not "
                    f"know (known: {known}): start the service with --service-socket {name}=PATH"
                )
                raise WrongState(msg)
            try:
                is_socket = stat.S_ISSOCK(path.stat().st_mode)
            except OSError:
                is_socket = False
            if not is_socket:
                msg = f"the service socket {name!r} ({path}) is not a listening Unix socket: start that service first"
                raise WrongState(msg)
            sockets[name] = path
        redactor = await self.secrets.redactor_for(play.sid, version.secrets) if version.secrets else None
        return RunExtras(packages_dir=packages, service_sockets=sockets, redactor=redactor)
