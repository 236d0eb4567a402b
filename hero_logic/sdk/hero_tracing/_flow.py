"""The ``flow`` object: the ``@flow`` decorator and the helpers hung on it.

Decorating runs nothing; it stamps the function with a :class:`FlowInfo` (read by the boot
stub to find the entry flow) and wraps it. Outside a play the wrapper just calls the
function. Inside one, every call is a memoized step run by the play's runtime; for an
``async def`` flow the wrapper is a plain function that fixes the call's identity at once
and returns the coroutine that runs it, so ``asyncio.gather`` replays deterministically.
"""

from __future__ import annotations

import sys

from . import _state, _waits
from ._fields import doc_summary, normalise_fields
from ._retry import NonRetryable, RetryAfter, RetryPolicy
from ._spans import Failed, NullSpan, Span, SpanBlock, StepFailed, StepTimeout, current_span
from ._waits import OnAnswer, OnEvent, WaitTimeout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, overload

    _F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["FlowApi", "FlowInfo", "flow"]

_CO_VARARGS = 0x04
_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200
_SPAN_KINDS = ("flow_root", "step", "rpc", "subflow", "other")


class FlowInfo:
    """What ``@flow`` recorded about a function: its declared name, description and fields."""

    __slots__ = (
        "checkpoint",
        "description",
        "fn",
        "inputs",
        "is_async",
        "module",
        "name",
        "outputs",
        "policy",
        "positional",
        "skip_first",
        "source_file",
        "source_line",
        "strict_replay",
        "varargs",
        "wire",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        description: str,
        inputs: list[dict[str, Any]] | None,
        outputs: list[dict[str, Any]] | None,
    ) -> None:
        code = getattr(fn, "__code__", None)
        self.fn = fn
        self.name = name
        self.description = description
        self.inputs = inputs
        self.outputs = outputs
        self.module: str = getattr(fn, "__module__", "") or ""
        self.source_file: str = code.co_filename if code else ""
        self.source_line: int = code.co_firstlineno if code else 0
        flags = code.co_flags if code else 0
        self.is_async = bool(flags & _CO_COROUTINE)
        self.varargs = bool(flags & _CO_VARARGS)
        self.positional: tuple[str, ...] = code.co_varnames[: code.co_argcount] if code else ()
        # A method's self/cls is not part of the call's identity (its repr varies per run).
        self.skip_first = 1 if self.positional[:1] in (("self",), ("cls",)) else 0
        self.wire: tuple[str, str] | None = None  # the span_start fragments, made on first call
        self.checkpoint = False  # return only once the step's output is durable
        self.strict_replay = True  # as the entry flow: a re-run that departs fails the play
        self.policy: RetryPolicy | None = None  # retries and timeout, when declared

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name (extra positionals under ``"*args"``)."""
        bound = dict(kwargs)
        names = self.positional
        extra: list[Any] = []
        for index, value in enumerate(args):
            if index < self.skip_first:
                continue
            if index < len(names):
                bound[names[index]] = value
            else:
                extra.append(value)
        if extra:
            bound["*args"] = extra
        return bound

    def __repr__(self) -> str:
        return f"<FlowInfo {self.name!r}>"


def _wrap(fn: Callable[..., Any], info: FlowInfo) -> Callable[..., Any]:
    get = _state.get
    if info.is_async:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            runtime = get()
            if runtime is None:
                return fn(*args, **kwargs)
            return runtime.run_step_async(info, fn, args, kwargs)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            runtime = get()
            if runtime is None:
                return fn(*args, **kwargs)
            return runtime.run_step(info, fn, args, kwargs)

    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attr, getattr(fn, attr))
        except AttributeError:
            pass
    wrapper.__dict__.update(getattr(fn, "__dict__", {}))
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapper.__hero_flow__ = info  # type: ignore[attr-defined]
    return wrapper


class FlowApi:
    """``flow``: decorate flows with it; open spans, pause and invoke through it."""

    Failed = Failed
    StepFailed = StepFailed
    StepTimeout = StepTimeout
    NonRetryable = NonRetryable
    RetryAfter = RetryAfter
    WaitTimeout = WaitTimeout

    sleep = staticmethod(_waits.sleep)
    sleep_until = staticmethod(_waits.sleep_until)
    wait_event = staticmethod(_waits.wait_event)
    wait_any = staticmethod(_waits.wait_any)
    on_event = OnEvent
    on_answer = OnAnswer

    if TYPE_CHECKING:

        @overload
        def __call__(self, fn: _F, /) -> _F: ...

        @overload
        def __call__(
            self,
            fn: None = None,
            /,
            *,
            name: str | None = None,
            description: str = "",
            inputs: dict[str, Any] | list[dict[str, Any]] | None = None,
            outputs: dict[str, Any] | list[dict[str, Any]] | None = None,
            sandbox: str = "",
            network: bool = False,
            checkpoint: bool = False,
            secrets: list[str] | None = None,
            services: list[str] | None = None,
            strict_replay: bool = True,
            retries: int = 0,
            retry_delay: float = 1.0,
            retry_backoff: float = 2.0,
            retry_max_delay: float = 300.0,
            retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
            retry_jitter: bool = True,
            timeout: float | None = None,
        ) -> Callable[[_F], _F]: ...

    def __call__(
        self,
        fn: Any = None,
        /,
        *,
        name: str | None = None,
        description: str = "",
        inputs: Any = None,
        outputs: Any = None,
        sandbox: str = "",
        network: bool = False,
        checkpoint: bool = False,
        secrets: Any = None,
        services: Any = None,
        strict_replay: bool = True,
        retries: Any = 0,
        retry_delay: Any = 1.0,
        retry_backoff: Any = 2.0,
        retry_max_delay: Any = 300.0,
        retry_on: Any = (Exception,),
        retry_jitter: Any = True,
        timeout: Any = None,
    ) -> Any:
        """Mark a function as a flow: ``@flow`` or ``@flow(name=..., description=..., inputs=..., outputs=...)``.

        ``inputs`` and ``outputs`` map field names to a type (``"string"``, ``"number"``,
        ``"integer"``, ``"boolean"``, ``"object"``, ``"array"``) or to a dict with ``type``,
        ``required``, ``description`` and ``default``. Declared outputs are checked each time
        the flow returns. ``sandbox`` names the weakest sandbox tier the flow accepts and
        ``network=True`` asks for network access; the service reads both from the source (they
        change nothing inside the flow process). ``checkpoint=True`` makes each call return
        only once the service has stored its output durably (one round trip to the service
        per call), so a crash right after it can never run it again: use it for steps with
        side effects outside the play. Without it, outputs are stored in the background and a
        crash within milliseconds of a step's end may run that step once more, with the same
        ``step_key``. ``secrets`` and ``services`` name the secrets (``flow.secret``) and
        local service sockets (``flow.service_socket``) the entry flow's plays may use; the
        service reads them from the source. ``strict_replay`` (read on the play's entry flow)
        decides what a re-run that departs from the recorded run does: by default it fails the
        play as ``nondeterministic``, naming the first difference; ``strict_replay=False`` lets
        it go on (a step whose key changed runs again, a pause whose id changed asks again).

        ``retries=N`` runs a call that raised (an exception of ``retry_on``) up to N more
        times, ``retry_delay * retry_backoff ** (n - 1)`` seconds apart (at most
        ``retry_max_delay``, jittered by up to 20% unless ``retry_jitter=False``); each attempt
        is a span tagged ``attempt``, a long delay holds no process, ``flow.NonRetryable``
        stops at once and ``flow.RetryAfter(seconds)`` sets the next delay. ``timeout=seconds``
        stops an attempt still running after that long (CPU-bound code too: the service stops
        the process and runs the play again, replaying what finished); it fails with
        ``flow.StepTimeout`` and counts as a failed attempt. Both apply inside a play only.
        """
        for what, names in (("secrets", secrets), ("services", services)):
            if names is not None and (
                not isinstance(names, list | tuple) or not all(isinstance(n, str) and n for n in names)
            ):
                msg = f"@flow {what} must be a list of names, got {names!r}"
                raise TypeError(msg)
        for option, value in (("checkpoint", checkpoint), ("strict_replay", strict_replay)):
            if not isinstance(value, bool):
                msg = f"@flow {option} must be True or False, got {value!r}"
                raise TypeError(msg)
        policy: RetryPolicy | None = RetryPolicy(
            retries, retry_delay, retry_backoff, retry_max_delay, retry_on, retry_jitter, timeout
        )
        if retries == 0 and timeout is None:
            policy = None  # checked all the same
        if name is not None and (not isinstance(name, str) or not name):
            msg = f"@flow name must be a non-empty string, got {name!r}"
            raise TypeError(msg)
        if not isinstance(description, str):
            msg = f"@flow description must be a string, got {description!r}"
            raise TypeError(msg)
        declared_inputs = normalise_fields(inputs, "inputs")
        declared_outputs = normalise_fields(outputs, "outputs")

        def decorate(func: Any) -> Any:
            if not callable(func):
                msg = f"@flow decorates functions, got {func!r}: use @flow or @flow(name=...)"
                raise TypeError(msg)
            if getattr(func, "__hero_flow__", None) is not None:
                msg = f"{getattr(func, '__qualname__', func)!r} is already a @flow"
                raise TypeError(msg)
            code = getattr(func, "__code__", None)
            if code is not None and code.co_flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
                msg = f"@flow cannot decorate the generator {func.__qualname__!r}: return a list instead"
                raise TypeError(msg)
            info = FlowInfo(
                func,
                str(name or getattr(func, "__name__", "flow")),
                description or doc_summary(getattr(func, "__doc__", None)),
                declared_inputs,
                declared_outputs,
            )
            info.checkpoint = checkpoint
            info.strict_replay = strict_replay
            info.policy = policy
            return _wrap(func, info)

        if fn is None:
            return decorate
        return decorate(fn)

    def step(self, name: str, **tags: Any) -> SpanBlock:
        """``with flow.step("fetch", url=url) as span:``: a ``step`` span around a block (not memoized)."""
        return SpanBlock(name, "step", tags)

    def span(self, name: str, kind: str = "other", **tags: Any) -> SpanBlock:
        """``with flow.span("parse", kind="other"):``: a span of any kind around a block."""
        if kind not in _SPAN_KINDS:
            msg = f"span kind {kind!r} is not one of {', '.join(_SPAN_KINDS)}"
            raise ValueError(msg)
        return SpanBlock(name, kind, tags)

    @property
    def current_span(self) -> Span | NullSpan:
        """The innermost open span (the play's root span in a thread with none; a no-op outside a play)."""
        return current_span()

    def pause(self, name: str, schema: Any = None, ui: Any = None) -> Any:
        """Wait for an answer named ``name``; return its payload (see ``ask_user`` for helpers).

        The first time, the play pauses (the process exits with status 75); when the play is
        resumed with a payload for this pause, the re-run returns it here. ``schema`` is a
        JSON schema for the answer, ``ui`` a hint for the form that asks for it.
        """
        from ._pause import pause

        return pause(name, schema, ui)

    def secret(self, name: str) -> str:
        """The value of the secret ``name``, declared in ``@flow(secrets=[...])`` on the entry
        flow (asked of the service; outside a play, the environment variable ``name``)."""
        from ._resources import secret

        return secret(name)

    def service_socket(self, name: str) -> str:
        """The path of the local service socket ``name``, declared in ``@flow(services=[...])``."""
        from ._resources import service_socket

        return service_socket(name)

    def invoke(self, name: str, spawn: bool = False, version_sid: str = "", **inputs: Any) -> Any:
        """Run the library flow ``name`` with ``inputs`` and return its output.

        In process by default (its spans nest under the caller's); with ``spawn=True`` as a
        child play of its own. Either way the call is memoized like a step.
        """
        from ._invoke import invoke

        return invoke(name, spawn, version_sid, inputs, sys._getframe(1))

    def __repr__(self) -> str:
        return "<hero_tracing.flow>"


flow = FlowApi()
