"""Inbound webhooks: a signed HTTP delivery starts a play or sends an event (CONTRACT.md §11).

A webhook is created over RPC (``webhook_create``) and gets a URL on the ingress,
``<public-url>/h/<sid>``. A delivery is checked against its scheme's signature (``github``:
``X-Hub-Signature-256``; ``stripe``: ``Stripe-Signature`` within 300 s; ``hmac-sha256``:
``X-Signature: sha256=<hex of HMAC(secret, raw body)>``; ``none``), then, once per delivery id
(``X-GitHub-Delivery``, the Stripe event ``id``, or an ``Idempotency-Key`` header), starts a play
of its workflow with the body's fields as inputs (those the flow declares; the rest is ignored), or sends an event whose key is rendered over
the body (``payment:{data.object.metadata.order_id}``). Every delivery is recorded, the refused
ones too, with what came of it. Secrets are kept encrypted with the secrets key.

==================  =====================================  ====================================
table               key                                    value
==================  =====================================  ====================================
``webhooks``        webhook sid                            Webhook (secret sealed)
``wh_seen``         ``{webhook_sid}/{delivery id}``        the delivery's sid (processed once)
``wh_deliveries``   ``{webhook_sid}/{delivery sid}``       Delivery (the newest 1,000 are kept)
==================  =====================================  ====================================
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets as token_source
import time
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from hero_logic.kernel import (
    Delete,
    HeroLogicError,
    InvalidParams,
    KeyedLock,
    NotFound,
    Put,
    WrongState,
    decode_record,
    encode_record,
    loads_strict,
    new_sid,
    now_ms,
)

from ._checks import check_limit, check_name, invalid_field
from ._marker import rpc_method

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hero_logic.kernel import Kernel

    from ._plays import Plays
    from ._secrets import Secrets

__all__ = ["Delivery", "EventSender", "Webhook", "Webhooks", "render_key"]

log = logging.getLogger("hero_logic.webhooks")

Scheme = Literal["github", "stripe", "hmac-sha256", "none"]
Action = Literal["start", "event"]
STRIPE_TOLERANCE_S = 300
KEEP_DELIVERIES = 1000
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


@attrs.frozen
class Webhook:
    """An inbound webhook: where deliveries go and how they are checked."""

    sid: str
    name: str
    action: Action
    scheme: Scheme
    workflow_sid: str = ""
    event_key: str = ""
    url: str = ""
    secret: str = ""
    """Shown once, in ``webhook_create``'s answer (stored encrypted, never listed)."""
    sealed_secret: str = attrs.field(default="", repr=False)
    created_at: int = 0


@attrs.frozen
class Delivery:
    """One delivery to a webhook and what came of it."""

    sid: str
    webhook_sid: str
    received_at: int
    status: int
    """The HTTP status answered: 200 taken, 200 repeat, 401 bad signature, 400 bad body, ..."""
    outcome: str
    delivery_id: str = ""
    play_sid: str = ""
    event_id: str = ""
    repeat: bool = False


class EventSender(Protocol):
    """What sends an event for a webhook (the events room)."""

    async def send(self, key: str, payload: Any = None, idempotency_key: str = "", *, via: str = "event") -> dict[str, Any]: ...


def render_key(template: str, body: Any) -> str:
    """``template`` with each ``{dotted.path}`` replaced by that field of ``body``; InvalidParams
    naming the first path the body lacks."""

    def field(match: re.Match[str]) -> str:
        value = body
        for part in match.group(1).split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                msg = "event_key"
                raise invalid_field(msg, f"the delivery's body has no {match.group(1)!r} for the key {template!r}", context="webhook")
        if isinstance(value, dict | list) or value is None:
            msg = "event_key"
            raise invalid_field(msg, f"{match.group(1)!r} is not a plain value in the delivery's body", context="webhook")
        return str(value).lower() if isinstance(value, bool) else str(value)

    return _PLACEHOLDER.sub(field, template)


def _sign(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _check_signature(scheme: str, secret: str, headers: Mapping[str, str], body: bytes, now_s: float) -> str:
    """Why the delivery's signature is refused, or ""."""
    if scheme == "none":
        return ""
    if scheme in ("github", "hmac-sha256"):
        header = "x-hub-signature-256" if scheme == "github" else "x-signature"
        given = headers.get(header, "")
        if not given.startswith("sha256="):
            return f"the {header} header is missing or not 'sha256=<hex>'"
        return "" if hmac.compare_digest(given[7:], _sign(secret, body)) else f"the {header} signature does not match"
    parts = [p.split("=", 1) for p in headers.get("stripe-signature", "").split(",") if "=" in p]
    stamp = next((v for k, v in parts if k == "t"), "")
    signatures = [v for k, v in parts if k == "v1"]
    if not stamp.isdigit() or not signatures:
        return "the Stripe-Signature header is missing or not 't=<time>,v1=<hex>'"
    if abs(now_s - int(stamp)) > STRIPE_TOLERANCE_S:
        return f"the Stripe-Signature time is more than {STRIPE_TOLERANCE_S} s away from now"
    expected = _sign(secret, stamp.encode() + b"." + body)
    return "" if any(hmac.compare_digest(s, expected) for s in signatures) else "the Stripe-Signature does not match"


@attrs.define(eq=False)
class Webhooks:
    """The webhook methods of the API, and the handling of deliveries."""

    kernel: Kernel
    plays: Plays
    secrets: Secrets
    public_url: str
    events: EventSender | None = None
    _locks: KeyedLock = attrs.Factory(KeyedLock)

    def _url(self, sid: str) -> str:
        return f"{self.public_url.rstrip('/')}/h/{sid}"

    async def _get(self, sid: str) -> Webhook:
        raw = await self.kernel.repo.store.get("webhooks", sid) if sid else None
        if raw is None:
            msg = f"no webhook with sid {sid!r}: list them with webhook_list"
            raise NotFound(msg)
        return decode_record(Webhook, raw)

    @rpc_method(admin=True)
    async def webhook_create(
        self,
        name: str,
        action: Action,
        workflow_sid: str = "",
        event_key: str = "",
        scheme: Scheme = "hmac-sha256",
        secret: str = "",
    ) -> Webhook:
        """Create an inbound webhook; its ``url`` takes deliveries. action ``start`` starts a
        play of workflow_sid with the body's fields as inputs; ``event`` sends an event whose
        key is event_key rendered over the body. Without a secret (and a scheme that needs
        one), one is made and shown in this answer only."""
        context = "webhook_create"
        name = check_name(name, context=context, what="the webhook")
        if action == "start":
            if not workflow_sid:
                msg = "workflow_sid"
                raise invalid_field(msg, "a webhook that starts plays names the workflow to start", context=context)
            await self.kernel.repo.get_workflow(workflow_sid)
        else:
            if self.events is None:
                msg = f"{context}: this service has no events, so a webhook cannot send one: use action 'start'"
                raise WrongState(msg)
            if not event_key.strip() or len(event_key) > 512 or not event_key.isprintable():
                msg = "event_key"
                raise invalid_field(msg, "a key template of at most 512 printable characters, e.g. 'payment:{data.object.id}'", context=context)
        if scheme != "none" and not secret:
            secret = token_source.token_urlsafe(32)
        if scheme == "none":
            log.warning("webhook %r takes unsigned deliveries (scheme 'none'): anyone who learns its URL can %s", name, action)
        sid = new_sid("wh")
        webhook = Webhook(
            sid=sid, name=name, action=action, scheme=scheme, workflow_sid=workflow_sid, event_key=event_key,
            url=self._url(sid), sealed_secret=self.secrets.seal(sid, secret) if secret else "", created_at=now_ms(),
        )
        await self.kernel.repo.commit([Put("webhooks", sid, encode_record(webhook))])
        return attrs.evolve(webhook, secret=secret, sealed_secret="")

    @rpc_method(admin=True)
    async def webhook_list(self) -> list[Webhook]:
        """Every webhook (without secrets)."""
        rows = await self.kernel.repo.store.scan("webhooks")
        return [attrs.evolve(decode_record(Webhook, raw), sealed_secret="") for _, raw in rows]

    @rpc_method(admin=True)
    async def webhook_delete(self, sid: str) -> bool:
        """Delete a webhook and its deliveries; later deliveries to its URL get 404."""
        await self._get(sid)
        writes = [Delete("webhooks", sid)]
        for table in ("wh_seen", "wh_deliveries"):
            writes += [Delete(table, key) for key, _ in await self.kernel.repo.store.scan(table, f"{sid}/")]
        await self.kernel.repo.commit(writes)
        return True

    @rpc_method(admin=True)
    async def webhook_deliveries(self, sid: str, limit: int = 50) -> list[Delivery]:
        """The newest deliveries to a webhook, with what came of each."""
        check_limit(limit, context="webhook_deliveries")
        await self._get(sid)
        rows = await self.kernel.repo.store.scan("wh_deliveries", f"{sid}/", reverse=True, limit=limit)
        return [decode_record(Delivery, raw) for _, raw in rows]

    async def deliver(self, sid: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Take one delivery: ``(HTTP status, JSON answer)``. Recorded whatever comes of it."""
        try:
            webhook = await self._get(sid)
        except NotFound:
            return 404, {"error": "no such webhook"}
        secret = self.secrets.unseal(sid, webhook.sealed_secret) if webhook.sealed_secret else ""
        refused = _check_signature(webhook.scheme, secret, headers, body, time.time())
        if refused:
            await self._record(webhook, 401, refused)
            return 401, {"error": refused}
        try:
            payload = loads_strict(body) if body else {}
        except ValueError as exc:  # not JSON, or NaN, 1e999, a lone surrogate, nesting too deep
            why = f"the body is not strict JSON: {exc}"
            await self._record(webhook, 400, why[:300])
            return 400, {"error": why}
        delivery_id = headers.get("x-github-delivery") or headers.get("idempotency-key") or ""
        if not delivery_id and webhook.scheme == "stripe" and isinstance(payload, dict):
            delivery_id = str(payload.get("id") or "")
        delivery_id = delivery_id[:200]
        async with self._locks.hold(f"{sid}/{delivery_id}"):
            if delivery_id:
                seen = await self.kernel.repo.store.get("wh_seen", f"{sid}/{delivery_id}")
                if seen is not None:
                    first = await self.kernel.repo.store.get("wh_deliveries", f"{sid}/{seen.decode()}")
                    earlier = decode_record(Delivery, first) if first else None
                    await self._record(webhook, 200, "a repeat of a delivery already taken", delivery_id=delivery_id, repeat=True)
                    return 200, {"ok": True, "repeat": True, "play_sid": earlier.play_sid if earlier else "", "event_id": earlier.event_id if earlier else ""}
            try:
                result = await self._act(webhook, payload, delivery_id)
            except HeroLogicError as exc:
                # a body the flow cannot take: 422 with the field errors; a gone workflow: 404
                status = 422 if isinstance(exc, InvalidParams) else 404 if isinstance(exc, NotFound) else 409
                if isinstance(exc, InvalidParams) and exc.data:
                    await self._record(webhook, status, exc.message, delivery_id=delivery_id)
                    return status, {"error": exc.message, "fields": exc.data}
                await self._record(webhook, status, exc.message, delivery_id=delivery_id)
                return status, {"error": exc.message}
            record = await self._record(webhook, 200, "taken", delivery_id=delivery_id, **result)
            if delivery_id:
                await self.kernel.repo.commit([Put("wh_seen", f"{sid}/{delivery_id}", record.sid.encode())])
            return 200, {"ok": True, **result}

    async def _act(self, webhook: Webhook, payload: Any, delivery_id: str) -> dict[str, str]:
        if webhook.action == "start":
            if not isinstance(payload, dict):
                msg = "body"
                raise invalid_field(msg, "a webhook that starts a play takes a JSON object of its inputs", context="webhook")
            # A sender's payload carries far more than the flow takes: its declared inputs only.
            wf = await self.kernel.repo.get_workflow(webhook.workflow_sid)
            declared = {f.name for f in wf.inputs}
            inputs = {k: v for k, v in payload.items() if k in declared}
            play = await self.plays.create(
                context=f"webhook {webhook.name!r}", workflow_sid=webhook.workflow_sid, input_data=inputs,
                name=f"webhook:{webhook.name}", idempotency_key=f"webhook:{webhook.sid}:{delivery_id}" if delivery_id else "",
            )
            return {"play_sid": play.sid}
        if self.events is None:
            msg = "this service has no events"
            raise WrongState(msg)
        sent = await self.events.send(render_key(webhook.event_key, payload), payload, idempotency_key=delivery_id, via="webhook")
        return {"event_id": str(sent.get("event_id", ""))}

    async def record_refused(self, sid: str, status: int, outcome: str) -> None:
        """Record a delivery the ingress refused before it could be read (413) or take it (500);
        nothing for a webhook that does not exist."""
        try:
            webhook = await self._get(sid)
        except NotFound:
            return
        await self._record(webhook, status, outcome)

    async def _record(self, webhook: Webhook, status: int, outcome: str, **fields: Any) -> Delivery:
        delivery = Delivery(sid=new_sid("dlv"), webhook_sid=webhook.sid, received_at=now_ms(), status=status, outcome=outcome[:500], **fields)
        writes: list[Any] = [Put("wh_deliveries", f"{webhook.sid}/{delivery.sid}", encode_record(delivery))]
        old = await self.kernel.repo.store.scan("wh_deliveries", f"{webhook.sid}/", limit=64)
        total = len(await self.kernel.repo.store.scan("wh_deliveries", f"{webhook.sid}/", reverse=True, limit=KEEP_DELIVERIES + 1))
        if total >= KEEP_DELIVERIES:
            writes += [Delete("wh_deliveries", key) for key, _ in old[: total - KEEP_DELIVERIES + 1]]
        await self.kernel.repo.commit(writes)
        return delivery
