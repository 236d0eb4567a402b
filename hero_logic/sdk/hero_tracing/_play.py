"""The SDK inside a play: span identity, memoized steps, pauses, and the events they send.

One :class:`Runtime` per flow process, made from the environment the executor sets. It owns
the span socket writer and the replay caches, and runs each ``@flow`` call: it fixes the
call's identity (step key, span id, parent) at call time, answers from the step cache when it
can, and otherwise runs the body and reports its output before closing its span.
"""

from __future__ import annotations

import itertools
import os
import time

from . import _wire
from ._emit import RequestError, ServiceLost, Writer
from ._fields import output_problem, type_name
from ._jsoncodec import encode_basestring as _quote
from ._jsoncodec import load_own as _load_own
from ._jsoncodec import loads as _loads
from ._retry import run_attempts, run_attempts_async
from ._spans import CURRENT, AwaitingResume, Failed, Span, describe, outcome

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping
    from typing import Any

    from ._flow import FlowInfo

__all__ = ["ReplayFileError", "Runtime"]

_sha1_key = _wire._sha1
_canonical_json = _wire.canonical_json
_encode_event = _wire.encode_event
_to_bytes = _wire._to_bytes
_new_counter = itertools.count
_time_ns = time.time_ns

_strict_json = _wire.strict_json
_MAX_OUTPUT_BYTES = _wire.MAX_LINE_BYTES - 1024
_AS_IS = frozenset({int, float, bool, type(None)})
"""Output types JSON gives back unchanged: a step returning one skips the round trip."""


class ReplayFileError(ValueError):
    """``HERO_FLOW_REPLAY_FILE`` cannot be read or is not shaped as the protocol says."""


def _now_ms() -> int:
    return _time_ns() // 1_000_000


def _load_replay(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            data = _loads(file.read())
    except (OSError, ValueError) as exc:
        msg = f"cannot read the replay file {path!r}: {exc}"
        raise ReplayFileError(msg) from None
    if not isinstance(data, dict):
        msg = f"the replay file {path!r} holds a JSON {type_name(data)}, not an object"
        raise ReplayFileError(msg)
    for key in ("steps", "failures", "resumes", "prefill", "woken", "waits"):
        if not isinstance(data.get(key, {}), dict):
            msg = f"the replay file {path!r} has {key!r} that is not an object"
            raise ReplayFileError(msg)
    for key, entry in data.get("failures", {}).items():
        if not isinstance(entry, dict):
            msg = f"the replay file {path!r} has a failure for step {key} that is not an object"
            raise ReplayFileError(msg)
    if not isinstance(data.get("prefill_only", False), bool):
        msg = f"the replay file {path!r} has 'prefill_only' that is not true or false"
        raise ReplayFileError(msg)
    return data


class Runtime:
    """Everything the SDK knows about the play this process runs."""

    def __init__(
        self,
        socket_path: str,
        *,
        play_sid: str = "",
        version_sid: str = "",
        parent_span: str = "",
        steps: Mapping[str, Any] | None = None,
        failures: Mapping[str, Mapping[str, Any]] | None = None,
        resumes: Mapping[str, Any] | None = None,
        prefill: Mapping[str, Any] | None = None,
        prefill_only: bool = False,
        sandbox: str = "",
        woken: Mapping[str, Any] | None = None,
        waits: Mapping[str, Any] | None = None,
        sleep_exit_ms: int = 2000,
        max_wait_ms: int = 366 * 24 * 3600 * 1000,
    ) -> None:
        self.writer = Writer(socket_path)
        self.play_sid = play_sid
        self.version_sid = version_sid
        self.parent_span = parent_span
        self.steps: Mapping[str, Any] = steps or {}
        self.failures: Mapping[str, Mapping[str, Any]] = failures or {}
        self.resumes: Mapping[str, Any] = resumes or {}
        self.prefill: Mapping[str, Any] = prefill or {}
        self.prefill_only = prefill_only
        self.woken: Mapping[str, Any] = woken or {}
        """Waits (timers, events) that ended, by resume id: ``{via, at, payload, event_id}``."""
        self.waits: Mapping[str, Any] = waits or {}
        """Open waits' fixed deadlines, by resume id: ``{wake_at}``."""
        self.sleep_exit_ms = sleep_exit_ms
        self.max_wait_ms = max_wait_ms
        self.root: Span | None = None
        self.top_counts: dict[object, Any] = {}
        self.pauses: list[str] = []
        self._id_prefix = os.urandom(8).hex()
        self._ids = _new_counter(1)
        # The root span carries the sandbox tier the play runs in.
        self._root_tags = f',"tags":{{"sandbox":{_quote(sandbox)}}}' if sandbox else ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Runtime:
        """The runtime described by the ``HERO_FLOW_*`` variables; raises ReplayFileError."""
        replay_path = environ.get("HERO_FLOW_REPLAY_FILE", "")
        replay = _load_replay(replay_path) if replay_path else {}
        return cls(
            environ["HERO_FLOW_SPAN_SOCK"],
            play_sid=environ.get("HERO_FLOW_PLAY_SID", ""),
            version_sid=environ.get("HERO_FLOW_VERSION_SID", ""),
            parent_span=environ.get("HERO_FLOW_PARENT_SPAN", ""),
            steps=replay.get("steps"),
            failures=replay.get("failures"),
            resumes=replay.get("resumes"),
            prefill=replay.get("prefill"),
            prefill_only=replay.get("prefill_only", False),
            sandbox=environ.get("HERO_FLOW_SANDBOX", ""),
            woken=replay.get("woken"),
            waits=replay.get("waits"),
            sleep_exit_ms=_int_env(environ, _wire.ENV_SLEEP_EXIT_MS, 2000),
            max_wait_ms=_int_env(environ, _wire.ENV_MAX_WAIT_MS, 366 * 24 * 3600 * 1000),
        )

    # --- sending -------------------------------------------------------------------------

    def new_span_id(self) -> str:
        """A span id unique across every run of this play: a random prefix and a counter."""
        return f"{self._id_prefix}{next(self._ids):06x}"

    def send(self, event: Mapping[str, Any]) -> None:
        """Encode and send one event (never raises into user code)."""
        try:
            data = _encode_event(event)
        except ValueError:
            return  # only an output event can be too big, and callers check that first
        self.writer.send(data)

    def send_log(self, span_id: str, text: str) -> None:
        """Send a log line, truncated to 64 KiB."""
        self.send({"type": "span_log", "span_id": span_id, "text": _wire.truncate_text(text)})

    def end_span(self, span_id: str, status: str, error: str = "") -> None:
        """Close a span."""
        event: dict[str, Any] = {
            "type": "span_end",
            "span_id": span_id,
            "end_ms": _now_ms(),
            "status": status,
        }
        if error:
            event["error"] = _wire.truncate_text(error)
        self.send(event)

    def _parent(self) -> tuple[str, dict[object, Any], str]:
        """``(path, counts, span_id)`` of the innermost open span, else of the root, else top level."""
        parent = CURRENT.get() or self.root
        if parent is None:
            return "", self.top_counts, self.parent_span
        return parent.path, parent.counts, parent.span_id

    def open_span(
        self,
        name: str,
        kind: str,
        tags: dict[str, Any],
        source_file: str,
        source_line: int,
        extra: dict[str, Any] | None = None,
    ) -> Span:
        """Start a plain span (``flow.step`` / ``flow.span`` / rpc) under the current one."""
        path, counts, parent_id = self._parent()
        span = Span(self, self.new_span_id(), name, kind, path, counts)
        event: dict[str, Any] = {
            "type": "span_start",
            "span_id": span.span_id,
            "parent_id": parent_id,
            "name": name,
            "kind": kind,
            "start_ms": _now_ms(),
            "source_file": source_file,
            "source_line": source_line,
        }
        if tags:
            event["tags"] = tags
        if extra:
            event.update(extra)
        self.send(event)
        return span

    def _instant_span(
        self, name: str, parent_id: str, status: str, tags: dict[str, Any], span_id: str = ""
    ) -> None:
        span_id = span_id or self.new_span_id()
        now = _now_ms()
        start = {
            "type": "span_start",
            "span_id": span_id,
            "parent_id": parent_id,
            "name": name,
            "kind": "other",
            "start_ms": now,
            "status": "replayed" if status == "replayed" else "running",
            "tags": tags,
        }
        end = {"type": "span_end", "span_id": span_id, "end_ms": now, "status": status}
        self.writer.send(_encode_event(start) + _encode_event(end))

    # --- memoized calls ------------------------------------------------------------------

    def _identify(self, name: str, kwargs: Mapping[str, Any]) -> tuple[Span, str, str]:
        """Fix a call's identity: its span (not yet started), step key and parent span id."""
        parent = CURRENT.get() or self.root
        if parent is None:
            path, counts, parent_id, kind = "", self.top_counts, self.parent_span, "flow_root"
        else:
            path, counts, parent_id, kind = parent.path, parent.counts, parent.span_id, "step"
        material = f"{self.version_sid}|{path}|{name}|{_canonical_json(kwargs)}"
        counter = counts.get(material)
        if counter is None:
            counter = counts.setdefault(material, _new_counter())
        key = _sha1_key(f"{material}|{next(counter)}")
        # A memoized call's span id derives from its step key, so every run of the play (a
        # resume, a recovery) reports the same step under the same span: the tree shows it
        # once, marked replayed, with what its first run recorded.
        span = Span(self, key[:20], name, kind, key, {})
        if parent is None and self.root is None:
            self.root = span
        return span, key, parent_id

    def _start_line(
        self,
        span: Span,
        key: str,
        parent_id: str,
        site: tuple[str, str],
        now: int,
        status: str = "",
    ) -> bytes:
        """The ``span_start`` line of a memoized call (built by hand: this is the hot path)."""
        tags = self._root_tags if span.kind == "flow_root" else ""
        return _to_bytes(
            f'{{"type":"span_start","span_id":"{span.span_id}","parent_id":{_quote(parent_id)},'
            f'"name":{site[0]},"kind":"{span.kind}","start_ms":{now},"step_key":"{key}"{site[1]}{status}{tags}}}\n'
        )

    def _replay(self, span: Span, key: str, parent_id: str, site: tuple[str, str]) -> Any:
        # One line: a replayed step starts and ends at once (span_start with status and end_ms).
        now = _now_ms()
        self.writer.send(
            self._start_line(span, key, parent_id, site, now, f',"status":"replayed","end_ms":{now}')
        )
        return self.steps[key]

    def _replay_failure(
        self, span: Span, key: str, parent_id: str, site: tuple[str, str], name: str
    ) -> BaseException:
        """Mark a step whose failure is recorded replayed; the exception to raise for it."""
        now = _now_ms()
        self.writer.send(
            self._start_line(span, key, parent_id, site, now, f',"status":"replayed","end_ms":{now}')
        )
        from ._failure import replayed

        return replayed(self.failures[key], name)

    def _fail(
        self, span: Span, key: str, exc: BaseException, checkpoint: bool
    ) -> BaseException | None:
        """End a step's span for ``exc`` and record it when it is the step's failure.

        Returns what the caller must raise instead of ``exc`` (the StepFailed a replay would
        raise, when ``exc`` cannot be rebuilt as its own class), or None to re-raise ``exc``.
        A pause, and a BaseException that is not an Exception (cancellation, exit), is no
        outcome of the step: it is not recorded, and the step runs again next time.
        """
        ended = outcome(exc)
        if ended is None:
            return None  # pausing: the span stays open
        from ._failure import interrupted_by_pause, rebuild, record

        if not isinstance(exc, Exception) or interrupted_by_pause(exc):
            self.end_span(span.span_id, *ended)
            return None

        text = describe(exc) if isinstance(exc, Failed) else ended[1]
        event = {"type": "step_failed", "span_id": span.span_id, "step_key": key, **record(exc, text)}
        try:
            line = _encode_event(event)
        except ValueError:  # escaping blew it past the line cap: keep the type and message
            event.pop("args", None)
            event["traceback"] = _wire.truncate_text(text, 4096)
            line = _encode_event(event)
        self.writer.send(line)
        self.end_span(span.span_id, *ended)
        if checkpoint:
            try:  # the service answers once the failure, sent before, is stored
                self.writer.request("checkpoint", {"step_key": key})
            except (RequestError, ServiceLost):
                pass  # the step's own exception is what the caller must see
        if span.kind == "flow_root":
            return None  # nothing in the flow can catch it: keep its own traceback
        # Whatever a replay would raise, from the record as the service stores it.
        again = rebuild(_wire.failure_entry(_loads(line)))
        return None if type(again) is type(exc) else again

    def _finish(self, info: FlowInfo | None, name: str, span: Span, key: str, result: Any) -> Any:
        """Check and send the step's output, then close its span ``ok``; raise Failed if unfit.

        Returns the output as stored, which is what every replay returns: the value after a
        JSON round trip (a tuple comes back a list, an int key a string).
        """
        problem = (
            output_problem(name, info.outputs, result) if info is not None and info.outputs else None
        )
        text, data = "", b""
        if problem is None:
            try:
                text = _strict_json(result)
                data = text.encode()
            except UnicodeEncodeError:  # a lone surrogate: stored, so also returned, as U+FFFD
                data = _to_bytes(text)
                text = data.decode()
            except (TypeError, ValueError, RecursionError) as exc:
                problem = (
                    f"flow {name!r} returned a value that is not JSON ({exc}): return dicts, lists, "
                    "strings, numbers, booleans or None"
                )
            if data.count(b"[") + data.count(b"{") > _wire.MAX_DEPTH and _wire.too_deep(result):
                problem = (
                    f"flow {name!r} returned JSON nested deeper than {_wire.MAX_DEPTH} levels: "
                    "flatten it"
                )
            elif len(data) > _MAX_OUTPUT_BYTES:
                problem = (
                    f"flow {name!r} returned {len(data)} bytes of JSON; a step's output must stay "
                    f"under {_MAX_OUTPUT_BYTES} bytes: return a reference (a path, an id) instead"
                )
        sid = span.span_id
        if problem is not None:
            failed = Failed(problem)
            self._fail(span, key, failed, info is not None and info.checkpoint)
            raise failed
        self.writer.send(
            b'{"type":"step_output","span_id":"%s","step_key":"%s","output":%s}\n'
            b'{"type":"span_end","span_id":"%s","end_ms":%d,"status":"ok"}\n'
            % (sid.encode(), key.encode(), data, sid.encode(), _now_ms())
        )
        if info is not None and info.checkpoint:
            # The service answers a request only after the lines before it are stored.
            self.writer.request("checkpoint", {"step_key": key})
        return result if result.__class__ in _AS_IS else _load_own(text)

    def run_step(
        self, info: FlowInfo, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run one call of a synchronous ``@flow`` function (or answer it from the cache)."""
        span, key, parent_id = self._identify(
            info.name, info.bind(args, kwargs) if args else kwargs
        )
        site = info.wire or _flow_site(info)
        if key in self.steps:
            return self._replay(span, key, parent_id, site)
        if key in self.failures:
            raise self._replay_failure(span, key, parent_id, site, info.name)
        self.writer.send(self._start_line(span, key, parent_id, site, _now_ms()))
        token = CURRENT.set(span)
        try:
            if info.policy is None:
                result = fn(*args, **kwargs)
            else:
                result = run_attempts(self, info, fn, args, kwargs, span, key)
        except BaseException as exc:
            CURRENT.reset(token)
            instead = self._fail(span, key, exc, info.checkpoint)
            if instead is None:
                raise
            raise instead from exc
        CURRENT.reset(token)
        return self._finish(info, info.name, span, key, result)

    def run_step_async(
        self, info: FlowInfo, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """Fix the identity of one ``async`` ``@flow`` call now; run it when awaited."""
        span, key, parent_id = self._identify(
            info.name, info.bind(args, kwargs) if args else kwargs
        )
        return self._run_async(info, fn, args, kwargs, span, key, parent_id)

    async def _run_async(
        self,
        info: FlowInfo,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: Span,
        key: str,
        parent_id: str,
    ) -> Any:
        site = info.wire or _flow_site(info)
        if key in self.steps:
            return self._replay(span, key, parent_id, site)
        if key in self.failures:
            raise self._replay_failure(span, key, parent_id, site, info.name)
        self.writer.send(self._start_line(span, key, parent_id, site, _now_ms()))
        token = CURRENT.set(span)
        try:
            if info.policy is None:
                result = await fn(*args, **kwargs)
            else:
                result = await run_attempts_async(self, info, fn, args, kwargs, span, key)
        except BaseException as exc:
            instead = self._fail(span, key, exc, info.checkpoint)
            if instead is None:
                raise
            raise instead from exc
        finally:
            CURRENT.reset(token)
        return self._finish(info, info.name, span, key, result)

    def run_memoized(
        self,
        name: str,
        key_kwargs: Mapping[str, Any],
        body: Callable[[Span], Any],
        *,
        kind: str = "step",
        source_file: str = "",
        source_line: int = 0,
    ) -> Any:
        """Run ``body(span)`` as a memoized step named ``name`` (used by ``flow.invoke``)."""
        span, key, parent_id = self._identify(name, key_kwargs)
        span.kind = kind
        site = _site(name, source_file, source_line)
        if key in self.steps:
            return self._replay(span, key, parent_id, site)
        if key in self.failures:
            raise self._replay_failure(span, key, parent_id, site, name)
        self.writer.send(self._start_line(span, key, parent_id, site, _now_ms()))
        token = CURRENT.set(span)
        try:
            result = body(span)
        except BaseException as exc:
            CURRENT.reset(token)
            instead = self._fail(span, key, exc, False)
            if instead is None:
                raise
            raise instead from exc
        CURRENT.reset(token)
        return self._finish(None, name, span, key, result)

    # --- pauses --------------------------------------------------------------------------

    def pause(self, name: str, schema: Any, ui: Any) -> Any:
        """The answer to pause ``name``: from the replay file or prefills, else pause the play."""
        path, counts, parent_id = self._parent()
        counter = counts.get(("pause", name))
        if counter is None:
            counter = counts.setdefault(("pause", name), _new_counter())
        rid = _wire.resume_id(self.version_sid, path, name, next(counter))
        if rid in self.resumes:
            # Its id derives from the resume id, so every later run marks the same span.
            self._instant_span(f"pause:{name}", parent_id, "replayed", {"resume_id": rid}, rid[:20])
            return self.resumes[rid]
        for known in (rid, name):
            if known in self.prefill:
                answer = self.prefill[known]
                if schema:
                    self._check_prefill(rid, name, schema, answer)
                self._instant_span(
                    f"pause:{name}", parent_id, "ok", {"resume_id": rid, "prefilled": True}, rid[:20]
                )
                return answer
        if self.prefill_only:
            msg = (
                f"pause {name!r} has no prefilled answer (resume id {rid}); this play was started "
                f"with prefill_resumes, so it fails instead of waiting: add an answer for {name!r}"
            )
            raise Failed(msg)
        self.pauses.append(rid)
        self.send(
            {
                "type": "pause",
                "resume_id": rid,
                "name": name,
                "schema": schema,
                "ui": ui,
                "span_id": parent_id,
                "asked_at": _now_ms(),
            }
        )
        raise AwaitingResume(rid, name)

    def _check_prefill(self, rid: str, name: str, schema: Any, answer: Any) -> None:
        """Have the service check a prefilled answer against the pause's schema, as it checks
        a ``play_resume`` payload; a bad one fails the flow naming the pause."""
        try:
            self.writer.request(
                "check_answer", {"resume_id": rid, "name": name, "schema": schema, "payload": answer}
            )
        except RequestError as exc:
            msg = f"the prefilled answer to pause {name!r} (resume id {rid}) was refused: {exc.message}"
            raise Failed(msg) from None

    def close(self) -> None:
        """Close the span socket."""
        self.writer.close()


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(environ.get(name, "") or default)
    except ValueError:
        return default


def _site(name: str, source_file: str, source_line: int) -> tuple[str, str]:
    """The name and source location of a span, as JSON fragments for :meth:`Runtime._start_line`."""
    return _quote(name), f',"source_file":{_quote(source_file)},"source_line":{int(source_line)}'


def _flow_site(info: FlowInfo) -> tuple[str, str]:
    info.wire = _site(info.name, info.source_file, info.source_line)
    return info.wire
