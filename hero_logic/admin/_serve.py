"""Serving the admin: hypercorn on ``admin.sock`` (0600, in a 0700 directory) and, unless
``--admin-bind none``, on a TCP address (127.0.0.1:9820 by default, never 0.0.0.0 unless asked).
"""

from __future__ import annotations

import functools
import logging
import signal
from typing import TYPE_CHECKING

import trio

from hero_logic import __version__
from hero_logic.kernel import ConfigError
from hero_logic.rpc import ServingLimits, serve_rpc

from ._app import AdminApp
from ._pages import EDITOR_BUNDLE

if TYPE_CHECKING:
    from hero_logic.kernel import Config

__all__ = ["parse_admin_bind", "run_admin", "serve_admin"]

log = logging.getLogger("hero_logic.admin")


def parse_admin_bind(value: str) -> str | None:
    """``"host:port"`` checked, or None for ``none``/empty (no TCP listener)."""
    value = value.strip()
    if value.lower() in ("", "none", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = (
            f"admin bind {value!r} is not HOST:PORT: use e.g. 127.0.0.1:9820, or 'none' to "
            "serve the admin on its Unix socket only (HERO_LOGIC_ADMIN_BIND / --admin-bind)"
        )
        raise ConfigError(msg)
    return value


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
                functools.partial(serve_rpc, app, config.admin_socket, limits, tcp_bind=tcp_bind, label="admin")
            )
            log.info("admin listening on %s", ", ".join(binds))
            task_status.started(binds)
    except BaseExceptionGroup as group:
        bind_errors, rest = group.split(OSError)
        if bind_errors is None or rest is not None:
            raise
        exc = _first_leaf(bind_errors)
        msg = (
            f"the admin cannot listen on {tcp_bind}: {getattr(exc, 'strerror', None) or exc}; choose "
            "another address with --admin-bind / HERO_LOGIC_ADMIN_BIND, or 'none' for the socket only"
        )
        raise ConfigError(msg) from None
    finally:
        with trio.CancelScope(shield=True):
            await app.aclose()


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _serve_until_signal(config: Config) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve_admin, config)
            print(
                f"hero_logic_admin {__version__} serving on {', '.join(binds)}; "
                f"service at {config.rpc_socket}",
                flush=True,
            )
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def run_admin(config: Config) -> int:
    """``hero_logic_admin``: check service.toml, serve the admin until SIGTERM or SIGINT."""
    from hero_logic._service_toml import load_service_toml
    from hero_logic.cli._daemon import unwrap_startup_error

    load_service_toml()
    parse_admin_bind(config.admin_bind)
    with unwrap_startup_error():
        trio.run(_serve_until_signal, config)
    return 0
