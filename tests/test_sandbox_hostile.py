"""Hostile flows against every sandbox tier available here (RELIABILITY.md promise 6).

Each test runs a flow that attacks the service through a real service and a real sandbox.
Tests of isolation only a namespace tier promises (file system, network, process table) run
over ``bwrap`` and ``nsjail``; the others over every tier. A tier is skipped only where its
binary is missing. ``HERO_SANDBOX_WEAKEN=<name>`` (tests/_sandbox_weaken.py) removes one
protection so the tests that pin it go red.
"""

from __future__ import annotations

import os
import shutil
import signal
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import AsyncClient

from . import _sandbox_helpers, _sandbox_weaken
from ._sandbox_helpers import (
    ALL_TIERS,
    GRANDCHILD_FLOW,
    IS_ROOT,
    ISOLATING_TIERS,
    TEST_LIMITS,
    kill_pids,
    marker_pids,
    open_service,
    run_flow,
    service_for,
    start_environ,
    tier_params,
)
from .conftest import Service, start_service_process

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hero_logic.kernel import Config

pytestmark = pytest.mark.timeout(60)

needs_cgroups = pytest.mark.skipif(not IS_ROOT, reason="per-play cgroups need root")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exists(path: str) -> bool:
    return os.path.lexists(path)


@pytest.fixture(autouse=True)
def _weakened(monkeypatch: pytest.MonkeyPatch) -> None:
    _sandbox_weaken.apply(monkeypatch.setattr)


@pytest.fixture(autouse=True, params=["cold", "warm"])
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every hostile flow runs in a process started for it (cold) and in a warm process
    started before its play was known (warm: each play checked to have started warm)."""
    callspec = getattr(request.node, "callspec", None)
    tier = callspec.params.get("tier") if callspec is not None else None
    if request.param == "warm" and tier == "env_scrub" and _sandbox_helpers.IS_ROOT:
        pytest.skip(_sandbox_helpers.NO_WARM_ENV_SCRUB)
    monkeypatch.setattr(_sandbox_helpers, "START", request.param)
    return str(request.param)


@pytest.fixture(params=ALL_TIERS)
def tier(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ISOLATING_TIERS)
def isolating(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _health_and_a_normal_play(svc: Service) -> None:
    """The service still answers and still runs plays."""
    assert (await svc.client.health())["status"] == "ok"
    play = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 'fine'\n")
    assert play["status"] == "success", play["error_message"]


# -- secrets, descriptors --------------------------------------------------------------------


async def test_service_environment_and_memory_are_out_of_reach(root: Path, tier: str) -> None:
    """The service's env var is not in the flow; /proc/<service>/environ and mem are unreadable."""
    os.environ["HERO_TEST_SERVICE_SECRET"] = "hunter2"
    try:
        async with open_service(root, tier) as svc:
            play = await run_flow(
                svc,
                """
                import os
                from hero_tracing import flow

                @flow
                def main(service_pid: int):
                    seen = {}
                    for pid in {os.getppid(), service_pid, 1}:
                        for what in ("environ", "mem", "cmdline"):
                            path = f"/proc/{pid}/{what}"
                            try:
                                with open(path, "rb") as f:
                                    f.read(64)
                                seen[path] = "read"
                            except OSError as exc:
                                seen[path] = type(exc).__name__
                    return {"env": dict(os.environ), "seen": seen}
                """,
                service_pid=os.getpid(),
            )
    finally:
        del os.environ["HERO_TEST_SERVICE_SECRET"]
    assert play["status"] == "success", play["error_message"]
    out = play["output_data"]
    assert "HERO_TEST_SERVICE_SECRET" not in out["env"]
    assert "hunter2" not in str(out["env"])
    # The service (and, for env_scrub, the host's init: pid 1 of a namespace tier is its own).
    for pid in {os.getpid(), 1} if tier == "env_scrub" else {os.getpid()}:
        for what in ("environ", "mem"):
            assert out["seen"].get(f"/proc/{pid}/{what}", "absent") != "read", out["seen"]


async def test_only_stdio_and_the_span_socket_are_open(root: Path, tier: str) -> None:
    """An inheritable pipe of the service does not leak: the flow holds 0, 1, 2 and its socket."""
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    os.set_inheritable(leak_w, True)
    try:
        async with open_service(root, tier) as svc:
            play = await run_flow(
                svc,
                """
                import os
                from hero_tracing import flow

                @flow
                def main():
                    flow.current_span.tag(connected=True)  # the span socket is open now
                    fds = {}
                    for fd in os.listdir("/proc/self/fd"):
                        try:
                            fds[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
                        except OSError:
                            pass  # the descriptor listdir itself held
                    return fds
                """,
            )
    finally:
        os.close(leak_r)
        os.close(leak_w)
    assert play["status"] == "success", play["error_message"]
    fds = {int(k): v for k, v in play["output_data"].items()}
    extra = {fd: target for fd, target in fds.items() if fd > 2}
    assert len(extra) == 1, fds
    assert next(iter(extra.values())).startswith("socket:"), fds


# -- network, files, processes (namespace tiers) ---------------------------------------------

NETWORK_FLOW = """
    import ctypes, socket, struct
    from hero_tracing import flow

    @flow{decorator}
    def main(port: int):
        # Straight to libc: a hostile flow skips the SDK's friendly guard (an audit hook), so
        # this tests the sandbox's own boundary.
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
        if fd < 0:
            return f"socket failed: errno {{ctypes.get_errno()}}"
        addr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton("127.0.0.1") + bytes(8)
        if libc.connect(fd, addr, len(addr)) != 0:
            return f"connect failed: errno {{ctypes.get_errno()}}"
        libc.send(fd, b"hello", 5, 0)
        return "connected"
"""


async def _listener_and_count(nursery: trio.Nursery) -> tuple[int, list[int]]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted: list[int] = []

    async def handle(stream: trio.SocketStream) -> None:
        accepted.append(1)
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return port, accepted


async def test_loopback_listener_of_the_host_is_unreachable(root: Path, isolating: str, nursery: trio.Nursery) -> None:
    """No network unless the version allows it; with @flow(network=True) the flow has a network
    namespace of its own (pasta), which does not reach the host's loopback either."""
    port, accepted = await _listener_and_count(nursery)
    async with open_service(root, isolating) as svc:
        denied = await run_flow(svc, NETWORK_FLOW.format(decorator=""), port=port)
        assert denied["status"] == "success", denied["error_message"]
        assert denied["output_data"] != "connected"
        assert accepted == []
        if isolating == "bwrap" and shutil.which("pasta"):
            allowed = await run_flow(svc, NETWORK_FLOW.format(decorator="(network=True)"), port=port)
            assert allowed["status"] == "success", allowed["error_message"]
            assert allowed["output_data"] != "connected", allowed["output_data"]
    assert accepted == []


async def test_another_flow_s_secret_and_the_key_file_are_out_of_reach(root: Path, tier: str) -> None:
    """A flow asks the service for a secret its entry does not declare, straight over the span
    socket (not through the SDK), and tries the secrets key file: both fail. (Under env_scrub
    the flow runs as the service's uid and could read the key file: docs/sandbox.md.)"""
    async with open_service(root, tier) as svc:
        await svc.call("secret_set", name="SOMEONE_ELSES", value="another flow's secret value")
        play = await run_flow(
            svc,
            f"""
            import json, os, socket
            from hero_tracing import flow

            @flow(secrets=["MINE"])
            def main():
                s = socket.socket(socket.AF_UNIX)
                s.connect(os.environ["HERO_FLOW_SPAN_SOCK"])
                s.sendall(json.dumps({{"type": "request", "id": 1, "method": "secret_get", "params": {{"name": "SOMEONE_ELSES"}}}}).encode() + b"\\n")
                answer = s.makefile().readline()
                try:
                    key = open({str(svc.config.secrets_key_file)!r}, "rb").read()[:4].hex()
                except OSError as exc:
                    key = type(exc).__name__
                return [answer, key]
            """,
        )
    assert play["status"] == "success", play["error_message"]
    answer, key = play["output_data"]
    assert "another flow's secret value" not in answer
    assert "does not declare this secret" in answer
    if tier != "env_scrub":
        assert key == "FileNotFoundError"


async def test_files_outside_the_workdir_are_out_of_reach(root: Path, isolating: str) -> None:
    """A canary in PATH_ROOT, another play's workdir, /etc, /usr and the RPC socket: all out of reach."""
    canary = root / "canary.txt"
    canary.write_text("canary")
    async with open_service(root, isolating) as svc:
        other = await run_flow(
            svc,
            """
            import os
            from hero_tracing import flow

            @flow
            def main():
                with open("secret.txt", "w") as f:
                    f.write("other play's secret")
                return os.getcwd()
            """,
        )
        assert other["status"] == "success", other["error_message"]
        other_file = svc.config.play_workdir(other["sid"]) / "secret.txt"
        assert other_file.read_text() == "other play's secret"
        play = await run_flow(
            svc,
            """
            import os, socket
            from hero_tracing import flow

            @flow
            def main(paths: list, rpc: str):
                out = {}
                for path in paths:
                    try:
                        with open(path) as f:
                            out["read " + path] = f.read()
                    except OSError as exc:
                        out["read " + path] = type(exc).__name__
                for path in ("/etc/hero-owned", "/usr/hero-owned", paths[0] + ".new"):
                    try:
                        with open(path, "w") as f:
                            f.write("x")
                        out["write " + path] = "written"
                    except OSError as exc:
                        out["write " + path] = type(exc).__name__
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(rpc)
                    out["rpc"] = "connected"
                except OSError as exc:
                    out["rpc"] = type(exc).__name__
                return out
            """,
            paths=[str(canary), str(other_file), "/etc/shadow"],
            rpc=str(svc.config.rpc_socket),
        )
    assert play["status"] == "success", play["error_message"]
    out = play["output_data"]
    leaked = {k: v for k, v in out.items() if v in ("canary", "other play's secret", "written", "connected") or (k == "read /etc/shadow" and ":" in v)}
    assert not leaked, out
    assert canary.read_text() == "canary"
    assert not _exists("/etc/hero-owned")
    assert not _exists(str(canary) + ".new")


async def test_proc_shows_only_the_sandbox(root: Path, isolating: str) -> None:
    """/proc lists the sandbox's own few processes, not the service; proc is nosuid,nodev,noexec."""
    async with open_service(root, isolating) as svc:
        play = await run_flow(
            svc,
            """
            import os
            from hero_tracing import flow

            @flow
            def main():
                pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
                with open("/proc/self/mountinfo") as f:
                    proc = [line for line in f if " /proc " in line]
                return {"pids": pids, "me": os.getpid(), "proc": proc}
            """,
        )
    assert play["status"] == "success", play["error_message"]
    out = play["output_data"]
    assert len(out["pids"]) <= 3, out["pids"]
    assert os.getpid() not in out["pids"] or out["me"] == os.getpid()
    assert out["me"] < 10
    options = out["proc"][0].split()[5].split(",")
    assert {"nosuid", "nodev", "noexec"} <= set(options), out["proc"]


# -- resource bombs --------------------------------------------------------------------------


async def _bomb_beside_a_normal_play(svc: Service, source: str, timeout_ms: int = 30000) -> dict[str, Any]:
    """Run a bomb while a normal play runs beside it; both end, the service carries on."""
    wf = await svc.push(source)
    normal = await svc.push(
        "import time\nfrom hero_tracing import flow\n@flow\ndef main():\n    time.sleep(0.5)\n    return 'fine'\n"
    )
    bomb_sid = await svc.call("play_start", workflow_sid=wf["sid"], timeout_ms=timeout_ms)
    normal_sid = await svc.call("play_start", workflow_sid=normal["sid"])
    with trio.fail_after(40):
        bomb = await svc.call("play_wait", play_sid=bomb_sid)
        beside = await svc.call("play_wait", play_sid=normal_sid)
    assert beside["status"] == "success", beside["error_message"]
    await _health_and_a_normal_play(svc)
    return dict(bomb)


@needs_cgroups
async def test_fork_bomb_ends_the_play_not_the_service(root: Path, tier: str) -> None:
    """A fork bomb hits the play's process limit; the play fails saying so."""
    async with open_service(root, tier) as svc:
        bomb = await _bomb_beside_a_normal_play(
            svc,
            # 200 processes at most, so a run without the limit cannot hurt the host
            "import os, time\nfrom hero_tracing import flow\n@flow\ndef main():\n"
            "    for _ in range(200):\n        if os.fork() == 0:\n            time.sleep(3)\n            os._exit(0)\n",
        )
    assert bomb["status"] == "failed"
    assert "limit of 48 processes" in bomb["error_message"], bomb["error_message"][:500]


SPINNING_FORK_BOMB = """
import os, time
from hero_tracing import flow

@flow
def main():
    # A bomb that never gives up: every refused fork is retried. Its children sleep, so the
    # play stays at its process limit; without detection it spins until it gives up itself.
    # 200 children at most, so a run without the limit cannot hurt the host.
    end = time.monotonic() + 15
    forked = 0
    while time.monotonic() < end:
        if forked >= 200:
            time.sleep(0.05)
            continue
        try:
            if os.fork() == 0:
                time.sleep(20)
                os._exit(0)
            forked += 1
        except OSError:
            time.sleep(0.005)
    return f"spun for 15 s at the limit ({forked} children)"
"""


@needs_cgroups
async def test_fork_bomb_at_its_process_limit_ends_within_seconds(root: Path, tier: str) -> None:
    """A bomb that retries every refused fork ends at once with the limit's reason, not at its
    wall clock (the watchdog reads the play cgroup's ``pids.events``)."""
    async with open_service(root, tier) as svc:
        started = trio.current_time()
        bomb = await _bomb_beside_a_normal_play(svc, SPINNING_FORK_BOMB, timeout_ms=30000)
        took = trio.current_time() - started
    assert bomb["status"] == "failed", bomb.get("output_data")
    assert "limit of 48 processes" in bomb["error_message"], bomb["error_message"][:500]
    assert took < 8, f"the bomb ran {took:.1f} s before it ended"


async def test_memory_bomb_ends_the_play_not_the_service(root: Path, tier: str) -> None:
    """Allocating without end fails the play with a memory reason."""
    async with open_service(root, tier) as svc:
        bomb = await _bomb_beside_a_normal_play(
            svc,
            # 1 GiB at most, so a run without the limit cannot hurt the host
            "from hero_tracing import flow\n@flow\ndef main():\n    chunks = []\n    for _ in range(128):\n"
            "        chunks.append(bytearray(8 << 20))\n        chunks[-1][::4096] = b'x' * 2048\n",
        )
    assert bomb["status"] == "failed"
    assert "memory" in bomb["error_message"].lower(), bomb["error_message"][:500]


async def test_filling_tmp_ends_the_play_and_leaves_nothing_for_the_next(root: Path, tier: str) -> None:
    """Namespace tiers: /tmp and /dev/shm are private and capped (ENOSPC), empty for the next play.
    env_scrub shares the host's /tmp: the file-size limit stops one file (EFBIG)."""
    isolating = tier != "env_scrub"
    marker = f"hero-fill-{os.getpid()}-{root.name}"
    source = f"""
import os
from hero_tracing import flow

@flow
def main():
    chunk = b"x" * (1 << 20)
    if {isolating!r}:
        for i in range(64):
            for place in ("/tmp", "/dev/shm"):
                try:
                    with open(f"{{place}}/{marker}-{{i}}", "wb") as f:
                        f.write(chunk * 4)
                except OSError:
                    if place == "/tmp":
                        raise
        return "filled 64 files without an error"
    with open("/tmp/{marker}", "wb") as f:
        for _ in range(64):
            f.write(chunk)
    return "wrote 64 MiB without an error"
"""
    try:
        async with open_service(root, tier) as svc:
            bomb = await _bomb_beside_a_normal_play(svc, source)
            after = await run_flow(
                svc,
                "import os\nfrom hero_tracing import flow\n@flow\ndef main():\n"
                "    return sorted(os.listdir('/tmp')) + sorted(os.listdir('/dev/shm'))\n",
            )
    finally:
        for name in os.listdir("/tmp"):
            if name.startswith(marker):
                os.unlink(os.path.join("/tmp", name))
    assert bomb["status"] == "failed", bomb["output_data"]
    expected = "No space left on device" if isolating else "File too large"
    assert expected in bomb["error_message"], bomb["error_message"][:500]
    if isolating:
        assert not [name for name in after["output_data"] if marker in name], after["output_data"]


async def test_infinite_loop_ends_at_the_wall_clock_limit(root: Path, tier: str) -> None:
    """``while True: pass`` ends timed_out at the play's limit; the service carries on."""
    async with open_service(root, tier) as svc:
        loop = await _bomb_beside_a_normal_play(
            svc, "from hero_tracing import flow\n@flow\ndef main():\n    while True:\n        pass\n", timeout_ms=1500
        )
    assert loop["status"] == "timed_out"
    assert "1500 ms" in loop["error_message"]


async def test_cpu_time_limit_ends_a_spinning_flow_with_its_reason(root: Path, tier: str) -> None:
    """With cpu_s=1 a spinning flow is stopped by SIGXCPU and the play says it was the CPU limit."""
    async with open_service(root, tier, limits=TEST_LIMITS.replace("cpu_s=30", "cpu_s=1")) as svc:
        play = await run_flow(
            svc, "from hero_tracing import flow\n@flow\ndef main():\n    while True:\n        pass\n", timeout_ms=8000
        )
    assert play["status"] == "failed"
    assert "CPU time limit of 1 s" in play["error_message"], play["error_message"][:500]


# -- no process left behind ------------------------------------------------------------------


async def _wait_tagged(svc: Service, sid: str, tag: str) -> None:
    with trio.fail_after(20):
        while True:
            spans = await svc.call("play_spans", play_sid=sid)
            if spans and spans[0]["tags"].get(tag):
                return
            await trio.sleep(0.02)


async def _wait_gone(marker: str, seconds: float = 5) -> list[int]:
    with trio.move_on_after(seconds):
        while marker_pids(marker):
            await trio.sleep(0.05)
    return marker_pids(marker)


@pytest.fixture
def marker(root: Path) -> Iterator[str]:
    name = f"hl{root.name[-10:]}"[:15]
    yield name
    kill_pids(marker_pids(name))


async def test_cancel_leaves_no_process_behind(root: Path, tier: str, marker: str) -> None:
    """A double-forked setsid grandchild is killed with the play on cancel."""
    if tier == "env_scrub" and not IS_ROOT:
        pytest.skip("env_scrub contains a setsid grandchild only through a cgroup (root)")
    async with open_service(root, tier) as svc:
        wf = await svc.push(GRANDCHILD_FLOW)
        sid = await svc.call("play_start", workflow_sid=wf["sid"], input_data={"marker": marker})
        await _wait_tagged(svc, sid, "forked")
        assert marker_pids(marker), "the probe did not start its grandchild"
        play = await svc.call("play_cancel", play_sid=sid)
        assert play["status"] == "cancelled"
        assert await _wait_gone(marker) == []


async def _start_service_process(root: Path, tier: str) -> tuple[trio.Process, Config]:
    return await start_service_process(
        root, sandbox=f"{tier}:{TEST_LIMITS}", module="tests._weak_service", env=start_environ(_sandbox_helpers.START)
    )


async def test_service_death_leaves_no_process_behind(root: Path, tier: str, marker: str) -> None:
    """kill -9 of the service: the flow and its setsid grandchild are gone within seconds."""
    if tier == "env_scrub" and not IS_ROOT:
        pytest.skip("env_scrub contains a setsid grandchild only through a cgroup (root)")
    proc, config = await _start_service_process(root, tier)
    try:
        async with AsyncClient(config.rpc_socket) as client:
            svc = service_for(config, client, _sandbox_helpers.START)
            wf = await svc.push(GRANDCHILD_FLOW)
            sid = await svc.call("play_start", workflow_sid=wf["sid"], input_data={"marker": marker})
            await _wait_tagged(svc, sid, "forked")
        assert marker_pids(marker)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert await _wait_gone(marker) == []


# -- symlinks the flow plants ----------------------------------------------------------------

SYMLINK_FLOW = """
import os
from hero_tracing import ask_user, flow

@flow
def main(canary: str, outside: str):
    play_dir = os.path.dirname(os.environ["HERO_FLOW_SOURCE_FILE"])
    planted = []
    links = {{"work/to-canary": canary, "work/out": "/etc"}}
    if {env_scrub!r}:  # the flow shares the host's file system: attack the play directory
        links.update({{"input.json": canary, "replay.json": canary, "flow.pid": canary}})
    for name, target in links.items():
        path = os.path.join(play_dir, name) if not name.startswith("work/") else name[5:]
        try:
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(target, path)
            planted.append(name)
        except OSError:
            pass
    if {env_scrub!r} and not os.path.exists(os.path.join(play_dir, "work.old")):  # not on replay
        try:  # a root service's flow (its own uid) may not change the play directory, and a
            # workdir with its quota is a mount point, which cannot be renamed (EBUSY)
            os.rename(os.path.join(play_dir, "work"), os.path.join(play_dir, "work.old"))
            os.symlink(outside, os.path.join(play_dir, "work"))
        except OSError:
            pass
    answer = ask_user.confirm("go on?")
    with open("after-resume.txt", "w") as f:
        f.write("written in the workdir")
    return {{"planted": planted, "answer": answer, "cwd": os.getcwd()}}
"""


async def test_planted_symlinks_never_make_the_service_write_outside(root: Path, tier: str) -> None:
    """Links to a canary and to /etc planted by a flow: the resume writes no file through them."""
    canary = root / "canary.txt"
    canary.write_text("canary")
    outside = root / "outside"
    outside.mkdir()
    async with open_service(root, tier) as svc:
        wf = await svc.push(SYMLINK_FLOW.format(env_scrub=tier == "env_scrub"))
        sid = await svc.call(
            "play_start", workflow_sid=wf["sid"], input_data={"canary": str(canary), "outside": str(outside)}
        )
        play = await svc.call("play_wait", play_sid=sid, timeout_ms=20000)
        assert play["status"] == "awaiting_resume", play["error_message"]
        await svc.call("play_resume", play_sid=sid, resume_id=play["pending_resumes"][0]["id"], payload=True)
        play = await svc.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert canary.read_text() == "canary"
    assert list(outside.iterdir()) == []
    assert not _exists("/etc/after-resume.txt")
    assert play["status"] == "success", play["error_message"]
    workdir = svc.config.play_workdir(sid)
    assert not workdir.is_symlink()
    assert (workdir / "after-resume.txt").read_text() == "written in the workdir"


# -- configuration --------------------------------------------------------------------------


async def test_flow_requiring_a_stronger_tier_fails_with_the_reason(root: Path) -> None:
    """@flow(sandbox="bwrap") on an env_scrub service: the play fails and says how to fix it."""
    async with open_service(root, "env_scrub") as svc:
        play = await run_flow(svc, "from hero_tracing import flow\n@flow(sandbox='bwrap')\ndef main():\n    return 1\n")
    assert play["status"] == "failed"
    assert "requires the sandbox tier 'bwrap' or stronger" in play["error_message"]
    assert "--sandbox bwrap" in play["error_message"]


@pytest.mark.parametrize("tier", tier_params("env_scrub", "bwrap", "nsjail"))
async def test_tier_is_recorded_on_the_play_and_its_root_span(root: Path, tier: str) -> None:
    """Play.sandbox_tier and the root span's ``sandbox`` tag name the tier; a weaker minimum runs."""
    async with open_service(root, tier) as svc:
        play = await run_flow(svc, "from hero_tracing import flow\n@flow(sandbox='env_scrub')\ndef main():\n    return 1\n")
        spans = await svc.call("play_spans", play_sid=play["sid"])
    assert play["status"] == "success", play["error_message"]
    assert play["sandbox_tier"] == tier
    assert spans[0]["tags"]["sandbox"] == tier
