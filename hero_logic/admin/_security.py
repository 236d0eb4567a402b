"""The admin's request checks, as pure functions over an ASGI scope (RELIABILITY.md promise 7).

- **Host.** Over TCP the ``Host`` header must name this admin by an address that cannot be
  rebound: ``127.0.0.1``, ``localhost``, ``[::1]`` or the address the connection came in on,
  with the bound port. A page served under any other name (DNS rebinding) gets 403. Over the
  Unix socket no browser can connect directly, so any Host is accepted.
- **Origin.** A websocket handshake or a POST that carries an ``Origin`` must come from one of
  those same addresses (over the Unix socket: from the Host it named); ``Sec-Fetch-Site:
  cross-site`` is refused outright.
- **CSRF.** Every state-changing request (every POST) must carry the per-process token of
  :class:`CsrfToken` in the ``X-CSRF-Token`` header; pages embed it in a ``<meta>`` tag, which a
  foreign origin cannot read. Every websocket must carry it too, as the query parameter
  ``?csrf=`` (a browser cannot set headers on a websocket): a page of another origin, or a
  client that never loaded a page, cannot open the live streams. POST bodies must be ``application/json``, which a cross-site
  form cannot send without a CORS preflight — and the admin answers no preflight.
- **No CORS.** No response ever carries ``Access-Control-Allow-*`` headers.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import attrs

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["CSRF_HEADER", "CSRF_QUERY", "CsrfToken", "Refusal", "check_host", "check_origin", "header"]

CSRF_HEADER = b"x-csrf-token"
CSRF_QUERY = "csrf"
"""The query parameter that carries the token on a websocket handshake."""

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@attrs.frozen
class Refusal:
    """Why a request is refused: an HTTP status and a message for the person who sent it."""

    status: int
    message: str


def header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def allowed_hosts(scope: MutableMapping[str, Any]) -> set[str] | None:
    """The Host values this connection may name; None over the Unix socket (any Host)."""
    server = scope.get("server")
    if not server:
        return None
    address, port = str(server[0]), int(server[1])
    names = {*_LOOPBACK_NAMES, f"[{address}]" if ":" in address else address}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return hosts


def check_host(scope: MutableMapping[str, Any]) -> Refusal | None:
    """A refusal if the Host header does not name this admin (see the module docstring)."""
    allowed = allowed_hosts(scope)
    if allowed is None:
        return None
    host = (header(scope, b"host") or "").lower()
    if host in allowed:
        return None
    example = sorted(allowed)[0]
    message = (
        f"Host {host or '(none)'!r} is not an address of this admin; open it as "
        f"http://{example}/ (hero_logic admin answers only its own loopback names)"
    )
    return Refusal(403, message)


def check_origin(scope: MutableMapping[str, Any]) -> Refusal | None:
    """A refusal if the request comes from a foreign origin (see the module docstring)."""
    if (header(scope, b"sec-fetch-site") or "").lower() == "cross-site":
        return Refusal(403, "cross-site requests are refused: use the admin's own pages")
    origin = header(scope, b"origin")
    if origin is None:
        return None  # not sent by a browser page (curl, the CLI, the test client)
    parts = urlsplit(origin.lower())
    allowed = allowed_hosts(scope)
    if allowed is None:
        host = (header(scope, b"host") or "").lower()
        allowed = {host} if host else set()
    own_scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    if parts.scheme == own_scheme and parts.netloc in allowed:
        return None
    return Refusal(403, f"origin {origin!r} is not this admin: cross-origin requests are refused")


@attrs.frozen
class CsrfToken:
    """The per-process anti-CSRF token; every POST must echo it in ``X-CSRF-Token``."""

    value: str = attrs.field(factory=lambda: secrets.token_urlsafe(32))

    def check(self, scope: MutableMapping[str, Any]) -> Refusal | None:
        """A refusal unless the request carries the token (compared in constant time)."""
        sent = header(scope, CSRF_HEADER)
        if sent is None:
            return Refusal(403, "missing X-CSRF-Token header: reload the page and try again")
        if not hmac.compare_digest(sent.encode(), self.value.encode()):
            return Refusal(403, "wrong X-CSRF-Token (the admin restarted?): reload the page and try again")
        return None

    def check_websocket(self, scope: MutableMapping[str, Any]) -> Refusal | None:
        """A refusal unless the websocket's query carries the token as ``?csrf=``."""
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        sent = parse_qs(query, keep_blank_values=True).get(CSRF_QUERY)
        if not sent:
            return Refusal(
                403,
                "missing csrf token: a websocket of the admin must carry ?csrf=<the token in the "
                'page\'s <meta name="csrf-token">>; reload the page and try again',
            )
        if not hmac.compare_digest(sent[0].encode(), self.value.encode()):
            return Refusal(403, "wrong csrf token in ?csrf= (the admin restarted?): reload the page and try again")
        return None
