"""``instrument(client)``: a span around every public method call of a client object."""

from __future__ import annotations

import sys

from . import _state
from ._spans import CURRENT, outcome

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any, TypeVar

    _C = TypeVar("_C")

__all__ = ["instrument"]

_CO_COROUTINE = 0x80


def _is_coroutine_function(method: Any) -> bool:
    func = getattr(method, "__func__", method)
    code = getattr(func, "__code__", None)
    return bool(code is not None and code.co_flags & _CO_COROUTINE)


def _traced(method: Callable[..., Any], service: str, name: str) -> Callable[..., Any]:
    span_name = f"rpc:{service}.{name}"
    extra = {"rpc_service": service, "rpc_method": name}

    if _is_coroutine_function(method):

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            runtime = _state.get()
            if runtime is None:
                return await method(*args, **kwargs)
            caller = sys._getframe(1)
            span = runtime.open_span(
                span_name, "rpc", {}, caller.f_code.co_filename, caller.f_lineno, extra
            )
            token = CURRENT.set(span)
            try:
                result = await method(*args, **kwargs)
            except BaseException as exc:
                ended = outcome(exc)
                if ended is not None:
                    runtime.end_span(span.span_id, *ended)
                raise
            finally:
                CURRENT.reset(token)
            runtime.end_span(span.span_id, "ok")
            return result

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        runtime = _state.get()
        if runtime is None:
            return method(*args, **kwargs)
        caller = sys._getframe(1)
        span = runtime.open_span(
            span_name, "rpc", {}, caller.f_code.co_filename, caller.f_lineno, extra
        )
        token = CURRENT.set(span)
        try:
            result = method(*args, **kwargs)
        except BaseException as exc:
            CURRENT.reset(token)
            ended = outcome(exc)
            if ended is not None:
                runtime.end_span(span.span_id, *ended)
            raise
        CURRENT.reset(token)
        runtime.end_span(span.span_id, "ok")
        return result

    return call


class Instrumented:
    """A proxy for a client: public method calls become ``rpc`` spans, all else passes through."""

    __slots__ = ("_hero_service", "_hero_target")

    def __init__(self, target: Any) -> None:
        service = target.__name__ if type(target) is type(sys) else type(target).__name__
        object.__setattr__(self, "_hero_target", target)
        object.__setattr__(self, "_hero_service", service)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._hero_target, name)
        if name.startswith("_") or not callable(value) or isinstance(value, type):
            return value
        return _traced(value, self._hero_service, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._hero_target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._hero_target, name)

    def __dir__(self) -> list[str]:
        return dir(self._hero_target)

    def __repr__(self) -> str:
        return f"instrument({self._hero_target!r})"

    def __enter__(self) -> Any:
        entered = self._hero_target.__enter__()
        return self if entered is self._hero_target else entered

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        return self._hero_target.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Any:
        entered = await self._hero_target.__aenter__()
        return self if entered is self._hero_target else entered

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        return await self._hero_target.__aexit__(exc_type, exc, tb)


def instrument(client: _C) -> _C:
    """Wrap ``client`` so each public method call opens a span ``rpc:{Class}.{method}``.

    The span has kind ``rpc`` and ``rpc_service`` / ``rpc_method`` set; ``async`` methods are
    traced until their result is ready. Attributes starting with ``_`` and non-callable
    attributes pass through untouched, and ``with`` / ``async with`` reach the client.
    """
    if isinstance(client, Instrumented):
        return client
    proxy: _C = Instrumented(client)  # type: ignore[assignment]
    return proxy
