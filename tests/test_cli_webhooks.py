"""``hero_logic webhooks``: create (its URL and, once, its secret), list, deliveries, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._cli_kit import cli

if TYPE_CHECKING:
    from .conftest import Service

FLOW = """
from hero_tracing import flow

@flow(name="order")
def main(order_id: str = "") -> str:
    return order_id
"""


async def test_a_webhook_is_created_listed_and_deleted_from_the_cli(service: Service) -> None:
    await service.push(FLOW, name="order")
    code, out = await cli(service, "webhooks", "create", "orders", "--workflow", "order")
    assert code == 0, out
    assert "/h/wh_" in out
    assert "secret:" in out
    sid = out.split("(", 1)[1].split(")", 1)[0]
    code, out = await cli(service, "webhooks", "list")
    assert sid in out
    assert "secret" not in out
    code, out = await cli(service, "webhooks", "deliveries", sid)
    assert code == 0
    code, out = await cli(service, "webhooks", "delete", sid)
    assert code == 0
    code, out = await cli(service, "webhooks", "create", "bad", "--workflow", "nope", check=False)
    assert code != 0
    assert "nope" in out
