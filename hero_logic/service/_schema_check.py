"""Checking answers against the JSON schemas flows declare, without trusting those schemas.

A pause's schema comes from the flow, and a flow may be hostile: a schema can nest deep
enough to overflow the validator's recursion, point ``$ref`` at a URL or a host file (which
a validator would fetch as the service), or carry a regular expression that backtracks for
hours. So such schemas are never evaluated in the service's process: a small pool of
long-lived worker processes (the service's interpreter, isolated mode, address space capped)
validates, with remote and file references refused, and each check has a deadline after which
its worker is killed and the answer refused. A worker exits when the service's end of its stdin
closes. A trivial schema (plain types, enums, bounds, properties: nothing that can hang or reach
out) is checked at once in process, so another user's simple answer never waits behind a hostile
flow's slow schemas.

Protocol: one JSON line per check, ``{"schema": ..., "payload": ...}``, answered by one line:
``{"problems": [{"path": [...], "message": str}]}`` or ``{"schema_error": str}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import attrs
import trio

__all__ = ["CHECK_TIMEOUT_S", "SchemaCheckFailed", "SchemaChecker", "check_in_process", "is_trivial"]

CHECK_TIMEOUT_S = 2.0
"""How long one check may take before the worker is killed and the answer refused."""

_WORKER = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import jsonschema, referencing, referencing.exceptions

def refuse(uri):
    raise referencing.exceptions.NoSuchResource(ref=uri)

registry = referencing.Registry(retrieve=refuse)

def check(schema, payload):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return {"schema_error": exc.message}
    problems = [
        {"path": list(error.absolute_path), "message": error.message}
        for error in cls(schema, registry=registry).iter_errors(payload)
    ]
    return {"problems": problems[:50]}

for line in sys.stdin:
    try:
        request = json.loads(line)
        answer = check(request["schema"], request["payload"])
    except RecursionError:
        answer = {"schema_error": "the schema nests too deeply to check"}
    except MemoryError:
        answer = {"schema_error": "checking against the schema needs too much memory"}
    except Exception as exc:
        answer = {"schema_error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"""


class SchemaCheckFailed(Exception):
    """The schema itself could not be used: invalid, unresolvable, or too slow to check."""


TRIVIAL_KEYWORDS = frozenset({
    "type", "enum", "const", "title", "description", "default", "examples", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "minItems", "maxItems", "items", "properties", "required", "additionalProperties",
})
"""Keywords whose check cannot hang, recurse without bound or reach outside: a schema made of
them only is checked in the service's own process (no ``pattern``, no ``$ref``, no
``uniqueItems``)."""
MAX_TRIVIAL_SCHEMA_BYTES = 16 * 1024
MAX_TRIVIAL_DEPTH = 8
POOL_SIZE = 2
"""Worker processes checking the other schemas; a hostile flow's slow schema holds one of them."""


def is_trivial(schema: Any, depth: int = 0) -> bool:
    """True if ``schema`` uses only :data:`TRIVIAL_KEYWORDS`, nests at most a few levels and is
    small: it is then safe to check in process."""
    if depth == 0:
        try:
            if len(json.dumps(schema)) > MAX_TRIVIAL_SCHEMA_BYTES:
                return False
        except (TypeError, ValueError, RecursionError):
            return False
    if depth > MAX_TRIVIAL_DEPTH or not isinstance(schema, dict):
        return isinstance(schema, bool) and depth > 0
    if not set(schema) <= TRIVIAL_KEYWORDS:
        return False
    for key in ("items", "additionalProperties"):
        if key in schema and not is_trivial(schema[key], depth + 1):
            return False
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return False
    return all(is_trivial(sub, depth + 1) for sub in properties.values())


def check_in_process(schema: Any, payload: Any) -> list[dict[str, Any]]:
    """The problems of ``payload`` against a trivial ``schema`` (see :func:`is_trivial`)."""
    import jsonschema  # the service pays this import once, at the first trivial check

    cls = jsonschema.Draft202012Validator
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaCheckFailed(exc.message) from None
    problems = [
        {"path": list(error.absolute_path), "message": error.message} for error in cls(schema).iter_errors(payload)
    ]
    return problems[:50]


@attrs.define(eq=False)
class _Worker:
    """One checking process (started on first use, restarted after a kill)."""

    proc: trio.Process | None = None
    buffer: bytes = b""


@attrs.define(eq=False)
class SchemaChecker:
    """Validates payloads against untrusted JSON schemas in a worker process (see module doc)."""

    timeout_s: float = CHECK_TIMEOUT_S
    pool_size: int = POOL_SIZE
    _idle: list[_Worker] = attrs.field(factory=list, init=False)
    _all: list[_Worker] = attrs.field(factory=list, init=False)
    _limiter: trio.CapacityLimiter | None = attrs.field(default=None, init=False)

    async def problems(self, schema: Any, payload: Any) -> list[dict[str, Any]]:
        """Each way ``payload`` breaks ``schema`` as ``{"path", "message"}``; [] when it fits.

        A trivial schema (:func:`is_trivial`) is checked at once, in process; any other waits
        for one of the pool's workers, first come first served. Raises SchemaCheckFailed when
        the schema is unusable or the check ran out of time.
        """
        if is_trivial(schema):
            return check_in_process(schema, payload)
        line = json.dumps({"schema": schema, "payload": payload}).encode() + b"\n"
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self.pool_size)
        async with self._limiter:
            worker = self._idle.pop() if self._idle else _Worker()
            if worker not in self._all:
                self._all.append(worker)
            try:
                with trio.move_on_after(self.timeout_s):
                    answer = await self._ask(worker, line)
                    if "schema_error" in answer:
                        raise SchemaCheckFailed(str(answer["schema_error"]))
                    problems: list[dict[str, Any]] = answer.get("problems", [])
                    return problems
                await self._stop(worker)
            finally:
                self._idle.append(worker)
        msg = f"checking the answer against the schema took over {self.timeout_s:g} s (a pathological pattern?)"
        raise SchemaCheckFailed(msg)

    async def _ask(self, worker: _Worker, line: bytes) -> dict[str, Any]:
        if worker.proc is None or worker.proc.returncode is not None:
            worker.proc = await trio.lowlevel.open_process(
                [sys.executable, "-I", "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            worker.buffer = b""
        proc = worker.proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            await proc.stdin.send_all(line)
            while b"\n" not in worker.buffer:
                chunk = await proc.stdout.receive_some(65536)
                if not chunk:
                    await self._stop(worker)
                    msg = "the schema checker stopped while checking (the schema needs too much memory?)"
                    raise SchemaCheckFailed(msg)
                worker.buffer += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self._stop(worker)
            msg = "the schema checker stopped while checking"
            raise SchemaCheckFailed(msg) from None
        answer, _, worker.buffer = worker.buffer.partition(b"\n")
        decoded: dict[str, Any] = json.loads(answer)
        return decoded

    async def _stop(self, worker: _Worker) -> None:
        proc, worker.proc = worker.proc, None
        if proc is None:
            return
        with trio.CancelScope(shield=True):
            proc.kill()
            await proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    await stream.aclose()

    async def aclose(self) -> None:
        """Stop the workers (new ones start on the next checks); safe while cancelled."""
        for worker in self._all:
            await self._stop(worker)
