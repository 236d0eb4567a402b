"""The marker a service method wears to be an RPC method, and what it records.

The service declares *what* its API is (:func:`rpc_method` on each public coroutine); the door
(:mod:`hero_logic.rpc`) reads the marks to build its method table. The marker lives here, in
the service, so that the domain never imports a door.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, overload

import attrs

__all__ = ["MethodInfo", "marked_methods", "method_info", "rpc_method"]

RpcCallable = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=RpcCallable)

_MARK = "__hero_logic_rpc_method__"


@attrs.frozen
class MethodInfo:
    """What :func:`rpc_method` records on a coroutine function."""

    name: str | None = None
    summary: str = ""
    result_description: str = ""
    cancel_on_disconnect: bool = False
    admin: bool = False
    """The web admin may call it from the browser (``POST /api/rpc``)."""
    large_result: bool = False
    """Its result may be large (a big play's spans): the door encodes it off the event loop."""


@overload
def rpc_method(name: F, /) -> F: ...
@overload
def rpc_method(
    name: str | None = None,
    /,
    *,
    summary: str = "",
    result_description: str = "",
    cancel_on_disconnect: bool = False,
    admin: bool = False,
    large_result: bool = False,
) -> Callable[[F], F]: ...
def rpc_method(
    name: str | F | None = None,
    /,
    *,
    summary: str = "",
    result_description: str = "",
    cancel_on_disconnect: bool = False,
    admin: bool = False,
    large_result: bool = False,
) -> F | Callable[[F], F]:
    """Mark an ``async def`` method as an RPC method (``@rpc_method()`` or ``@rpc_method``).

    ``name`` defaults to the function's name; ``summary`` to the first line of its docstring.
    ``cancel_on_disconnect`` is for pure waits (``play_wait``): when the HTTP client goes away
    mid-call the call is cancelled instead of holding its task until it would have returned.
    Never set it on a method that changes state: cancelling it half-way could strand a change.
    ``admin`` lets the web admin proxy it for the browser: leave it off for what people must
    not call from a page (flows' own calls such as ``span_push``, long waits).
    ``large_result`` has the door encode the result in a worker thread, so a big answer (a
    play's 100,000 spans) never stalls other clients.
    """
    if callable(name):
        return rpc_method()(name)
    info = MethodInfo(name, summary, result_description, cancel_on_disconnect, admin, large_result)

    def mark(func: F) -> F:
        if not _is_async(func):
            msg = f"@rpc_method needs an `async def` function, got {func!r}"
            raise TypeError(msg)
        setattr(func, _MARK, info)
        return func

    return mark


def _is_async(func: object) -> bool:
    return inspect.iscoroutinefunction(func)  # not a TypeGuard here: ``func`` keeps its type F


def method_info(func: object) -> MethodInfo | None:
    """The mark :func:`rpc_method` left on ``func``, if any."""
    info = getattr(func, _MARK, None)
    return info if isinstance(info, MethodInfo) else None


def marked_methods(owner: object) -> Iterator[tuple[str, MethodInfo]]:
    """``(attribute name, mark)`` of every marked method of a service object or class."""
    for attr in dir(owner):
        info = method_info(inspect.getattr_static(owner, attr, None))
        if info is not None:
            yield attr, info
