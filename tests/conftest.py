"""Fixtures: a real service (kernel + RPC server on a real Unix socket) per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def pytest_configure(config: pytest.Config) -> None:
    """Services the tests start as subprocesses inherit this environment: keep them off the
    admin's fixed TCP port (9820), which a developer's own service may hold. Tests of the
    admin's TCP listener bind 127.0.0.1:0 explicitly."""
    os.environ["HERO_LOGIC_ADMIN_BIND"] = "none"


@pytest.fixture
def root() -> Iterator[Path]:
    """A short, private PATH_ROOT (AF_UNIX paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="hl-", dir="/tmp"))
    # Searchable, not listable: a root service's env_scrub flows run as their own uid and read
    # the marker files tests put here; the service's own state below stays 0700.
    path.chmod(0o711)
    yield path
    _unmount_below(path)
    shutil.rmtree(path, ignore_errors=True)


def _unmount_below(path: Path) -> None:
    """Detach what a service killed in a test left mounted under ``path`` (its workdir file
    systems: a restarted service would have put them back, a test's root just goes)."""
    try:
        with open("/proc/self/mountinfo") as f:
            targets = [line.split()[4] for line in f]
    except OSError:
        return
    for target in sorted((t for t in targets if t.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def make_config(root: Path, **overrides: Any) -> Config:
    env = {"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_KILL_GRACE_MS": "500", "HERO_LOGIC_SEED_FLOWS": "off"}
    return attrs.evolve(Config.load(environ=env), **overrides)


@attrs.define
class Service:
    """A running service and an async client connected to it."""

    config: Config
    client: AsyncClient

    async def call(self, method: str, /, **params: Any) -> Any:
        return await self.client.call(method, params)

    async def push(self, source: str, name: str = "", **extra: Any) -> dict[str, Any]:
        """Create a workflow from dedented ``source``; returns the Workflow."""
        source = textwrap.dedent(source)
        wf: dict[str, Any] = await self.call(
            "workflow_create", name=name or f"flow-{trio.current_time():.6f}", python_source=source, **extra
        )
        return wf

    async def run(self, wf: dict[str, Any], timeout_ms: int = 30000, **inputs: Any) -> dict[str, Any]:
        """Start a play of ``wf`` with ``inputs`` and wait for it to settle."""
        sid = await self.call("play_start", workflow_sid=wf["sid"], input_data=inputs)
        play: dict[str, Any] = await self.call("play_wait", play_sid=sid, timeout_ms=timeout_ms)
        return play


@pytest.fixture
async def service(root: Path, nursery: trio.Nursery) -> AsyncIterator[Service]:
    config = make_config(root)
    await nursery.start(serve, config)
    async with AsyncClient(config.rpc_socket) as client:
        yield Service(config, client)
    nursery.cancel_scope.cancel()


async def start_service_process(
    root: Path, *, sandbox: str, module: str = "hero_logic.cli", env: dict[str, str] | None = None
) -> tuple[trio.Process, Config]:
    """``python -m <module> serve`` as a real subprocess on ``root``, once it answers /health.

    For tests that kill the service (kill -9) or need it outside the test's process.
    """
    env = {**os.environ, "PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": sandbox, **(env or {})}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", module, "serve"],
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    config = Config.load(environ=env)
    with trio.fail_after(30):
        while True:
            try:
                async with AsyncClient(config.rpc_socket, timeout=2) as client:
                    if (await client.health())["status"] == "ok":
                        return proc, config
            except (ConnectionError, OSError):
                pass
            await trio.sleep(0.05)
