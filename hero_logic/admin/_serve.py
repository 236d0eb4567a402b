"""Serving the admin: hypercorn on ``admin.sock`` (0600, in a 0700 directory) and, unless
``--admin-bind none``, on a TCP address (127.0.0.1:9820 by default, never 0.0.0.0 unless asked).

:func:`serve_admin` is a service like any other (it reports ``started`` and runs until
cancelled); the ``hero_logic_admin`` binary that runs it until a signal is the CLI's
(``hero_logic.cli._daemon.run_admin``), so this package imports neither the CLI nor the server.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import trio

from hero_logic.rpc import ServingLimits, parse_tcp_bind, serve_door

from ._app import AdminApp
from ._pages import EDITOR_BUNDLE

if TYPE_CHECKING:
    from hero_logic.kernel import Config

__all__ = ["parse_admin_bind", "serve_admin"]

log = logging.getLogger("hero_logic.admin")


def parse_admin_bind(value: str) -> str | None:
    """``"host:port"`` checked, or None for ``none``/empty (no TCP listener)."""
    return parse_tcp_bind(value, door="admin", setting="HERO_LOGIC_ADMIN_BIND / --admin-bind", example="127.0.0.1:9820")


async def serve_admin(
    config: Config,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the admin until cancelled; ``started`` with the bound addresses once they listen.

    The admin talks to the service on ``config.rpc_socket``; it may start before the service
    (pages then show the service as unavailable until it answers).
    """
    tcp_bind = parse_admin_bind(config.admin_bind)
    if not EDITOR_BUNDLE.is_file():
        log.warning("the admin's code editor is not built (run `make admin-assets`): pages use a plain text area")
    limits = ServingLimits.from_config(config)
    app = AdminApp(config.rpc_socket, limits=limits)
    try:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                functools.partial(
                    serve_door, app, config.admin_socket, tcp_bind=tcp_bind, door="admin",
                    setting="--admin-bind / HERO_LOGIC_ADMIN_BIND", limits=limits,
                )
            )
            log.info("admin listening on %s", ", ".join(binds))
            task_status.started(binds)
    finally:
        with trio.CancelScope(shield=True):
            await app.aclose()
