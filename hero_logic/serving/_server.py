"""Serving an ASGI app on the Unix socket with hypercorn's trio worker.

The socket's directory is made 0700 and the socket itself is created 0600 (hypercorn binds
under ``umask 0o177``): both are created so, never chmod-ed after the fact (CONTRACT.md §2). A
stale socket left by a crashed server is replaced; a live one (another server answering) or a
file that is not a socket is refused with an error saying what to do.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig

from hero_logic.kernel import ConfigError

from ._doors import ServingLimits, serve_doors

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["MAX_SOCKET_PATH_BYTES", "parse_tcp_bind", "prepare_socket_path", "serve_door", "serve_rpc"]

logger = logging.getLogger("hero_logic.rpc.server")

MAX_SOCKET_PATH_BYTES = 107
"""``sun_path`` holds 108 bytes with the final NUL: longer paths cannot be bound."""

GRACEFUL_TIMEOUT_S = 1.0


def _make_private_dir(directory: Path) -> None:
    """Create ``directory`` (and missing parents) 0700; tighten an existing one we own."""
    old = os.umask(0o077)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    finally:
        os.umask(old)
    info = directory.stat()
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        if info.st_uid == os.geteuid() and not mode & stat.S_ISVTX:
            logger.warning("socket directory %s was mode %04o; making it 0700", directory, mode)
            directory.chmod(0o700)
        else:
            logger.warning(
                "socket directory %s is mode %04o and not ours to tighten; the socket itself "
                "is still 0600", directory, mode,
            )


def _is_live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except OSError:
            return False
        return True


def prepare_socket_path(socket_path: Path) -> Path:
    """Check the path fits, make its directory 0700, and clear a stale socket file.

    Returns the absolute path to bind.
    """
    socket_path = Path(os.path.abspath(socket_path))
    encoded = os.fsencode(socket_path)
    if len(encoded) >= MAX_SOCKET_PATH_BYTES:
        msg = (
            f"socket path {os.fspath(socket_path)!r} is {len(encoded)} bytes; a Unix socket "
            f"path must be shorter than {MAX_SOCKET_PATH_BYTES}: set a shorter PATH_SOCKET "
            "(or --socket-dir), e.g. /tmp/hero"
        )
        raise ConfigError(msg)
    _make_private_dir(socket_path.parent)
    try:
        info = socket_path.lstat()
    except FileNotFoundError:
        return socket_path
    if not stat.S_ISSOCK(info.st_mode):
        msg = (
            f"refusing to replace {socket_path}: it exists and is not a socket; "
            "remove it or choose another PATH_SOCKET"
        )
        raise ConfigError(msg)
    if _is_live(socket_path):
        msg = (
            f"another server is already listening on {socket_path}: stop it first "
            "(hero_logic --stop) or choose another PATH_SOCKET"
        )
        raise ConfigError(msg)
    logger.info("removing the stale socket %s", socket_path)
    socket_path.unlink()
    return socket_path


async def serve_rpc(
    app: Callable[..., Awaitable[None]],
    socket_path: Path,
    limits: ServingLimits | None = None,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    tcp_bind: str | None = None,
    keep_alive_max_requests: int = 1000,
    label: str = "JSON-RPC",
) -> None:
    """Serve ``app`` on ``socket_path`` (and ``tcp_bind``, "host:port", if given) until cancelled.

    ``task_status.started(binds)`` is called once the sockets listen, with hypercorn's bind
    list (``["http://unix:/…/rpc.sock", …]``). ``shutdown_trigger`` returning starts a graceful
    shutdown (open requests get :data:`GRACEFUL_TIMEOUT_S`). The socket file is removed on exit.
    ``limits`` bound each listener's connections and each request's headers (the defaults of
    :class:`ServingLimits` if not given); see :mod:`._doors`.
    """
    limits = limits or ServingLimits()
    socket_path = prepare_socket_path(socket_path)
    config = HypercornConfig()
    config.bind = [f"unix:{socket_path}"] if tcp_bind is None else [f"unix:{socket_path}", tcp_bind]
    config.umask = 0o177
    config.accesslog = None
    config.errorlog = logger
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.keep_alive_max_requests = keep_alive_max_requests
    config.include_server_header = False
    bound: os.stat_result | None = None

    async def serve_app(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_doors(app, config, limits, label=label, shutdown_trigger=shutdown_trigger, task_status=task_status)

    try:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(serve_app)
            bound = socket_path.lstat()
            logger.info("%s listening on %s", label, ", ".join(binds))
            task_status.started(binds)
    finally:
        _remove_if_ours(socket_path, bound)


def _remove_if_ours(socket_path: Path, bound: os.stat_result | None) -> None:
    if bound is None:
        return
    try:
        now = socket_path.lstat()
    except FileNotFoundError:
        return
    if (now.st_ino, now.st_dev) == (bound.st_ino, bound.st_dev):
        socket_path.unlink()


def parse_tcp_bind(value: str, *, door: str, setting: str, example: str) -> str | None:
    """``"host:port"`` checked, or None for ``none``/``off``/empty (no TCP listener)."""
    value = value.strip()
    if value.lower() in ("", "none", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"{door} bind {value!r} is not HOST:PORT: use e.g. {example}, or 'none' for no TCP listener ({setting})"
        raise ConfigError(msg)
    return value


async def serve_door(
    app: Callable[..., Awaitable[None]],
    socket_path: Path,
    *,
    tcp_bind: str | None,
    door: str,
    setting: str,
    limits: ServingLimits | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """:func:`serve_rpc` for a door with a TCP address: a bind that fails (the port is taken)
    is a ConfigError naming the door, the address and the setting that chooses it."""
    try:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                functools.partial(serve_rpc, app, socket_path, limits, tcp_bind=tcp_bind, label=door)
            )
            task_status.started(binds)
    except BaseExceptionGroup as group:
        bind_errors, rest = group.split(OSError)
        if bind_errors is None or rest is not None:
            raise
        exc = _first_leaf(bind_errors)
        msg = (
            f"the {door} cannot listen on {tcp_bind}: {getattr(exc, 'strerror', None) or exc}; choose "
            f"another address with {setting}, or 'none' for the socket only"
        )
        raise ConfigError(msg) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
