"""Running the service: in the foreground, or in the background with a pid file."""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hero_logic.kernel import Config

__all__ = ["run_foreground", "start", "status", "stop", "unwrap_startup_error"]

log = logging.getLogger("hero_logic")

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 15.0


async def _serve_until_signal(config: Config, admin: bool) -> None:
    from hero_logic.server import serve

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve, config, admin=admin, freeze_gc=True))
            async for signum in signals:
                log.info("received %s: stopping (running plays resume at next start)", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def run_foreground(config: Config, *, admin: bool = False) -> int:
    """Serve (with the web admin when ``admin``) until SIGTERM or SIGINT; 0 on a clean stop."""
    with unwrap_startup_error():
        trio.run(_serve_until_signal, config, admin)
    return 0


@contextmanager
def unwrap_startup_error() -> Iterator[None]:
    """Let a lone HeroLogicError out of the nurseries that grouped it (a bad setting, a busy
    socket): the caller prints its message instead of a traceback."""
    from hero_logic.kernel import HeroLogicError

    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], HeroLogicError):
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    return [
        leaf
        for exc in group.exceptions
        for leaf in (_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    ]


def _read_pid(config: Config) -> int | None:
    try:
        pid = int(config.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _healthy(config: Config) -> bool:
    from hero_logic.rpc import Client

    try:
        with Client(config.rpc_socket, timeout=2.0) as client:
            return client.health().get("status") == "ok"
    except Exception:  # any failure to connect means "not healthy"; nothing async here
        return False


def start(config: Config, argv: list[str]) -> int:
    """Start ``hero_logic serve`` in the background, record its pid, wait until it answers."""
    pid = _read_pid(config)
    if pid is not None:
        print(f"hero_logic is already running (pid {pid}, socket {config.rpc_socket})")
        return 0
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    passthrough = [a for a in argv if a != "--start"]
    log_file = open(config.log_file, "ab")
    with log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hero_logic.cli", *passthrough, "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            env={**os.environ, "PATH_ROOT": str(config.root), "PATH_SOCKET": str(config.socket_root)},
        )
    config.pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            config.pid_file.unlink(missing_ok=True)
            print(f"hero_logic failed to start (exit {proc.returncode}); see {config.log_file}", file=sys.stderr)
            return 1
        if _healthy(config):
            print(f"hero_logic started (pid {proc.pid}, socket {config.rpc_socket}, log {config.log_file})")
            return 0
        time.sleep(0.1)
    print(f"hero_logic did not answer within {_START_TIMEOUT_S:.0f} s; see {config.log_file}", file=sys.stderr)
    return 1


def stop(config: Config) -> int:
    """SIGTERM the background service and wait for it to exit."""
    pid = _read_pid(config)
    if pid is None:
        config.pid_file.unlink(missing_ok=True)
        print("hero_logic is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    config.pid_file.unlink(missing_ok=True)
    print(f"hero_logic stopped (pid {pid})")
    return 0


def status(config: Config) -> int:
    """Print whether the service runs and answers; exit 0 if it does, 3 if not."""
    pid = _read_pid(config)
    healthy = _healthy(config)
    if healthy:
        print(f"hero_logic is running (pid {pid or 'unknown'}, socket {config.rpc_socket})")
        return 0
    if pid is not None:
        print(f"hero_logic process {pid} exists but does not answer on {config.rpc_socket}")
        return 1
    print("hero_logic is not running")
    return 3
