"""The ingress (CONTRACT.md §11): resume links with approval pages, and signed webhooks. Only
``/r/...`` and ``/h/...`` are served; nothing of the RPC API or the admin."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from ._ingress_kit import ASK, ORDER, github_headers, hmac_headers, open_ingress, stripe_headers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import httpx
    import trio

    from .conftest import Service

PUBLIC = "https://hero.example"


@pytest.fixture
async def served(root: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    async with open_ingress(root, nursery, tcp=False, public_url=PUBLIC, webhook_max_body=4096) as opened:
        yield opened
    nursery.cancel_scope.cancel()


def _path(url: str) -> str:
    assert url.startswith(PUBLIC + "/r/"), url
    return url[len(PUBLIC):]


async def test_a_question_has_a_signed_link_whose_page_answers_it(served: tuple[Service, httpx.AsyncClient]) -> None:
    service, web = served
    play = await service.run(await service.push(ASK, name="ask"))
    (question,) = play["pending_resumes"]
    page = await web.get(_path(question["url"]))
    assert page.status_code == 200
    assert "Which size?" in page.text
    assert "<select" in page.text
    assert "ask" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    taken = await web.post(_path(question["url"]), data={"value": '"M"', "answered_by": "Ann"})
    assert taken.status_code == 200, taken.text
    assert "Thank you" in taken.text
    again = await web.post(_path(question["url"]), data={"value": '"M"', "answered_by": "Ann"})
    assert again.status_code == 200, again.text
    assert "Already answered" in again.text  # the same answer twice: said so, not thanked again
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    (confirm,) = play["pending_resumes"]
    form = (await web.get(_path(confirm["url"]))).text
    assert "Yes" in form
    assert "No" in form
    assert (await web.post(_path(confirm["url"]), data={"value": "true"})).status_code == 200
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"size": "M", "ok": True}
    first = play["received_resumes"][0]
    assert (first["via"], first["answered_by"], first["payload"]) == ("url", "Ann", "M")


async def test_json_answers_follow_play_resume_semantics(served: tuple[Service, httpx.AsyncClient]) -> None:
    service, web = served
    play = await service.run(await service.push(ASK, name="ask"))
    path = _path(play["pending_resumes"][0]["url"])
    wrong = await web.post(path, json={"payload": "XL"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == -32602
    assert (await web.post(path, json="L")).status_code == 200
    assert (await web.post(path, json={"payload": "L"})).json()["ok"]  # the same again: its receipt
    conflict = await web.post(path, json="S")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == -32003


async def test_an_altered_or_unknown_link_is_404_and_an_expired_one_410(served: tuple[Service, httpx.AsyncClient], root: Path) -> None:
    service, web = served
    play = await service.run(await service.push(ASK, name="ask"))
    path = _path(play["pending_resumes"][0]["url"])
    body, mac = path[len("/r/"):].split(".")
    altered = f"/r/{body[:-2]}xx.{mac}"
    assert (await web.get(altered)).status_code == 404
    assert (await web.post(altered, json="M")).status_code == 404
    assert (await web.get("/r/nonsense")).status_code == 404
    from hero_logic.service._resume_links import ResumeLinks

    links = ResumeLinks(service.config.resume_links_key_file, PUBLIC)
    expired = links.token(play["sid"], play["pending_resumes"][0]["id"], expires_at=int(time.time() * 1000) - 1)
    assert (await web.get(f"/r/{expired}")).status_code == 410
    assert (await web.post(f"/r/{expired}", json="M")).status_code == 410
    key_mode = service.config.resume_links_key_file.stat().st_mode & 0o777
    assert key_mode == 0o600


async def test_nothing_but_r_and_h_is_served(served: tuple[Service, httpx.AsyncClient]) -> None:
    _service, web = served
    for method, path in (("POST", "/rpc"), ("GET", "/health"), ("GET", "/openrpc.json"), ("GET", "/"), ("GET", "/api/plays/events"), ("GET", "/h/x")):
        answer = await web.request(method, path, json={"jsonrpc": "2.0", "method": "system.ping", "id": 1} if method == "POST" else None)
        assert answer.status_code in (404, 405), (method, path, answer.status_code)


async def test_one_link_hammered_over_the_socket_gets_429_with_retry_after(served: tuple[Service, httpx.AsyncClient]) -> None:
    """Past the per-key burst (300) a flood on one link is refused before any work is done."""
    _service, web = served
    codes: list[int] = []
    while 429 not in codes and len(codes) < 2000:  # the bucket refills at 50 a second meanwhile
        codes.append((await web.get("/r/not-a-real-token")).status_code)
    assert set(codes[:300]) == {404}
    assert codes[-1] == 429, len(codes)
    refused = await web.get("/r/not-a-real-token")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert (await web.get("/r/another-token")).status_code == 404


async def test_a_signed_webhook_starts_a_play_once_per_delivery_and_records_every_delivery(served: tuple[Service, httpx.AsyncClient]) -> None:
    service, web = served
    wf = await service.push(ORDER, name="order")
    hook = await service.call("webhook_create", name="orders", action="start", workflow_sid=wf["sid"])
    assert hook["url"].startswith(PUBLIC + "/h/")
    assert hook["secret"]
    path = hook["url"][len(PUBLIC):]
    body = json.dumps({"order_id": "A1", "amount": 3}).encode()
    first = await web.post(path, content=body, headers=hmac_headers(hook["secret"], body, **{"idempotency-key": "d-1"}))
    assert first.status_code == 200, first.text
    again = await web.post(path, content=body, headers=hmac_headers(hook["secret"], body, **{"idempotency-key": "d-1"}))
    assert again.json()["repeat"] is True
    assert again.json()["play_sid"] == first.json()["play_sid"]
    play = await service.call("play_wait", play_sid=first.json()["play_sid"], timeout_ms=20000)
    assert play["output_data"] == {"order_id": "A1", "amount": 3}
    forged = await web.post(path, content=body, headers=hmac_headers("not the secret", body))
    assert forged.status_code == 401
    too_big = await web.post(path, content=b"{" + b" " * 5000 + b"}", headers=hmac_headers(hook["secret"], b""))
    assert too_big.status_code == 413
    bad_inputs = json.dumps({"amount": 3}).encode()
    refused = await web.post(path, content=bad_inputs, headers=hmac_headers(hook["secret"], bad_inputs))
    assert refused.status_code == 422
    assert "order_id" in json.dumps(refused.json()["fields"])
    deliveries = await service.call("webhook_deliveries", sid=hook["sid"])
    assert sorted(d["status"] for d in deliveries) == [200, 200, 401, 413, 422]  # every delivery, the one refused for its size too
    assert all("secret" not in json.dumps(w).lower() or not w["secret"] for w in await service.call("webhook_list"))
    plays = await service.call("play_list", workflow_sid=wf["sid"])
    assert len(plays) == 1, [(p["name"], p["status"], p["input_data"]) for p in plays]


async def test_github_and_stripe_signatures_are_checked(served: tuple[Service, httpx.AsyncClient]) -> None:
    service, web = served
    wf = await service.push(ORDER, name="order")
    body = json.dumps({"order_id": "G", "id": "evt_1"}).encode()
    github = await service.call("webhook_create", name="gh", action="start", workflow_sid=wf["sid"], scheme="github", secret="s3")
    ok = await web.post(github["url"][len(PUBLIC):], content=body, headers=github_headers("s3", body, "g1"))
    assert ok.status_code == 200, ok.text
    stripe = await service.call("webhook_create", name="st", action="start", workflow_sid=wf["sid"], scheme="stripe", secret="whsec")
    path = stripe["url"][len(PUBLIC):]
    assert (await web.post(path, content=body, headers=stripe_headers("whsec", body))).status_code == 200
    repeat = await web.post(path, content=body, headers=stripe_headers("whsec", body))
    assert repeat.json()["repeat"] is True  # the Stripe event id is the delivery id
    stale = stripe_headers("whsec", body, at=int(time.time()) - 1000)
    assert (await web.post(path, content=body, headers=stale)).status_code == 401


def test_event_keys_render_over_the_body() -> None:
    from hero_logic.kernel import InvalidParams
    from hero_logic.service._webhooks import render_key

    body: dict[str, Any] = {"data": {"object": {"metadata": {"order_id": 42}}}, "items": [{"sku": "x"}]}
    assert render_key("payment:{data.object.metadata.order_id}", body) == "payment:42"
    assert render_key("sku:{items.0.sku}", body) == "sku:x"
    with pytest.raises(InvalidParams):
        render_key("payment:{data.missing}", body)
