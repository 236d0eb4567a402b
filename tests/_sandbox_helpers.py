"""Shared pieces of the sandbox tests: which tiers exist here, a service per tier, markers."""

from __future__ import annotations

import os
import shutil
import textwrap
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

from .conftest import Service, make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

HAVE = {
    "env_scrub": True,
    "bwrap": shutil.which("bwrap") is not None,
    "nsjail": shutil.which("nsjail") is not None,
}
IS_ROOT = os.geteuid() == 0

TEST_LIMITS = "memory_mb=96,pids=48,tmp_mb=8,fsize_mb=8,cpu_s=30"
"""Small limits so the resource bombs end fast."""


NO_WARM_ENV_SCRUB = "env_scrub has no warm processes under a root service (each play's flow runs as a uid of its own)"


def tier_params(*names: str, warm: bool = False) -> list[Any]:
    """``names`` as pytest params, each skipped only where its binary is missing, and (``warm``:
    tests that need a warm pool) ``env_scrub`` under root (:data:`NO_WARM_ENV_SCRUB`)."""
    params = []
    for name in names:
        why = f"{name} is not installed here" if not HAVE[name] else ""
        if not why and warm and name == "env_scrub" and IS_ROOT:
            why = NO_WARM_ENV_SCRUB
        params.append(pytest.param(name, id=name, marks=pytest.mark.skipif(bool(why), reason=why or "runs")))
    return params


ALL_TIERS = tier_params("env_scrub", "bwrap", "nsjail")
ISOLATING_TIERS = tier_params("bwrap", "nsjail")
"""Tiers that promise file-system, network and process-table isolation (env_scrub does not)."""


START: str | None = None
"""How :func:`open_service` starts plays: ``"cold"`` (pool disabled), ``"warm"`` (every play in
a warm process, checked), or None (the service's default settings). The hostile battery runs
every test both ways (an autouse parametrized fixture sets it)."""

WARM_POOL = 3
"""Warm processes of a ``"warm"`` service: more than the plays any test starts at once."""


def start_overrides(start: str | None) -> dict[str, Any]:
    """Config overrides of a ``start`` mode."""
    if start == "cold":
        return {"warm_pool": 0}
    if start == "warm":
        return {"warm_pool": WARM_POOL, "warm_pool_min": str(WARM_POOL)}
    return {}


def start_environ(start: str | None) -> dict[str, str]:
    """The same, as the environment of a service subprocess."""
    return {f"HERO_LOGIC_{k.upper()}": str(v) for k, v in start_overrides(start).items()}


async def wait_warm(client: AsyncClient, started: int) -> None:
    """Wait until a warm process is ready for one more play beyond the ``started`` ones not yet
    handed one (so every play of a "warm" service starts warm)."""
    with trio.fail_after(30):
        while True:
            pool = (await client.health())["warm_pool"]
            taken = pool["hits"] + pool["misses"] + pool["cold_only"] + pool["fallbacks"]
            if pool["ready"] >= 1 + max(0, started - taken):
                return
            await trio.sleep(0.02)


@attrs.define
class WarmService(Service):
    """A service whose runs each start in a warm process (``play_start`` and ``play_resume`` wait for one)."""

    started: int = 0

    async def call(self, method: str, /, **params: Any) -> Any:
        if method in ("play_start", "play_resume"):  # each starts a run (a resume: the run again)
            await wait_warm(self.client, self.started)
            self.started += 1
        return await super().call(method, **params)

    async def check_all_warm(self) -> None:
        """Every play that ran started warm: no miss, no fallback to a cold start."""
        pool = (await self.client.health())["warm_pool"]
        assert pool["misses"] == 0, pool
        assert pool["fallbacks"] == 0, pool


def service_for(config: Any, client: AsyncClient, start: str | None) -> Service:
    return WarmService(config, client) if start == "warm" else Service(config, client)


@asynccontextmanager
async def open_service(root: Path, tier: str, limits: str = TEST_LIMITS, **overrides: Any) -> AsyncIterator[Service]:
    """A real service (in this process) running the sandbox ``tier`` with ``limits`` (its
    plays started as :data:`START` says)."""
    if START == "warm" and tier == "env_scrub" and IS_ROOT:
        pytest.skip(NO_WARM_ENV_SCRUB)
    overrides = {**start_overrides(START), **overrides}
    config = make_config(root, sandbox=f"{tier}:{limits}" if limits else tier, **overrides)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            svc = service_for(config, client, START)
            yield svc
            if isinstance(svc, WarmService):
                await svc.check_all_warm()
        nursery.cancel_scope.cancel()


async def run_flow(svc: Service, source: str, timeout_ms: int = 30000, **inputs: Any) -> dict[str, Any]:
    """Push ``source`` and run one play of it to its end."""
    wf = await svc.push(textwrap.dedent(source))
    return await svc.run(wf, timeout_ms=timeout_ms, **inputs)


def live_processes() -> Iterator[tuple[int, str, int]]:
    """``(pid, command name, parent pid)`` of every process that is not a zombie."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
        fields = stat.rsplit(b")", 1)[-1].split()
        if fields[0] != b"Z":
            yield int(entry), comm.decode(errors="replace"), int(fields[1])


def marker_pids(marker: str) -> list[int]:
    """Live processes whose command name is ``marker`` (set with PR_SET_NAME)."""
    return [pid for pid, comm, _ in live_processes() if comm == marker]


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


GRANDCHILD_FLOW = """
    import ctypes, os, time
    from hero_tracing import flow

    @flow
    def main(marker: str):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, marker.encode(), 0, 0, 0)  # PR_SET_NAME
                time.sleep(300)
            os._exit(0)
        os.waitpid(pid, 0)
        flow.current_span.tag(forked=True)
        time.sleep(300)
"""
"""A flow that leaves a double-forked ``setsid`` grandchild named ``marker``, then waits."""
