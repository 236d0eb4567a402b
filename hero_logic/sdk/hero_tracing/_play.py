"""The SDK inside a play: span identity, memoized steps, pauses, and the events they send.

One :class:`Runtime` per flow process, made from the environment the executor sets. It owns
the span socket writer and the replay caches, and runs each ``@flow`` call: it fixes the
call's identity (step key, span id, parent) at call time, answers from the step cache when it
can, and otherwise runs the body and reports its output before closing its span.
"""

from __future__ import annotations

import itertools
import os

from . import _wire
from ._cache import from_cache, is_cached, reuse_problem
from ._emit import Writer
from ._ending import StepEnding
from ._ending import _now_ms as _now_ms
from ._fields import type_name
from ._jsoncodec import encode_basestring as _quote
from ._jsoncodec import loads as _loads
from ._retry import run_attempts, run_attempts_async
from ._spans import CURRENT, Span
from ._strict import PARALLEL, Strict, place

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping
    from typing import Any

    from ._flow import FlowInfo

__all__ = ["ReplayFileError", "Runtime"]

_sha1_key = _wire._sha1
_shape_key = _wire._blake
_canonical_json = _wire.canonical_json
_encode_event = _wire.encode_event
_to_bytes = _wire._to_bytes
_new_counter = itertools.count
_trace_text = _wire.trace_text


class ReplayFileError(ValueError):
    """``HERO_FLOW_REPLAY_FILE`` cannot be read or is not shaped as the protocol says."""


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
    problem = reuse_problem(data)
    if problem:
        msg = f"the replay file {path!r} has {problem}"
        raise ReplayFileError(msg)
    if not isinstance(data.get("prefill_only", False), bool):
        msg = f"the replay file {path!r} has 'prefill_only' that is not true or false"
        raise ReplayFileError(msg)
    return data


class Runtime(StepEnding):
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
        recorded: Mapping[str, Any] | None = None,
        reuse: Mapping[str, Any] | None = None,
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
        self.strict: Strict | None = Strict(recorded) if recorded else None
        """The check against the recorded run (None on a play's first run)."""
        reuse = reuse or {}
        self.reusing = bool(reuse.get("steps") or reuse.get("failures") or reuse.get("resumes"))
        """True for a fork: finished steps and answers of another play, by shape key."""
        self.reuse_steps: Mapping[str, Any] = reuse.get("steps") or {}
        self.reuse_failures: Mapping[str, Mapping[str, Any]] = reuse.get("failures") or {}
        self.reuse_resumes: Mapping[str, Any] = reuse.get("resumes") or {}
        self.reused_from = str(reuse.get("play_sid", ""))
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
            recorded=replay.get("recorded"),
            reuse=replay.get("reuse"),
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

    def _parent(self) -> tuple[str, dict[object, Any], str, str]:
        """``(path, counts, span_id, shape)`` of the innermost open span, else of the root,
        else top level."""
        parent = CURRENT.get() or self.root
        if parent is None:
            return "", self.top_counts, self.parent_span, ""
        return parent.path, parent.counts, parent.span_id, parent.shape

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
        path, counts, parent_id, shape = self._parent()
        span = Span(self, self.new_span_id(), name, kind, path, counts, shape)
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

    def instant_span(
        self,
        name: str,
        parent_id: str,
        status: str,
        tags: dict[str, Any],
        span_id: str = "",
        shape: str = "",
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
        if shape:
            start["shape_key"] = shape
        end = {"type": "span_end", "span_id": span_id, "end_ms": now, "status": status}
        self.writer.send(_encode_event(start) + _encode_event(end))

    # --- memoized calls ------------------------------------------------------------------

    def _identify(
        self, name: str, kwargs: Mapping[str, Any]
    ) -> tuple[Span, str, str, str, dict[object, Any], str]:
        """Fix a call's identity: its span (not yet started), step key, parent span id, the
        canonical JSON of its arguments, and its parent's counts and path."""
        parent = CURRENT.get() or self.root
        if parent is None:
            path, counts, parent_id, kind, above = "", self.top_counts, self.parent_span, "flow_root", ""
        else:
            # A span made without a shape (by other code) gives its path: no reuse, no mix-up.
            path, counts, parent_id, kind = parent.path, parent.counts, parent.span_id, "step"
            above = parent.shape or path
        args = _canonical_json(kwargs)
        material = f"{self.version_sid}|{path}|{name}|{args}"
        counter = counts.get(material)
        if counter is None:
            counter = counts.setdefault(material, _new_counter())
        ordinal = next(counter)
        key = _sha1_key(f"{material}|{ordinal}")
        # The version-free key a fork matches on (the entry flow's arguments left out).
        shape = _shape_key(f"{above}|{name}|{args if above else ''}|{ordinal}")
        # A memoized call's span id derives from its step key, so every run of the play (a
        # resume, a recovery) reports the same step under the same span: the tree shows it
        # once, marked replayed, with what its first run recorded.
        span = Span(self, key[:20], name, kind, key, {}, shape)
        if parent is None and self.root is None:
            self.root = span
        return span, key, parent_id, args, counts, path

    def _begin(
        self, span: Span, key: str, args: str, counts: dict[object, Any], path: str, cached: bool
    ) -> str:
        """Place a call among its parent's as it starts, and hold it to the recorded run.

        Returns the ``span_start`` fragments it adds: its ``input`` (the arguments, bounded),
        and ``parallel`` when it is the first call under its parent from another branch.
        """
        position, parallel = place(counts, span.counts)
        if self.strict is not None:
            self.strict.check(
                path[:40], position, parallel or PARALLEL in counts, key, "call", span.name, args, cached
            )
        if len(args) <= 1024 and "NaN" not in args and "Infinity" not in args:
            fields = f',"input":{args}'  # fits: no need to measure its UTF-8 bytes
        else:
            cut = _trace_text(args)
            fields = f',"input":{args}' if cut is None else f',"input":{_quote(cut)}'
        return fields + ',"parallel":true' if parallel else fields

    def start_line(
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

    def run_step(
        self, info: FlowInfo, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run one call of a synchronous ``@flow`` function (or answer it from the cache)."""
        span, key, parent_id, text, counts, path = self._identify(
            info.name, info.bind(args, kwargs) if args else kwargs
        )
        site = info.wire or _flow_site(info)
        cached = key in self.steps or key in self.failures or (self.reusing and is_cached(self, key, span.shape))
        fields = self._begin(span, key, text, counts, path, cached)
        if cached:
            return from_cache(self, span, key, parent_id, site, info.name, fields)
        self.writer.send(self.start_line(span, key, parent_id, site, _now_ms(), fields))
        token = CURRENT.set(span)
        try:
            if info.policy is None:
                result = fn(*args, **kwargs)
            else:
                result = run_attempts(self, info, fn, args, kwargs, span, key)
            if self.strict is not None and span is self.root:
                self._returned()
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
        identity = self._identify(info.name, info.bind(args, kwargs) if args else kwargs)
        return self._run_async(info, fn, args, kwargs, identity)

    async def _run_async(
        self,
        info: FlowInfo,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        identity: tuple[Span, str, str, str, dict[object, Any], str],
    ) -> Any:
        span, key, parent_id, text, counts, path = identity
        site = info.wire or _flow_site(info)
        cached = key in self.steps or key in self.failures or (self.reusing and is_cached(self, key, span.shape))
        # Placed when it starts, as the service sees its span_start: awaited calls keep order.
        fields = self._begin(span, key, text, counts, path, cached)
        if cached:
            return from_cache(self, span, key, parent_id, site, info.name, fields)
        self.writer.send(self.start_line(span, key, parent_id, site, _now_ms(), fields))
        token = CURRENT.set(span)
        try:
            if info.policy is None:
                result = await fn(*args, **kwargs)
            else:
                result = await run_attempts_async(self, info, fn, args, kwargs, span, key)
            if self.strict is not None and span is self.root:
                self._returned()
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
        span, key, parent_id, text, counts, path = self._identify(name, key_kwargs)
        span.kind = kind
        site = _site(name, source_file, source_line)
        cached = key in self.steps or key in self.failures or (self.reusing and is_cached(self, key, span.shape))
        fields = self._begin(span, key, text, counts, path, cached)
        if cached:
            return from_cache(self, span, key, parent_id, site, name, fields)
        self.writer.send(self.start_line(span, key, parent_id, site, _now_ms(), fields))
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
        from ._asking import ask

        return ask(self, name, schema, ui)

    def close(self) -> None:
        """Close the span socket."""
        self.writer.close()


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(environ.get(name, "") or default)
    except ValueError:
        return default


def _site(name: str, source_file: str, source_line: int) -> tuple[str, str]:
    """The name and source location of a span, as JSON fragments for :meth:`Runtime.start_line`."""
    return _quote(name), f',"source_file":{_quote(source_file)},"source_line":{int(source_line)}'


def _flow_site(info: FlowInfo) -> tuple[str, str]:
    info.wire = _site(info.name, info.source_file, info.source_line)
    return info.wire
