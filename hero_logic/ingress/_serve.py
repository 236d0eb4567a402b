"""Serving the ingress: on ``ingress.sock`` and, unless ``--webhook-bind none``, on its TCP
address (127.0.0.1:9821 by default), with the rate limits the settings give."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import trio

from hero_logic.rpc import ServingLimits, parse_tcp_bind, serve_door

from ._app import IngressApp
from ._rate import IngressRateLimits

if TYPE_CHECKING:
    from hero_logic.kernel import Config
    from hero_logic.service import Service

__all__ = ["parse_webhook_bind", "serve_ingress"]

log = logging.getLogger("hero_logic.ingress")


def parse_webhook_bind(value: str) -> str | None:
    """``"host:port"`` checked, or None for ``none``/empty (no TCP listener)."""
    return parse_tcp_bind(value, door="webhook", setting="HERO_LOGIC_WEBHOOK_BIND / --webhook-bind", example="127.0.0.1:9821")


async def serve_ingress(
    config: Config, service: Service, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the ingress until cancelled; ``started`` with the bound addresses."""
    app = IngressApp(
        service,
        max_body=config.webhook_max_body,
        rate_limits=IngressRateLimits.from_config(config),
        body_timeout_s=config.body_timeout_ms / 1000,
    )
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            functools.partial(
                serve_door, app, config.ingress_socket, tcp_bind=parse_webhook_bind(config.webhook_bind),
                door="ingress", setting="--webhook-bind / HERO_LOGIC_WEBHOOK_BIND",
                limits=ServingLimits.from_config(config),
            )
        )
        log.info("ingress listening on %s", ", ".join(binds))
        task_status.started(binds)
