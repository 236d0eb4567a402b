"""Hostile and unlucky callers of the ingress (found by an outside tester): a body that never
comes, a declared length over the cap, JSON the service cannot store (NaN, 1e999, a lone
surrogate, nesting thousands deep), HEAD on a link. Each is the caller's error, answered at the
door; none is a 500, and the question stays open for a good answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio

from ._ingress_kit import open_ingress

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from .conftest import Service

Served = tuple["Service", "httpx.AsyncClient"]

ASK_NUMBER = """
from hero_tracing import flow, ask_user

@flow(name="ask")
def main() -> float:
    return ask_user.number("How many?")
"""

ORDER = """
from hero_tracing import flow

@flow(name="order")
def main(order_id: str) -> str:
    return order_id
"""


@pytest.fixture
async def tcp(root: Any, nursery: trio.Nursery) -> AsyncIterator[Served]:
    async with open_ingress(root, nursery, tcp=True, body_timeout_ms=1000) as served:
        yield served
    nursery.cancel_scope.cancel()


def _path(url: str, web: httpx.AsyncClient) -> str:
    return url[len(str(web.base_url).rstrip("/")):]


async def _raw(web: httpx.AsyncClient, request: bytes, wait_s: float) -> bytes:
    """Send ``request`` as is on a fresh connection; what comes back within ``wait_s``."""
    host, port = web.base_url.host, web.base_url.port
    assert port is not None
    stream = await trio.open_tcp_stream(host, port)
    got = b""
    async with stream:
        await stream.send_all(request)
        with trio.move_on_after(wait_s):
            while chunk := await stream.receive_some(65536):
                got += chunk
    return got


async def test_a_body_that_never_comes_is_408_within_the_body_deadline(tcp: Served) -> None:
    service, web = tcp
    hook = await service.call("webhook_create", name="slow", action="event", event_key="k", scheme="none")
    path = _path(hook["url"], web)
    with trio.fail_after(10):
        got = await _raw(web, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode(), wait_s=5)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]


async def test_a_declared_length_over_the_cap_is_413_before_the_body(tcp: Served) -> None:
    service, web = tcp
    hook = await service.call("webhook_create", name="big", action="event", event_key="k", scheme="none")
    path = _path(hook["url"], web)
    with trio.fail_after(10):
        got = await _raw(web, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n".encode(), wait_s=3)
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    deliveries = await service.call("webhook_deliveries", sid=hook["sid"])
    assert [d["status"] for d in deliveries] == [413]  # recorded, as every delivery


@pytest.mark.parametrize("body", [b"NaN", b"Infinity", b"1e999", b'{"payload": NaN}', b'"\\ud800"', b"[" * 50000 + b"]" * 50000])
async def test_json_the_service_cannot_store_is_a_400_answer_and_the_question_stays_open(tcp: Served, body: bytes) -> None:
    service, web = tcp
    play = await service.run(await service.push(ASK_NUMBER, name="ask"))
    path = _path(play["pending_resumes"][0]["url"], web)
    refused = await web.post(path, content=body, headers={"content-type": "application/json"})
    assert refused.status_code == 400, (refused.status_code, refused.text[:300])
    taken = await web.post(path, json=3)
    assert taken.status_code == 200, taken.text


async def test_a_form_number_too_large_for_a_float_is_refused_not_a_500(tcp: Served) -> None:
    service, web = tcp
    play = await service.run(await service.push(ASK_NUMBER, name="ask"))
    path = _path(play["pending_resumes"][0]["url"], web)
    refused = await web.post(path, data={"value": "1e999"})
    assert refused.status_code == 400, (refused.status_code, refused.text[:300])


@pytest.mark.parametrize("body", [b'{"order_id": "\\ud800"}', b"NaN", b"[" * 50000 + b"]" * 50000])
async def test_a_webhook_body_the_service_cannot_store_is_400_and_recorded(tcp: Served, body: bytes) -> None:
    service, web = tcp
    wf = await service.push(ORDER, name="order")
    hook = await service.call("webhook_create", name="orders", action="start", workflow_sid=wf["sid"], scheme="none")
    answer = await web.post(_path(hook["url"], web), content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert "strict JSON" in answer.json()["error"]
    assert [d["status"] for d in await service.call("webhook_deliveries", sid=hook["sid"])] == [400]


async def test_head_on_a_link_has_the_page_s_headers_and_no_body(tcp: Served) -> None:
    service, web = tcp
    play = await service.run(await service.push(ASK_NUMBER, name="ask"))
    path = _path(play["pending_resumes"][0]["url"], web)
    page, head = await web.get(path), await web.head(path)
    assert (page.status_code, head.status_code) == (200, 200)
    assert head.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert head.content == b""


WAITS = """
from hero_tracing import flow

@flow(name="waits")
def main() -> dict:
    return flow.wait_event("paid:7")
"""


async def test_an_event_a_webhook_delivered_is_received_via_webhook(tcp: Served) -> None:
    service, web = tcp
    play = await service.run(await service.push(WAITS, name="waits"))
    assert play["status"] == "awaiting_resume", play["error_message"]
    hook = await service.call("webhook_create", name="paid", action="event", event_key="paid:{id}", scheme="none")
    assert (await web.post(_path(hook["url"], web), json={"id": 7})).status_code == 200
    done = await service.call("play_wait", play_sid=play["sid"], timeout_ms=30000)
    assert done["status"] == "success", done["error_message"]
    assert [r["via"] for r in done["received_resumes"]] == ["webhook"]
