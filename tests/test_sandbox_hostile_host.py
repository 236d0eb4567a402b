"""Hostile flows against the host's disk and the service's uid (RELIABILITY.md promise 6).

The rest of the hostile battery is in ``tests/test_sandbox_hostile.py``; these rows pin what a
flow could do to the machine beyond its play: fill the file system that holds PATH_ROOT and the
LMDB through its workdir, and, under ``env_scrub`` as root, write root-owned files or move
itself out of its play cgroup. ``HERO_SANDBOX_WEAKEN=<name>`` (tests/_sandbox_weaken.py)
removes one protection so the tests that pin it go red.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import trio

from . import _sandbox_helpers, _sandbox_weaken
from ._sandbox_helpers import ALL_TIERS, IS_ROOT, open_service, run_flow

pytestmark = pytest.mark.timeout(60)

needs_root = pytest.mark.skipif(not IS_ROOT, reason="an unprivileged flow uid needs a root service")


@pytest.fixture(autouse=True)
def _weakened(monkeypatch: pytest.MonkeyPatch) -> None:
    _sandbox_weaken.apply(monkeypatch.setattr)


@pytest.fixture
def canary() -> Path:
    """A root-owned 0644 file in a directory everyone may search (0755)."""
    folder = Path(tempfile.mkdtemp(prefix="hl-canary-", dir="/tmp"))
    folder.chmod(0o755)
    path = folder / "root-owned.txt"
    path.write_text("canary")
    path.chmod(0o644)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


UID_FLOW = """
import os
from hero_tracing import flow

@flow
def main(canary: str):
    out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups()}
    try:
        with open(canary, "a") as f:
            f.write("written by the flow")
        out["canary"] = "written"
    except OSError as exc:
        out["canary"] = type(exc).__name__
    # Move this process out of its play cgroup: write our pid into the parent's cgroup.procs.
    before = open("/proc/self/cgroup").read()
    moved = {}
    for line in before.splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers not in ("pids", "memory") or not path.strip("/"):
            continue
        parent = os.path.dirname(path.rstrip("/"))
        procs = f"/sys/fs/cgroup/{controllers}{parent}/cgroup.procs"
        try:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
            moved[controllers] = "moved"
        except OSError as exc:
            moved[controllers] = type(exc).__name__
    out["moved"] = moved
    out["cgroup_unchanged"] = open("/proc/self/cgroup").read() == before
    with open("mine.txt", "w") as f:  # its own workdir stays writable
        f.write("workdir")
    out["input"] = open(os.environ["HERO_FLOW_INPUT_FILE"]).read()
    return out
"""


@needs_root
async def test_env_scrub_flows_run_as_an_unprivileged_uid(root: Path, canary: Path) -> None:
    """env_scrub as root: the flow is not uid 0 and holds no group of the service; it can
    write no root-owned file and cannot move itself out of its play cgroup; its workdir,
    input and span socket still work."""
    async with open_service(root, "env_scrub") as svc:
        play = await run_flow(svc, UID_FLOW, canary=str(canary))
        workdir = svc.config.play_workdir(play["sid"])
    assert play["status"] == "success", play["error_message"]
    out = play["output_data"]
    assert 0 not in (out["uid"], out["euid"], out["gid"]), out
    assert out["groups"] in ([], [out["gid"]]), out
    assert out["canary"] == "PermissionError", out
    assert await trio.Path(canary).read_text() == "canary"
    assert out["moved"], out
    assert set(out["moved"].values()) == {"PermissionError"}, out
    assert out["cgroup_unchanged"], out
    assert await trio.Path(workdir / "mine.txt").read_text() == "workdir"
    assert str(canary) in out["input"]


@needs_root
async def test_env_scrub_flow_sees_no_other_play_nor_the_service_s_files(root: Path) -> None:
    """The unprivileged flow reaches its own play's files, not another play's workdir, the
    LMDB, the secrets key or the RPC socket (all under PATH_ROOT, which it cannot search)."""
    async with open_service(root, "env_scrub") as svc:
        other = await run_flow(
            svc,
            "from hero_tracing import flow\n@flow\ndef main():\n"
            "    open('secret.txt', 'w').write('other play')\n    return 1\n",
        )
        assert other["status"] == "success", other["error_message"]
        await svc.call("secret_set", name="SOME_SECRET", value="a secret value")
        targets = [
            str(svc.config.play_workdir(other["sid"]) / "secret.txt"),
            str(svc.config.secrets_key_file),
            str(svc.config.db_dir / "data.mdb"),
        ]
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
                        with open(path, "rb") as f:
                            f.read(8)
                        out[path] = "read"
                    except OSError as exc:
                        out[path] = type(exc).__name__
                try:
                    socket.socket(socket.AF_UNIX).connect(rpc)
                    out["rpc"] = "connected"
                except OSError as exc:
                    out["rpc"] = type(exc).__name__
                return out
            """,
            paths=targets,
            rpc=str(svc.config.rpc_socket),
        )
    assert play["status"] == "success", play["error_message"]
    out = play["output_data"]
    assert "read" not in out.values(), out
    assert out["rpc"] != "connected", out
    assert await trio.Path(targets[0]).exists()


@needs_root
async def test_a_service_socket_the_flow_uid_cannot_connect_to_fails_the_play_saying_why(root: Path) -> None:
    """A declared service socket only root may connect to: the env_scrub play fails at start,
    naming the socket, its mode and the fix, instead of a PermissionError inside the flow."""
    import socket

    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "private.sock"))
    sock.listen()
    (root / "private.sock").chmod(0o600)
    try:
        async with open_service(root, "env_scrub", service_sockets=f"private={root / 'private.sock'}") as svc:
            play = await run_flow(
                svc, "from hero_tracing import flow\n@flow(services=['private'])\ndef main():\n    return 1\n"
            )
    finally:
        sock.close()
    assert play["status"] == "failed"
    assert "'private'" in play["error_message"], play["error_message"]
    assert "mode 0600" in play["error_message"], play["error_message"]
    assert "chmod 0666" in play["error_message"]


FILL_WORKDIR = """
import os
from hero_tracing import flow

@flow
def main():
    chunk = b"x" * (1 << 20)
    for i in range(64):  # 64 MiB at most, so a run without the quota cannot hurt the host
        with open(f"fill-{i}", "wb") as f:
            f.write(chunk)
    return "wrote 64 MiB into the workdir without an error"
"""


def _disk_bytes(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, n)).st_blocks * 512 for d, _, names in os.walk(path) for n in names)


@needs_root
@pytest.mark.parametrize("start", ["cold", "warm"])
@pytest.mark.parametrize("tier", ALL_TIERS)
async def test_filling_the_workdir_stops_at_its_quota(root: Path, tier: str, start: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flow writing into its workdir without end: its writes fail at the play's quota
    (ENOSPC), the play fails naming --workdir-mb, the host keeps at most the quota's worth of
    its files, and a play beside it and the next play run as usual. Warm: every play in a
    warm process, whose sandbox bound its own workdir before the play was known."""
    if start == "warm" and tier != "bwrap":
        pytest.skip("warm starts with workdir quotas (root) exist under bwrap only")
    monkeypatch.setattr(_sandbox_helpers, "START", start)
    async with open_service(root, tier, workdir_mb=16) as svc:
        wf = await svc.push(FILL_WORKDIR)
        beside = await svc.push("import time\nfrom hero_tracing import flow\n@flow\ndef main():\n"
                                "    open('note.txt', 'w').write('beside')\n    time.sleep(0.5)\n    return 'fine'\n")
        bomb_sid = await svc.call("play_start", workflow_sid=wf["sid"])
        beside_sid = await svc.call("play_start", workflow_sid=beside["sid"])
        bomb = await svc.call("play_wait", play_sid=bomb_sid, timeout_ms=30000)
        normal = await svc.call("play_wait", play_sid=beside_sid, timeout_ms=30000)
        after = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    open('a', 'w').write('a')\n    return 'after'\n")
        workdir = svc.config.play_workdir(bomb_sid)
        kept = await trio.to_thread.run_sync(_disk_bytes, workdir)
        files = sorted(os.listdir(workdir))
    assert bomb["status"] == "failed", bomb["output_data"]
    assert "workdir quota of 16 MiB" in bomb["error_message"], bomb["error_message"][:800]
    assert "--workdir-mb" in bomb["error_message"]
    assert "No space left on device" in bomb["error_message"]
    assert kept <= 16 << 20, kept
    assert "fill-0" in files  # what it wrote within its quota stays readable after the play
    assert normal["status"] == "success", normal["error_message"]
    assert after["status"] == "success", after["error_message"]


NEST_DEEP = """
import os
from hero_tracing import flow

@flow
def main():
    for _ in range(1500):  # far past Python's recursion limit, one level at a time
        os.mkdir("d")
        os.chdir("d")
    open("leaf", "w").write("deep")
    return "nested"
"""


@needs_root
@pytest.mark.parametrize("start", ["cold", "warm"])
async def test_a_workdir_nested_thousands_deep_fails_its_play_and_the_service_lives_and_restarts(
    root: Path, start: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copying the run's workdir out (and removing it) recursed once per level: 1,500 levels
    raised RecursionError, which ended the service and every start after it. Now the copy
    stops at its depth cap, the play fails saying what was not kept, and the service goes on."""
    monkeypatch.setattr(_sandbox_helpers, "START", start)
    async with open_service(root, "bwrap", workdir_mb=64) as svc:
        play = await run_flow(svc, NEST_DEEP)
        after = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 'after'\n")
    assert play["status"] == "failed", play
    assert "nested directories over" in play["error_message"], play["error_message"]
    assert after["status"] == "success", after["error_message"]
    monkeypatch.setattr(_sandbox_helpers, "START", None)
    async with open_service(root, "bwrap", workdir_mb=64) as svc:  # the next start is clean
        again = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 'again'\n")
    assert again["status"] == "success", again["error_message"]
