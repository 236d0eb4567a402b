"""Checking answers against the JSON schemas flows declare, without trusting those schemas.

A pause's schema comes from the flow, and a flow may be hostile: a schema can nest deep
enough to overflow the validator's recursion, point ``$ref`` at a URL or a host file (which
a validator would fetch as the service), or carry a regular expression that backtracks for
hours. So schemas are never evaluated in the service's process: one long-lived worker
process (the service's interpreter, isolated mode, address space capped) validates, with
remote and file references refused, and each check has a deadline after which the worker is
killed and the answer refused. The worker exits when the service's end of its stdin closes.

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

__all__ = ["CHECK_TIMEOUT_S", "SchemaCheckFailed", "SchemaChecker"]

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


@attrs.define(eq=False)
class SchemaChecker:
    """Validates payloads against untrusted JSON schemas in a worker process (see module doc)."""

    timeout_s: float = CHECK_TIMEOUT_S
    _proc: trio.Process | None = attrs.field(default=None, init=False)
    _buffer: bytes = attrs.field(default=b"", init=False)
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)

    async def problems(self, schema: Any, payload: Any) -> list[dict[str, Any]]:
        """Each way ``payload`` breaks ``schema`` as ``{"path", "message"}``; [] when it fits.

        Raises SchemaCheckFailed when the schema is unusable or the check ran out of time.
        """
        line = json.dumps({"schema": schema, "payload": payload}).encode() + b"\n"
        async with self._lock:
            with trio.move_on_after(self.timeout_s):
                answer = await self._ask(line)
                if "schema_error" in answer:
                    raise SchemaCheckFailed(str(answer["schema_error"]))
                problems: list[dict[str, Any]] = answer.get("problems", [])
                return problems
            await self._stop()
        msg = f"checking the answer against the schema took over {self.timeout_s:g} s (a pathological pattern?)"
        raise SchemaCheckFailed(msg)

    async def _ask(self, line: bytes) -> dict[str, Any]:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await trio.lowlevel.open_process(
                [sys.executable, "-I", "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self._buffer = b""
        proc = self._proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            await proc.stdin.send_all(line)
            while b"\n" not in self._buffer:
                chunk = await proc.stdout.receive_some(65536)
                if not chunk:
                    await self._stop()
                    msg = "the schema checker stopped while checking (the schema needs too much memory?)"
                    raise SchemaCheckFailed(msg)
                self._buffer += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self._stop()
            msg = "the schema checker stopped while checking"
            raise SchemaCheckFailed(msg) from None
        answer, _, self._buffer = self._buffer.partition(b"\n")
        decoded: dict[str, Any] = json.loads(answer)
        return decoded

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with trio.CancelScope(shield=True):
            proc.kill()
            await proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    await stream.aclose()

    async def aclose(self) -> None:
        """Stop the worker (a new one starts on the next check); safe while cancelled."""
        await self._stop()
