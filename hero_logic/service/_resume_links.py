"""Signed resume URLs: an unguessable link per open question, answerable with no login.

A token is ``base64url(play_sid "|" resume_id "|" expiry_ms) "." base64url(HMAC-SHA256)``,
signed with a 32-byte key kept in a 0600 file outside the database (created on first use, with
``O_EXCL``). An altered token or one signed by another key is unknown (404); one past its expiry
is gone (410). The link is ``<public-url>/r/<token>`` (CONTRACT.md §11).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import NotFound, Play, ResumeRequest, WrongState, now_ms

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LinkExpired", "ResumeLinks"]

MAX_TOKEN_CHARS = 1024


class LinkExpired(WrongState):
    """The resume link was genuine but is past its expiry."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.define(eq=False)
class ResumeLinks:
    """Signs and checks resume tokens; gives each open input question its ``url``."""

    key_file: Path
    public_url: str
    ttl_s: int = 604_800
    _key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            self.key_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                fd = os.open(self.key_file, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as f:
                    if os.fstat(f.fileno()).st_mode & 0o077:
                        msg = f"the resume link key file {self.key_file} is readable by others: chmod 600 {self.key_file}"
                        raise WrongState(msg) from None
                    key = f.read()
            else:
                key = secrets.token_bytes(32)
                with os.fdopen(fd, "wb") as f:
                    f.write(key)
            if len(key) != 32:
                msg = f"the resume link key file {self.key_file} is not a 32-byte key: delete it to make a new one (old links stop working)"
                raise WrongState(msg)
            self._key = key
        return self._key

    def token(self, play_sid: str, resume_id: str, *, expires_at: int | None = None) -> str:
        """The token of one question, valid until ``expires_at`` (ms; default now + ttl)."""
        expiry = expires_at if expires_at is not None else now_ms() + self.ttl_s * 1000
        body = f"{play_sid}|{resume_id}|{expiry}".encode()
        mac = hmac.new(self._secret(), body, hashlib.sha256).digest()
        return f"{_b64(body)}.{_b64(mac)}"

    def url(self, play_sid: str, resume_id: str) -> str:
        """The link a person opens to answer the question."""
        return f"{self.public_url.rstrip('/')}/r/{self.token(play_sid, resume_id)}"

    def check(self, token: str) -> tuple[str, str]:
        """``(play_sid, resume_id)`` of a genuine, unexpired token; NotFound or LinkExpired."""
        unknown = NotFound("this answer link is unknown or was altered: ask for a new one")
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise unknown
        body_text, mac_text = token.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, TypeError):
            raise unknown from None
        if not hmac.compare_digest(mac, hmac.new(self._secret(), body, hashlib.sha256).digest()):
            raise unknown
        try:
            play_sid, resume_id, expiry = body.decode().rsplit("|", 2)
            expires_at = int(expiry)
        except ValueError:
            raise unknown from None
        if now_ms() > expires_at:
            msg = "this answer link has expired: ask for a new one"
            raise LinkExpired(msg)
        return play_sid, resume_id

    def with_urls(self, play: Play) -> Play:
        """``play`` with a ``url`` on each open input question (timers and events have none)."""
        if not play.pending_resumes:
            return play
        return attrs.evolve(play, pending_resumes=[self.with_url(r, play.sid) for r in play.pending_resumes])

    def with_url(self, request: ResumeRequest, play_sid: str) -> ResumeRequest:
        """``request`` with its ``url`` when it is a question a person answers."""
        if getattr(request, "kind", "input") not in ("", "input"):
            return request
        return attrs.evolve(request, url=self.url(request.play_sid or play_sid, request.id))
