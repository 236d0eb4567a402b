"""What the ingress tests share: their flows, the signatures webhook senders put on a
delivery, a free TCP port, and a service serving the ingress with a client on it."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

from .conftest import Service, make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import trio

__all__ = [
    "ASK", "ORDER", "free_port", "github_headers", "hmac_headers", "open_ingress", "stripe_headers",
]

ASK = """
from hero_tracing import flow, ask_user

@flow(name="ask")
def main() -> dict:
    size = ask_user.choice("Which size?", ["S", "M", "L"])
    ok = ask_user.confirm("Ship it?")
    return {"size": size, "ok": ok}
"""

ORDER = """
from hero_tracing import flow

@flow(name="order")
def main(order_id: str, amount: int = 0) -> dict:
    return {"order_id": order_id, "amount": amount}
"""


def _sign(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def hmac_headers(secret: str, body: bytes, **extra: str) -> dict[str, str]:
    """The headers of an ``hmac-sha256`` delivery: ``X-Signature: sha256=<hex>``."""
    return {"x-signature": "sha256=" + _sign(secret, body), "content-type": "application/json", **extra}


def github_headers(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    """The headers GitHub sends: ``X-Hub-Signature-256`` and the delivery's id."""
    return {"x-hub-signature-256": "sha256=" + _sign(secret, body), "x-github-delivery": delivery, "content-type": "application/json"}


def stripe_headers(secret: str, body: bytes, *, at: int | None = None) -> dict[str, str]:
    """The ``Stripe-Signature`` of a delivery made at ``at`` (default now)."""
    stamp = str(int(time.time()) if at is None else at)
    return {"stripe-signature": f"t={stamp},v1={_sign(secret, stamp.encode() + b'.' + body)}", "content-type": "application/json"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now (the service binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def open_ingress(root: Path, nursery: trio.Nursery, *, tcp: bool, **overrides: Any) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """A service with its ingress, and an HTTP client on it: over TCP at a free loopback port
    (``public_url`` left to follow it, so links work as given) or over ``ingress.sock``.
    ``overrides`` are Config attributes (``webhook_rate_per_key="1/min,burst=3"``)."""
    settings: dict[str, Any] = {"webhook_bind": f"127.0.0.1:{free_port()}" if tcp else "none", **overrides}
    config = attrs.evolve(make_config(root), **settings)
    await nursery.start(lambda task_status: serve(config, ingress=True, task_status=task_status))
    if tcp:
        web = httpx.AsyncClient(base_url=config.ingress_public_url)
    else:
        web = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(config.ingress_socket)), base_url="http://ingress")
    async with AsyncClient(config.rpc_socket) as client, web:
        yield Service(config, client), web
