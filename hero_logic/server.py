"""Assembling the service: kernel + LogicService + JSON-RPC server on ``rpc.sock``.

:func:`serve` is what ``hero_logic_server`` and ``hero_logic serve`` run, and what the tests
start in a nursery: it reports ``started`` (with the socket path) once the socket accepts
connections, and runs until cancelled.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic import __version__
from hero_logic._service_toml import load_service_toml, service_toml_text
from hero_logic.kernel import Config, open_kernel
from hero_logic.rpc import MethodTable, RpcApp, ServingLimits, serve_rpc, stream_routes
from hero_logic.rpc._library import LibraryService, load_picker
from hero_logic.rpc._seed import seed_library
from hero_logic.rpc._service import LogicService

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
    config: Config, *, admin: bool = False, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run kernel and RPC server (and, with ``admin``, the web admin) until cancelled;
    ``started`` once rpc.sock (and the admin) accept."""
    load_service_toml()
    picker = load_picker(config, config.version_picker)
    async with open_kernel(config) as kernel:
        service = LogicService(kernel)
        service.library = library = LibraryService(kernel, picker)
        kernel.request_handler = service.answer_flow_request
        table = MethodTable.from_service(service)
        table.add_service(library)
        if config.seed_flows:
            await seed_library(service)
        await library.resume_benchmarks()

        def health() -> dict[str, Any]:
            return {
                "version": __version__,
                "running_plays": sum(1 for _ in kernel._handles),
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
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(service.schema_checker.aclose)
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(serve_rpc, app, config.rpc_socket, app.limits)
            if admin:
                from hero_logic.admin import serve_admin

                await nursery.start(serve_admin, config)
            log.info("%s", banner(config, kernel.runner.tier.name))
            task_status.started(config.rpc_socket)
            await trio.sleep_forever()
