"""The ingress: the one door open to the outside world, serving only ``/r/...`` and ``/h/...``.

    GET  /r/<token>   the approval page of one open question (no login: the token is the key)
    POST /r/<token>   answer it (form-encoded from that page, or JSON), as ``play_resume``
    POST /h/<sid>     a webhook delivery (see :mod:`hero_logic.service._webhooks`)

Nothing of the JSON-RPC API or the admin is reachable here; every other path is 404. Answers
given here record ``via: url``. Pages are sent with a strict Content-Security-Policy, no
framing, no referrer (the token is in the URL) and no caching.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import trio

from hero_logic.kernel import Conflict, HeroLogicError, InvalidParams, NotFound, dumps, loads_strict

from ._form import approval_page, message_page, read_form
from ._rate import IngressRateLimits, RateLimiter
from ._rate import is_local as _is_local
from ._rate import retry_after as _retry_after

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hero_logic.service import Service

__all__ = ["IngressApp"]

log = logging.getLogger("hero_logic.ingress")

Scope = dict[str, Any]

_HTML_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
MAX_ANSWER_BODY = 1024 * 1024


def _status_of(exc: HeroLogicError) -> int:
    if getattr(exc, "expired", False) or type(exc).__name__ == "LinkExpired":
        return 410
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidParams):
        return 400
    if isinstance(exc, Conflict):
        return 409
    return 409 if exc.code == -32002 else 500


class IngressApp:
    """The ingress as a raw ASGI app over one running service."""

    def __init__(
        self, service: Service, *, max_body: int, rate_limits: IngressRateLimits | None = None, body_timeout_s: float = 15.0
    ) -> None:
        self.service = service
        self.max_body = max_body
        self.body_timeout_s = body_timeout_s
        limits = rate_limits or IngressRateLimits()
        self._per_address = RateLimiter(limits.per_address, trio.current_time)
        self._per_key = RateLimiter(limits.per_key, trio.current_time)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        kind, _, key = path.lstrip("/").partition("/")
        if kind not in ("r", "h") or not key or "/" in key:
            await _reply(send, 404, {"error": "not found"})
            return
        head = method == "HEAD" and kind == "r"  # a GET without its body
        if method not in (("GET", "HEAD", "POST") if kind == "r" else ("POST",)):
            await _reply(send, 405, {"error": f"{method} is not allowed here"})
            return
        wait = self._rate_limited(scope, f"{kind}/{key}")
        if wait:
            await _reply(send, 429, {"error": "too many requests; retry later"}, retry_after=wait)
            return
        cap = self.max_body if kind == "h" else MAX_ANSWER_BODY
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:  # refused before a byte of it is read
            await self._too_large(send, kind, key, cap)
            return
        body: bytes | None = b""
        with trio.move_on_after(self.body_timeout_s) as deadline:
            body = await _read_body(receive, cap)
        if deadline.cancelled_caught:
            await _reply(send, 408, {"error": f"the body did not arrive within {self.body_timeout_s:g} s"})
            return
        if body is None:
            await self._too_large(send, kind, key, cap)
            return
        if head:
            send = _without_body(send)
        try:
            if kind == "h":
                status, answer = await self.service.webhooks.deliver(key, headers, body)
                await _reply(send, status, answer)
            elif method in ("GET", "HEAD"):
                await self._page(send, key)
            else:
                await self._answer(send, key, headers, body)
        except Exception:  # one bad request must never take the ingress down
            log.exception("ingress: %s %s failed", method, path[:80])
            if kind == "h":
                with contextlib.suppress(Exception):
                    await self.service.webhooks.record_refused(key, 500, "the service could not take this delivery; see its log")
            await _reply(send, 500, {"error": "the service could not take this request; see its log"})

    async def _too_large(self, send: Callable[[dict[str, Any]], Awaitable[None]], kind: str, key: str, cap: int) -> None:
        why = f"the body is over {cap} bytes"
        if kind == "h":  # every delivery is recorded, the refused ones too
            await self.service.webhooks.record_refused(key, 413, why)
        await _reply(send, 413, {"error": why})

    def _rate_limited(self, scope: Scope, key: str) -> float:
        """0.0 when the request may go on, else the seconds to wait (see :mod:`._rate`)."""
        client = scope.get("client")
        address = str(client[0]) if client else ""
        by_address = self._per_address.take(address) if address and not _is_local(address) else 0.0
        # A request refused by its address takes nothing of the key's bucket, so one flooding
        # address cannot use up a link's or a webhook's allowance for its legitimate senders.
        return by_address or self._per_key.take(key)

    async def _page(self, send: Callable[[dict[str, Any]], Awaitable[None]], token: str) -> None:
        try:
            play_sid, resume_id = self.service.resume_links.check(token)
            play = await self.service.kernel.get_play(play_sid)
        except HeroLogicError as exc:
            await _html(send, _status_of(exc), message_page("This link does not work", exc.message, error=True))
            return
        answered = next((r for r in play.received_resumes if r.id == resume_id), None)
        if answered is not None:
            await _html(send, 200, message_page("Already answered", f"This question was answered with {json.dumps(answered.payload)[:200]}."))
            return
        opened = await self.service.resumes.open_pauses(play)
        question = next((r for r in opened if r.id == resume_id), None)
        if question is None:
            await _html(send, 404, message_page("Nothing to answer", f"Play {play.name or play.sid} does not ask this any more ({play.status.value}).", error=True))
            return
        workflow = await self.service.kernel.repo.get_workflow(play.workflow_sid)
        page = approval_page(
            flow_name=workflow.name, play_name=play.name, question=question.name, schema=question.schema, ui=question.ui, action=f"/r/{token}"
        )
        await _html(send, 200, page)

    async def _answer(self, send: Callable[[dict[str, Any]], Awaitable[None]], token: str, headers: dict[str, str], body: bytes) -> None:
        is_form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        answered = None
        try:
            play_sid, resume_id = self.service.resume_links.check(token)
            if is_form:
                play = await self.service.kernel.get_play(play_sid)
                opened = await self.service.resumes.open_pauses(play)
                question = next((r for r in opened if r.id == resume_id), None)
                answered = next((r for r in play.received_resumes if r.id == resume_id), None)
                schema = question.schema if question is not None else (answered.schema if answered else None)
                try:
                    payload, answered_by = read_form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True), schema)
                except ValueError as exc:
                    msg = "payload"
                    raise InvalidParams.fields([{"field": msg, "error": str(exc)}], context="answer") from None
            else:
                payload, answered_by = _json_answer(body, headers)
            receipt = await self.service.resumes.answer(play_sid, resume_id, payload, answered_by=answered_by, via="url")
        except HeroLogicError as exc:
            status = _status_of(exc)
            if is_form:
                detail = exc.message + "".join(f"\n{p.get('field')}: {p.get('error')}" for p in (exc.data or []) if isinstance(p, dict))
                await _html(send, status, message_page("The answer was not taken", detail, error=True))
            else:
                await _reply(send, status, {"error": exc.to_json()})
            return
        if is_form and answered is not None:  # the same answer again: its first receipt
            await _html(send, 200, message_page("Already answered", "This question was already answered with this answer."))
        elif is_form:
            await _html(send, 200, message_page("Thank you", "Your answer was recorded; the flow goes on."))
        else:
            await _reply(send, 200, receipt)


def _json_answer(body: bytes, headers: dict[str, str]) -> tuple[Any, str]:
    try:
        value = loads_strict(body) if body else None
    except ValueError as exc:  # not JSON, or NaN, 1e999, a lone surrogate, nesting too deep
        msg = "body"
        raise InvalidParams.fields(
            [{"field": msg, "error": f"the body is not strict JSON ({exc}): send the answer as JSON, or post the form"}], context="answer"
        ) from None
    if isinstance(value, dict) and "payload" in value and set(value) <= {"payload", "answered_by"}:
        return value["payload"], str(value.get("answered_by") or headers.get("x-answered-by", ""))
    return value, headers.get("x-answered-by", "")


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]], cap: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _without_body(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """``send`` for a HEAD request: the headers of the GET answer, an empty body."""

    async def head_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_send


async def _reply(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, answer: Any, *, retry_after: float = 0.0) -> None:
    body = dumps(answer)
    headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body))]
    if retry_after:
        headers.append((b"retry-after", _retry_after(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _html(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, page: str) -> None:
    body = page.encode()
    await send({"type": "http.response.start", "status": status, "headers": [*_HTML_HEADERS, (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
