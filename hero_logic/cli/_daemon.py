"""Running the binaries: in the foreground until a signal, or in the background with a pid file.

:func:`serve_until_signal` is the one loop both foreground binaries run: ``hero_logic_server``
(and ``hero_logic serve``) through :func:`run_foreground`, ``hero_logic_admin`` through
:func:`run_admin`. It lives here, in the CLI, so that the packages it starts (the server, the
admin) never import the CLI back.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.kernel import unwrap_startup_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hero_logic.kernel import Config

__all__ = ["run_admin", "run_foreground", "serve_until_signal", "start", "status", "stop"]

log = logging.getLogger("hero_logic")

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 15.0


async def _serve_until_signal(
    serve: Callable[..., Awaitable[Any]], started: Callable[[Any], None] | None, stopping: str
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            value = await nursery.start(serve)
            if started is not None:
                started(value)
            async for signum in signals:
                log.info("received %s: stopping%s", signal.Signals(signum).name, stopping)
                nursery.cancel_scope.cancel()
                break


def serve_until_signal(
    serve: Callable[..., Awaitable[Any]],
    *,
    started: Callable[[Any], None] | None = None,
    stopping: str = "",
) -> int:
    """Run ``serve`` (a service taking ``task_status``) until SIGTERM or SIGINT; 0 on a clean stop.

    ``started`` gets what ``serve`` reported once it is ready; ``stopping`` is added to the log
    line on the signal. A lone HeroLogicError at start-up comes out bare (see
    :func:`~hero_logic.kernel.unwrap_startup_error`) for the caller to print.
    """
    with unwrap_startup_error():
        trio.run(_serve_until_signal, serve, started, stopping)
    return 0


def run_foreground(config: Config, *, admin: bool = False) -> int:
    """Kernel + RPC (with the web admin when ``admin``) until SIGTERM or SIGINT; 0 on a clean stop."""
    from hero_logic.server import serve

    return serve_until_signal(
        functools.partial(serve, config, admin=admin, ingress=True, freeze_gc=True), stopping=" (running plays resume at next start)"
    )


def run_admin(config: Config) -> int:
    """``hero_logic_admin``: check service.toml and the admin's address, print a banner once it
    listens, serve until SIGTERM or SIGINT."""
    from hero_logic import __version__
    from hero_logic._service_toml import load_service_toml
    from hero_logic.admin import parse_admin_bind, serve_admin

    load_service_toml()
    parse_admin_bind(config.admin_bind)  # a bad address fails before anything starts

    def banner(binds: list[str]) -> None:
        print(f"hero_logic_admin {__version__} serving on {', '.join(binds)}; service at {config.rpc_socket}", flush=True)

    return serve_until_signal(functools.partial(serve_admin, config), started=banner)


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
