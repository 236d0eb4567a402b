"""Assembling the process: kernel + service + JSON-RPC server on ``rpc.sock`` (+ the admin).

:func:`serve` is what ``hero_logic_server`` and ``hero_logic serve`` run, and what the tests
start in a nursery: it reports ``started`` (with the socket path) once the socket accepts
connections, and runs until cancelled.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic import __version__
from hero_logic._service_toml import load_service_toml, service_toml_text
from hero_logic.kernel import Config, open_kernel
from hero_logic.rpc import MethodTable, RpcApp, ServingLimits, serve_rpc, stream_routes
from hero_logic.service import open_service

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["load_service_toml", "manifest", "serve", "service_toml_text"]

log = logging.getLogger("hero_logic")


def manifest(config: Config) -> dict[str, Any]:
    """The ``/.well-known/heroservice.json`` document."""
    return {
        "name": "hero_logic",
        "version": __version__,
        "protocol": "jsonrpc-2.0",
        "openrpc": "/openrpc.json",
        "sockets": {"rpc": str(config.rpc_socket), "admin": str(config.admin_socket)},
        "socket": "rpc",
    }


def banner(config: Config, tier: str) -> str:
    """The one-line start-up banner."""
    return (
        f"hero_logic {__version__} serving on {config.rpc_socket} "
        f"(store={config.store}, sandbox={tier}, root={config.root})"
    )


async def serve(
    config: Config,
    *,
    admin: bool = False,
    ingress: bool = False,
    freeze_gc: bool = False,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run kernel and RPC server (and, with ``admin``, the web admin) until cancelled;
    ``started`` once rpc.sock (and the admin) accept. ``ingress`` also serves the outside
    world's door (resume links, approval pages, webhooks) on ``--webhook-bind``. ``freeze_gc`` (for the service's own
    process) moves what start-up made out of the garbage collector's sight."""
    load_service_toml()
    async with open_kernel(config) as kernel, open_service(kernel, seed=config.seed_flows) as service:
        table = MethodTable()
        for room in service.api():
            table.add_service(room)

        def health() -> dict[str, Any]:
            return {
                "version": __version__,
                "running_plays": kernel.active_plays(),
                "sandbox": kernel.runner.tier.name,
                "store": config.store,
                "stream": attrs.asdict(kernel.bus.statistics()),
            }

        app = RpcApp(
            table,
            max_body_bytes=config.max_body_bytes,
            manifest=manifest(config),
            health=health,
            websocket_routes=stream_routes(kernel),
            limits=ServingLimits.from_config(config),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, app, config.rpc_socket, app.limits)
            if admin:
                from hero_logic.admin import serve_admin

                await nursery.start(serve_admin, config)
            if ingress:
                from hero_logic.ingress import serve_ingress

                await nursery.start(serve_ingress, config, service)
            log.info("%s", banner(config, kernel.runner.tier.name))
            # What start-up made (modules, classes, the method table) lives as long as the
            # service: out of the collector's sight, a full collection walks only what came
            # after, so it never stalls the event loop for long.
            if freeze_gc:
                gc.freeze()
            task_status.started(config.rpc_socket)
            await trio.sleep_forever()
