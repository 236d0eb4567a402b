"""Serving the ingress: on ``ingress.sock`` and, unless ``--webhook-bind none``, on its TCP
address (127.0.0.1:9821 by default)."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import trio

from hero_logic.kernel import ConfigError
from hero_logic.rpc import serve_rpc

from ._app import IngressApp

if TYPE_CHECKING:
    from hero_logic.kernel import Config
    from hero_logic.service import Service

__all__ = ["parse_webhook_bind", "serve_ingress"]

log = logging.getLogger("hero_logic.ingress")


def parse_webhook_bind(value: str) -> str | None:
    """``"host:port"`` checked, or None for ``none``/empty (no TCP listener)."""
    value = value.strip()
    if value.lower() in ("", "none", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = (
            f"webhook bind {value!r} is not HOST:PORT: use e.g. 127.0.0.1:9821, or 'none' for no "
            "ingress listener (HERO_LOGIC_WEBHOOK_BIND / --webhook-bind)"
        )
        raise ConfigError(msg)
    return value


async def serve_ingress(
    config: Config, service: Service, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the ingress until cancelled; ``started`` with the bound addresses."""
    tcp_bind = parse_webhook_bind(config.webhook_bind)
    app = IngressApp(service, max_body=config.webhook_max_body)
    try:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                functools.partial(serve_rpc, app, config.ingress_socket, tcp_bind=tcp_bind, label="ingress")
            )
            task_status.started(binds)
    except BaseExceptionGroup as group:
        bind_errors, rest = group.split(OSError)
        if bind_errors is None or rest is not None:
            raise
        msg = (
            f"the ingress cannot listen on {tcp_bind}: choose another address with --webhook-bind / "
            "HERO_LOGIC_WEBHOOK_BIND, or 'none'"
        )
        raise ConfigError(msg) from None
