"""Secrets: stored encrypted, read only by the flows that declare them, redacted everywhere.

``secret_set(name, value)``, ``secret_list()`` (names and dates, never values) and
``secret_delete(name)``. Values are encrypted with Fernet (AES-128-CBC and HMAC-SHA256, from
the ``cryptography`` package) under a key kept in ``$PATH_ROOT/var/hero_logic/secrets.key``:
created 0600 with ``O_EXCL`` beside the database directory, never inside it, so a copy of the
LMDB files holds only ciphertext. The table ``secrets`` maps a name to ``{"token",
"created_at", "updated_at"}``; the name is bound into the ciphertext (``name\\0value``), so a
token moved under another name does not decrypt as that name.

A flow reads a secret with ``flow.secret(name)`` over its span socket (request ``secret_get``),
only if its entry flow declares the name in ``@flow(secrets=[...])``. Every value a run may see
is registered with that run's :class:`SecretRedactor`, which replaces it with
``[secret:NAME]`` in each event before the kernel stores or streams it, and in the play's error
message (the stderr tail).
"""

from __future__ import annotations

import json
import os
import re
import weakref
from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import Delete, NotFound, Put, WrongState, now_ms

from ._checks import invalid_field
from ._marker import rpc_method

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path

    from cryptography.fernet import Fernet

    from hero_logic.kernel import Kernel

__all__ = ["SecretRedactor", "Secrets"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
MIN_VALUE_CHARS = 4
"""Shorter values are refused: redacting every occurrence of ``"ab"`` would shred the trace."""
MAX_VALUE_BYTES = 64 * 1024


def _escaped(value: str) -> tuple[bytes, ...]:
    """The forms ``value`` takes inside a JSON line (as sent, and ASCII-escaped)."""
    forms = {
        json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass"),
        json.dumps(value, ensure_ascii=True)[1:-1].encode(),
    }
    return tuple(forms)


def _replace(value: Any, pairs: Sequence[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for secret, mark in pairs:
            if secret in value:
                value = value.replace(secret, mark)
        return value
    if isinstance(value, dict):
        return {_replace(k, pairs): _replace(v, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, pairs) for v in value]
    return value


@attrs.define(eq=False, weakref_slot=True)
class SecretRedactor:
    """Replaces the secret values one run may see with ``[secret:NAME]`` (the kernel's Redactor)."""

    _pairs: list[tuple[str, str]] = attrs.Factory(list)
    _needles: set[bytes] = attrs.Factory(set)
    _search: Callable[[bytes], object] | None = None
    """One compiled search for every form of every value: one C call per line."""

    def add(self, name: str, value: str) -> None:
        """Redact ``value`` from now on (longest values first, so none hides inside another)."""
        if any(v == value for v, _ in self._pairs):
            return
        self._pairs.append((value, f"[secret:{name}]"))
        self._pairs.sort(key=lambda pair: -len(pair[0]))
        self._needles.update(_escaped(value))
        self._search = re.compile(b"|".join(re.escape(n) for n in sorted(self._needles, key=len, reverse=True))).search

    def events(self, events: Sequence[tuple[bytes, dict[str, Any]]]) -> Sequence[tuple[bytes, dict[str, Any]]]:
        """The events, each line that holds a secret decoded, redacted and encoded again."""
        search = self._search
        if search is None:
            return events
        out: list[tuple[bytes, dict[str, Any]]] | None = None
        for index, (raw, event) in enumerate(events):
            if search(raw) is not None:
                if out is None:
                    out = list(events[:index])
                clean = _replace(event, self._pairs)
                out.append((json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode(), clean))
            elif out is not None:
                out.append((raw, event))
        return events if out is None else out

    def text(self, text: str) -> str:
        """``text`` with every known value replaced."""
        return str(_replace(text, self._pairs))


@attrs.define(eq=False)
class Secrets:
    """The secret methods of the API, and what runs need of secrets."""

    kernel: Kernel
    _fernet: Fernet | None = None
    _runs: weakref.WeakValueDictionary[str, SecretRedactor] = attrs.Factory(weakref.WeakValueDictionary)

    @property
    def key_file(self) -> Path:
        return self.kernel.config.secrets_key_file

    def _cipher(self) -> Fernet:
        """The Fernet of the key file, which is created (0600, O_EXCL) on first use."""
        if self._fernet is None:
            from cryptography.fernet import Fernet

            path = self.key_file
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                key = self._read_key(path)
            else:
                key = Fernet.generate_key()
                with os.fdopen(fd, "wb") as f:
                    f.write(key + b"\n")
            try:
                self._fernet = Fernet(key)
            except ValueError:
                msg = f"the secrets key file {path} does not hold a Fernet key: restore it from a backup"
                raise WrongState(msg) from None
        return self._fernet

    @staticmethod
    def _read_key(path: Path) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_mode & 0o077:
                msg = f"the secrets key file {path} is readable by others: chmod 600 {path}"
                raise WrongState(msg)
            return f.read().strip()

    @staticmethod
    def check_name(name: str, *, context: str) -> str:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            msg = "name"
            raise invalid_field(
                msg,
                f"must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or '_' (e.g. OPENAI_API_KEY), got {str(name)[:80]!r}",
                context=context,
            )
        return name

    # -- the API ---------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def secret_set(self, name: str, value: str) -> dict[str, Any]:
        """Store (or replace) a secret, encrypted at rest; returns its name and dates, never the value."""
        context = "secret_set"
        name = self.check_name(name, context=context)
        if len(value) < MIN_VALUE_CHARS or len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            msg = "value"
            raise invalid_field(
                msg,
                f"must be {MIN_VALUE_CHARS} characters to {MAX_VALUE_BYTES} bytes long (got {len(value)} characters): short values cannot be redacted safely",
                context=context,
            )
        now = now_ms()
        old = await self._record(name)
        token = self.seal(name, value)
        record = {"token": token, "created_at": old["created_at"] if old else now, "updated_at": now}
        await self.kernel.repo.commit([Put("secrets", name, json.dumps(record).encode())])
        return {"name": name, "created_at": record["created_at"], "updated_at": now}

    @rpc_method(admin=True)
    async def secret_list(self) -> list[dict[str, Any]]:
        """Every secret's name and dates (never a value), by name."""
        rows = await self.kernel.store.scan("secrets")
        out = []
        for name, raw in rows:
            record = json.loads(raw)
            out.append({"name": name, "created_at": record["created_at"], "updated_at": record["updated_at"]})
        return out

    @rpc_method(admin=True)
    async def secret_delete(self, name: str) -> bool:
        """Delete a secret; plays that declare it fail when they ask for it."""
        name = self.check_name(name, context="secret_delete")
        if await self._record(name) is None:
            msg = f"secret_delete: no secret named {name!r}: list them with secret_list"
            raise NotFound(msg)
        await self.kernel.repo.commit([Delete("secrets", name)])
        return True

    # -- for runs --------------------------------------------------------------------------------

    async def _record(self, name: str) -> dict[str, Any] | None:
        raw = await self.kernel.store.get("secrets", name)
        return json.loads(raw) if raw is not None else None

    async def value(self, name: str) -> str | None:
        """The clear value of ``name``, or None if there is no such secret."""
        record = await self._record(name)
        if record is None:
            return None
        try:
            return self.unseal(name, record["token"])
        except WrongState:
            msg = f"secret {name!r} cannot be read with the key in {self.key_file} (the key changed, or the value was sealed for another name): set the secret again"
            raise WrongState(msg) from None

    def seal(self, purpose: str, clear: str) -> str:
        """``clear`` encrypted with the secrets key, bound to ``purpose`` (e.g. a webhook's sid)."""
        return self._cipher().encrypt(f"{purpose}\0{clear}".encode("utf-8", "surrogatepass")).decode()

    def unseal(self, purpose: str, sealed: str) -> str:
        """What :meth:`seal` sealed for ``purpose``; WrongState if the key changed or it is not."""
        from cryptography.fernet import InvalidToken

        try:
            clear = self._cipher().decrypt(sealed.encode()).decode("utf-8", "surrogatepass")
        except InvalidToken:
            msg = f"a value sealed for {purpose!r} cannot be decrypted with the key in {self.key_file}: the key changed"
            raise WrongState(msg) from None
        stored, _, value = clear.partition("\0")
        if stored != purpose:
            msg = f"a value sealed for {stored!r} was presented as {purpose!r}"
            raise WrongState(msg)
        return value

    async def redactor_for(self, play_sid: str, names: Iterable[str]) -> SecretRedactor:
        """A redactor for one run of ``play_sid`` that knows the values of ``names``."""
        redactor = SecretRedactor()
        for name in names:
            value = await self.value(name)
            if value is not None:
                redactor.add(name, value)
        self._runs[play_sid] = redactor
        return redactor

    def redact_for_play(self, play_sid: str, value: Any) -> Any:
        """``value`` (JSON) with the secrets of ``play_sid``'s current run replaced, e.g. the
        inputs a flow gives a child play: a child reads its own declared secrets."""
        redactor = self._runs.get(play_sid)
        return _replace(value, redactor._pairs) if redactor is not None else value

    async def read_for_play(self, play_sid: str, name: str, declared: Mapping[str, None]) -> str:
        """The value of ``name`` for a flow of ``play_sid`` whose entry declares ``declared``."""
        if name not in declared:
            listed = ", ".join(declared) or "none"
            msg = (
                f"flow.secret({name!r}): the entry flow does not declare this secret (declared: "
                f"{listed}): add it to @flow(secrets=[...]) on the entry flow"
            )
            raise NotFound(msg)
        value = await self.value(name)
        if value is None:
            msg = f"flow.secret({name!r}): no secret named {name!r} is stored: set it with `hero_logic secrets set {name}` (secret_set)"
            raise NotFound(msg)
        redactor = self._runs.get(play_sid)
        if redactor is not None:
            redactor.add(name, value)
        return value
