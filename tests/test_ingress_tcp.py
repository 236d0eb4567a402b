"""The ingress over real TCP, as the outside world (or a reverse proxy) reaches it on
``--webhook-bind``: signed webhooks, resume links, the headers every answer carries, nothing
but ``/r/`` and ``/h/`` served, and the rate limits set by the settings."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ._ingress_kit import (
    ASK,
    ORDER,
    free_port,
    github_headers,
    hmac_headers,
    open_ingress,
    stripe_headers,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import trio

    from .conftest import Service

Served = tuple["Service", httpx.AsyncClient]


@pytest.fixture
async def tcp(root: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    """A service whose ingress listens on a free loopback port; the client speaks TCP to it."""
    async with open_ingress(root, nursery, tcp=True) as served:
        yield served
    nursery.cancel_scope.cancel()


def _path(url: str, web: httpx.AsyncClient) -> str:
    """The path of a link the service gave: its public URL is the TCP address itself."""
    base = str(web.base_url).rstrip("/")
    assert url.startswith(base + "/"), (url, base)
    return url[len(base):]


async def _started(service: Service, wf_sid: str) -> list[dict[str, Any]]:
    """The plays of ``wf_sid``: what the deliveries started."""
    plays: list[dict[str, Any]] = await service.call("play_list", workflow_sid=wf_sid)
    return plays


async def test_the_ingress_answers_on_its_tcp_address_and_links_point_there(tcp: Served) -> None:
    service, web = tcp
    assert service.config.webhook_bind.startswith("127.0.0.1:")
    assert str(web.base_url).rstrip("/") == f"http://{service.config.webhook_bind}"
    with socket.create_connection(("127.0.0.1", int(service.config.webhook_bind.rpartition(":")[2])), timeout=5):
        pass  # a real TCP listener, not only the socket


async def test_a_github_signed_delivery_starts_a_play_once_per_delivery_id(tcp: Served) -> None:
    service, web = tcp
    wf = await service.push(ORDER, name="order")
    hook = await service.call("webhook_create", name="gh", action="start", workflow_sid=wf["sid"], scheme="github", secret="s3")
    body = json.dumps({"order_id": "G1", "amount": 5}).encode()
    first = await web.post(_path(hook["url"], web), content=body, headers=github_headers("s3", body, "delivery-1"))
    assert first.status_code == 200, first.text
    play = await service.call("play_wait", play_sid=first.json()["play_sid"], timeout_ms=20000)
    assert (play["status"], play["output_data"]) == ("success", {"order_id": "G1", "amount": 5})
    again = await web.post(_path(hook["url"], web), content=body, headers=github_headers("s3", body, "delivery-1"))
    assert again.status_code == 200
    assert (again.json()["repeat"], again.json()["play_sid"]) == (True, first.json()["play_sid"])
    assert len(await _started(service, wf["sid"])) == 1


async def test_a_stripe_signed_delivery_starts_a_play_and_its_event_id_is_its_delivery_id(tcp: Served) -> None:
    service, web = tcp
    wf = await service.push(ORDER, name="order")
    hook = await service.call("webhook_create", name="st", action="start", workflow_sid=wf["sid"], scheme="stripe", secret="whsec_t")
    body = json.dumps({"id": "evt_9", "order_id": "S1"}).encode()
    taken = await web.post(_path(hook["url"], web), content=body, headers=stripe_headers("whsec_t", body))
    assert taken.status_code == 200, taken.text
    play = await service.call("play_wait", play_sid=taken.json()["play_sid"], timeout_ms=20000)
    assert play["output_data"] == {"order_id": "S1", "amount": 0}
    repeat = await web.post(_path(hook["url"], web), content=body, headers=stripe_headers("whsec_t", body))
    assert repeat.json()["repeat"] is True
    stale = await web.post(_path(hook["url"], web), content=body, headers=stripe_headers("whsec_t", body, at=int(time.time()) - 1000))
    assert stale.status_code == 401
    assert len(await _started(service, wf["sid"])) == 1


async def test_a_bad_signature_is_401_and_starts_nothing(tcp: Served) -> None:
    service, web = tcp
    wf = await service.push(ORDER, name="order")
    hook = await service.call("webhook_create", name="hm", action="start", workflow_sid=wf["sid"])
    body = json.dumps({"order_id": "X"}).encode()
    for headers in (hmac_headers("not the secret", body), {"content-type": "application/json"}, github_headers(hook["secret"], body, "d")):
        forged = await web.post(_path(hook["url"], web), content=body, headers=headers)
        assert forged.status_code == 401, forged.text
        assert "x-signature" in forged.json()["error"]
    assert await _started(service, wf["sid"]) == []
    assert {d["status"] for d in await service.call("webhook_deliveries", sid=hook["sid"])} == {401}


async def test_an_altered_resume_link_is_404_and_an_expired_one_410(tcp: Served) -> None:
    from hero_logic.service._resume_links import ResumeLinks

    service, web = tcp
    play = await service.run(await service.push(ASK, name="ask"))
    (question,) = play["pending_resumes"]
    path = _path(question["url"], web)
    body, mac = path[len("/r/"):].split(".")
    for altered in (f"/r/{body[:-2]}xx.{mac}", f"/r/{body}.{mac[:-2]}xx", "/r/" + body):
        assert (await web.get(altered)).status_code == 404
        assert (await web.post(altered, json="M")).status_code == 404
    links = ResumeLinks(service.config.resume_links_key_file, service.config.ingress_public_url)
    expired = links.token(play["sid"], question["id"], expires_at=int(time.time() * 1000) - 1)
    gone = await web.get(f"/r/{expired}")
    assert gone.status_code == 410
    assert "expired" in gone.text.lower()
    assert (await web.post(f"/r/{expired}", json="M")).status_code == 410
    assert (await service.call("play_status", play_sid=play["sid"]))["status"] == "awaiting_resume"


async def test_pages_carry_the_security_headers_and_no_answer_allows_cross_origin_reads(tcp: Served) -> None:
    service, web = tcp
    play = await service.run(await service.push(ASK, name="ask"))
    path = _path(play["pending_resumes"][0]["url"], web)
    wf = await service.push(ORDER, name="order")
    hook = await service.call("webhook_create", name="cors", action="start", workflow_sid=wf["sid"])
    body = json.dumps({"order_id": "C"}).encode()
    origin = {"origin": "https://attacker.example"}
    page = await web.get(path, headers=origin)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    answers = [
        page,
        await web.get("/r/not-a-token", headers=origin),
        await web.options(path, headers={**origin, "access-control-request-method": "POST"}),
        await web.post(_path(hook["url"], web), content=body, headers={**hmac_headers(hook["secret"], body), **origin}),
        await web.post(path, json="M", headers=origin),
    ]
    assert [a.status_code for a in answers] == [200, 404, 405, 200, 200]
    for answer in answers:
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")], answer.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/rpc"), ("POST", "/api/rpc"), ("GET", "/health"), ("GET", "/api/health"), ("GET", "/openrpc.json"), ("GET", "/"),
     ("GET", "/plays"), ("GET", "/static/app.css"), ("GET", "/r/"), ("GET", "/h/x"), ("GET", "/r/a/b"), ("GET", "/h")],
)
async def test_nothing_but_resume_links_and_webhooks_is_served_over_tcp(tcp: Served, method: str, path: str) -> None:
    _service, web = tcp
    ping = {"jsonrpc": "2.0", "method": "system.ping", "id": 1} if method == "POST" else None
    answer = await web.request(method, path, json=ping)
    assert answer.status_code in (404, 405), answer.text
    assert "jsonrpc" not in answer.text
    assert "hero_logic" not in answer.text.lower() or answer.status_code == 405


async def test_a_low_per_key_limit_refuses_with_retry_after_over_tcp(root: Path, nursery: trio.Nursery) -> None:
    """``--webhook-rate-per-key 1/min,burst=3``: the fourth request to one link in a minute is a
    429 whose Retry-After is the minute's refill, long before the default burst of 300."""
    async with open_ingress(root, nursery, tcp=True, webhook_rate_per_key="1/min,burst=3") as (_service, web):
        codes = [(await web.get("/r/not-a-real-token")).status_code for _ in range(3)]
        refused = await web.get("/r/not-a-real-token")
        other = await web.get("/r/another-token")
    nursery.cancel_scope.cancel()
    assert codes == [404, 404, 404]
    assert refused.status_code == 429
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    assert "too many requests" in refused.text
    assert other.status_code == 404  # another link has its own bucket


async def test_loopback_peers_are_limited_per_key_only(root: Path, nursery: trio.Nursery) -> None:
    """From 127.0.0.1 (the reverse proxy) the per-address limit does not apply, however low."""
    async with open_ingress(root, nursery, tcp=True, webhook_rate_per_address="1/h,burst=2") as (_service, web):
        codes = [(await web.get(f"/r/guess-{n}")).status_code for n in range(6)]
    nursery.cancel_scope.cancel()
    assert codes == [404] * 6


def _outside_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


async def test_a_remote_address_is_limited_per_address_over_tcp(root: Path, nursery: trio.Nursery) -> None:
    """Bound on this machine's own non-loopback address, a connection comes from it: a peer
    that is not loopback. Past ``--webhook-rate-per-address 1/h,burst=3`` its guesses at links
    are refused, each new link's too."""
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    bind = f"{address}:{free_port(address)}"
    async with open_ingress(root, nursery, tcp=True, webhook_bind=bind, webhook_rate_per_address="1/h,burst=3") as (_service, web):
        codes = [(await web.get(f"/r/guess-{n}")).status_code for n in range(5)]
        refused = await web.get("/r/guess-99")
    nursery.cancel_scope.cancel()
    assert codes == [404, 404, 404, 429, 429]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 3000  # an hour's refill, not a second's


async def test_the_per_address_setting_reaches_the_app_for_a_remote_client() -> None:
    """The same, through the app directly with a remote peer in the ASGI scope (for machines
    with no outside address)."""
    from hero_logic.ingress import IngressApp
    from hero_logic.ingress._rate import IngressRateLimits
    from hero_logic.kernel import Config

    from .test_ingress_rate import _NoLinks

    config = Config.load({"webhook_rate_per_address": "1/h,burst=3"}, {"PATH_ROOT": "/r"})
    app = IngressApp(_NoLinks(), max_body=1024, rate_limits=IngressRateLimits.from_config(config))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as web:
        codes = [(await web.get(f"/r/guess-{n}")).status_code for n in range(5)]
    assert codes == [404, 404, 404, 429, 429]
