"""Clients of the RPC socket: :class:`Client` (blocking) and :class:`AsyncClient` (trio/anyio).

::

    with Client(config.rpc_socket) as rpc:
        play = rpc.play_status(play_sid="play_...")        # sugar for rpc.call("play_status", ...)
        rpc.call("play_wait", {"play_sid": sid, "timeout_ms": 0})
        rpc.call("play_wait", [sid, 0])                     # by position

An error answer raises :class:`RpcError`; its class follows the code, so a -32001 is also a
:class:`~hero_logic.kernel.NotFound` and a -32602 an :class:`~hero_logic.kernel.InvalidParams`
(``.code``, ``.message`` and ``.data`` as sent). No service at the socket raises
:class:`ServiceUnavailable`. There is no timeout unless one is given (``play_wait`` may block for
long); connections closed by the server after ``keep_alive_max_requests`` are reopened.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpcore
import httpx
from httpcore._backends.sync import SyncStream

from hero_logic.kernel import (
    ConfigError,
    Conflict,
    HeroLogicError,
    InvalidParams,
    NotFound,
    PluginNotFound,
    SandboxUnavailable,
    ServiceBusy,
    ServiceClosed,
    StorageFull,
    WrongState,
    dumps,
)

from ._jsonrpc import (
    InvalidRequest,
    MethodNotFound,
    ParseError,
    encode_request,
    request_object,
    response_outcome,
)
from ._openrpc import error_classes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
    from types import TracebackType

__all__ = [
    "AsyncClient",
    "Client",
    "RemoteConfigError",
    "RemoteConflict",
    "RemoteInvalidParams",
    "RemoteInvalidRequest",
    "RemoteMethodNotFound",
    "RemoteNotFound",
    "RemoteParseError",
    "RemotePluginNotFound",
    "RemoteSandboxUnavailable",
    "RemoteServiceBusy",
    "RemoteServiceClosed",
    "RemoteStorageFull",
    "RemoteWrongState",
    "RpcError",
    "ServiceUnavailable",
    "error_from_json",
]

Params = dict[str, Any] | list[Any] | None
Call = tuple[str, Params] | str
"""One call of a batch: ``(method, params)``, or a method name alone."""


class RpcError(HeroLogicError):
    """An error answered by the service, with the ``code``, ``message`` and ``data`` it sent."""

    def __init__(self, message: str, *, data: Any = None, code: int | None = None) -> None:
        super().__init__(message, data=data)
        if code is not None and code != type(self).code:
            self.__dict__["code"] = code  # an unknown code: keep it on the instance


class RemoteParseError(RpcError, ParseError):
    """-32700 from the service."""


class RemoteInvalidRequest(RpcError, InvalidRequest):
    """-32600 from the service (also a body over the size limit, HTTP 413)."""


class RemoteMethodNotFound(RpcError, MethodNotFound):
    """-32601 from the service."""


class RemoteInvalidParams(RpcError, InvalidParams):
    """-32602 from the service; ``data`` lists each bad field."""


class RemoteNotFound(RpcError, NotFound):
    """-32001 from the service."""


class RemoteWrongState(RpcError, WrongState):
    """-32002 from the service."""


class RemoteConflict(RpcError, Conflict):
    """-32003 from the service."""


class RemoteSandboxUnavailable(RpcError, SandboxUnavailable):
    """-32004 from the service."""


class RemoteStorageFull(RpcError, StorageFull):
    """-32005 from the service."""


class RemotePluginNotFound(RpcError, PluginNotFound):
    """-32007 from the service."""


class RemoteConfigError(RpcError, ConfigError):
    """-32008 from the service."""


class RemoteServiceClosed(RpcError, ServiceClosed):
    """-32009 from the service."""


class RemoteServiceBusy(RpcError, ServiceBusy):
    """-32010 from the service."""


_REMOTE: dict[int, type[RpcError]] = {
    cls.code: cls
    for cls in (
        RemoteParseError, RemoteInvalidRequest, RemoteMethodNotFound, RemoteInvalidParams,
        RemoteNotFound, RemoteWrongState, RemoteConflict, RemoteSandboxUnavailable,
        RemoteStorageFull, RemotePluginNotFound, RemoteConfigError, RemoteServiceClosed, RemoteServiceBusy,
    )
}


def _remote_class(code: int) -> type[RpcError]:
    """The Remote* class of ``code``; for a HeroLogicError code added since, one made to match."""
    cls = _REMOTE.get(code)
    if cls is None:
        local = next((c for c in error_classes() if c.code == code), None)
        if local is None or local is HeroLogicError:
            return RpcError
        cls = _REMOTE[code] = type(f"Remote{local.__name__}", (RpcError, local), {
            "__doc__": f"{code} from the service.", "__module__": __name__,
        })
    return cls


def error_from_json(error: dict[str, Any]) -> RpcError:
    """The exception for a JSON-RPC error object: a Remote* class by code, else RpcError."""
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else HeroLogicError.code
    return _remote_class(code)(str(error.get("message", "")), data=error.get("data"), code=code)


class ServiceUnavailable(ConnectionError):
    """Nothing answers at the socket: the service is not running (or went away mid-call)."""

    def __init__(self, socket_path: Path, reason: str) -> None:
        self.socket_path = socket_path
        self.reason = reason
        super().__init__(
            f"hero_logic is not running at {socket_path} ({reason}): start it with "
            "`hero_logic --start` (in the background) or `make run`"
        )


def _merge(params: Params, kw_params: dict[str, Any]) -> Params:
    if not kw_params:
        return params
    if params is None:
        return kw_params
    if isinstance(params, dict):
        return {**params, **kw_params}
    msg = "give params by position (a list) or by name, not both"
    raise TypeError(msg)


def _result(response: httpx.Response) -> Any:
    """The result of a single call, or raise its error."""
    if response.status_code == 204:
        return None
    message = _decode(response)
    result, error = response_outcome(message)
    if error is not None:
        raise error_from_json(error)
    return result


def _decode(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        msg = f"HTTP {response.status_code} from {response.request.url.path} is not JSON: {response.text[:200]!r}"
        raise RpcError(msg) from None


def _batch_results(response: httpx.Response, ids: list[int]) -> list[Any]:
    if response.status_code == 204:
        return [None] * len(ids)
    message = _decode(response)
    if not isinstance(message, list):  # the whole batch was refused
        _, error = response_outcome(message)
        raise error_from_json(error or {"message": f"unexpected batch answer {message!r:.200}"})
    by_id = {m.get("id"): m for m in message if isinstance(m, dict)}
    out: list[Any] = []
    for request_id in ids:
        answer = by_id.get(request_id)
        if answer is None:
            out.append(RpcError(f"the batch answer has no response for id {request_id}"))
            continue
        result, error = response_outcome(answer)
        out.append(error_from_json(error) if error is not None else result)
    return out


def _batch_body(calls: Iterable[Call], ids: Iterable[int]) -> tuple[bytes, list[int]]:
    messages = []
    used = []
    for call, request_id in zip(calls, ids, strict=False):
        method, params = (call, None) if isinstance(call, str) else call
        messages.append(request_object(method, params, request_id))
        used.append(request_id)
    return dumps(messages), used


_HEADERS = {"content-type": "application/json"}


class _UnixBackend(httpcore.SyncBackend):
    """httpcore's sync backend, except that a failed Unix-socket connect closes its socket.

    httpcore 1.0.9 leaves that socket to the garbage collector (a ResourceWarning, an error
    under ``-W error``) each time the service is down.
    """

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        return SyncStream(sock)


def _sync_transport(socket_path: str) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(uds=socket_path)
    pool = getattr(transport, "_pool", None)
    if hasattr(pool, "_network_backend"):
        pool._network_backend = _UnixBackend()  # type: ignore[union-attr]
    return transport


class Client:
    """A blocking client of the RPC socket; safe to use from worker threads (one per thread)."""

    def __init__(self, socket_path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
        self.socket_path = Path(socket_path)
        self._ids = itertools.count(1)
        self._http = httpx.Client(
            transport=_sync_transport(os.fspath(socket_path)),
            base_url="http://hero_logic",
            timeout=timeout,
            headers=_HEADERS,
        )

    def call(self, method: str, params: Params = None, /, **kw_params: Any) -> Any:
        """Call ``method`` and return its result; raise :class:`RpcError` for an error answer."""
        body = encode_request(method, _merge(params, kw_params), next(self._ids))
        return _result(self._post(body))

    def notify(self, method: str, params: Params = None, /, **kw_params: Any) -> None:
        """Send a notification: no answer is awaited beyond the HTTP 204."""
        _result(self._post(encode_request(method, _merge(params, kw_params))))

    def batch(self, calls: Iterable[Call]) -> list[Any]:
        """Send calls in one batch; each result, or the RpcError instance of a failed one, in order."""
        body, ids = _batch_body(calls, self._ids)
        if not ids:
            return []
        return _batch_results(self._post(body), ids)

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        try:
            response = self._http.get("/health")
        except httpx.TransportError as exc:
            raise ServiceUnavailable(self.socket_path, str(exc) or type(exc).__name__) from exc
        result: dict[str, Any] = _decode(response)
        return result

    def _post(self, body: bytes) -> httpx.Response:
        try:
            return self._http.post("/rpc", content=body)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(self.socket_path, str(exc) or type(exc).__name__) from exc

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(_sugar, self.call, name)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({os.fspath(self.socket_path)!r})"


class AsyncClient:
    """An async client of the RPC socket (httpx over anyio: runs under trio or asyncio)."""

    def __init__(self, socket_path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
        self.socket_path = Path(socket_path)
        self._ids = itertools.count(1)
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=os.fspath(socket_path)),
            base_url="http://hero_logic",
            timeout=timeout,
            headers=_HEADERS,
        )

    async def call(self, method: str, params: Params = None, /, **kw_params: Any) -> Any:
        """Call ``method`` and return its result; raise :class:`RpcError` for an error answer."""
        body = encode_request(method, _merge(params, kw_params), next(self._ids))
        return _result(await self._post(body))

    async def notify(self, method: str, params: Params = None, /, **kw_params: Any) -> None:
        """Send a notification: no answer is awaited beyond the HTTP 204."""
        _result(await self._post(encode_request(method, _merge(params, kw_params))))

    async def batch(self, calls: Iterable[Call]) -> list[Any]:
        """Send calls in one batch; each result, or the RpcError instance of a failed one, in order."""
        body, ids = _batch_body(calls, self._ids)
        if not ids:
            return []
        return _batch_results(await self._post(body), ids)

    async def health(self) -> dict[str, Any]:
        """``GET /health``."""
        try:
            response = await self._http.get("/health")
        except httpx.TransportError as exc:
            raise ServiceUnavailable(self.socket_path, str(exc) or type(exc).__name__) from exc
        result: dict[str, Any] = _decode(response)
        return result

    async def _post(self, body: bytes) -> httpx.Response:
        try:
            return await self._http.post("/rpc", content=body)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(self.socket_path, str(exc) or type(exc).__name__) from exc

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(_sugar, self.call, name)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({os.fspath(self.socket_path)!r})"


def _sugar(call: Callable[..., Any], method: str, *args: Any, **kwargs: Any) -> Any:
    if args and kwargs:
        msg = f"{method}(): give params by position or by name, not both"
        raise TypeError(msg)
    return call(method, list(args)) if args else call(method, None, **kwargs)
