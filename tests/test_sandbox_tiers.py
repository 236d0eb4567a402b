"""The sandbox tiers one by one: conformance kit, command lines and configs, fail-closed start-up."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import attrs
import pytest

from hero_logic.kernel import Config, SandboxUnavailable, select_sandbox_tier
from hero_logic.kernel._errors import ConfigError
from hero_logic.sandbox import (
    BwrapTier,
    EnvScrubTier,
    NsjailTier,
    SandboxLimits,
    _seccomp,
    nsjail_config,
)
from hero_logic.sandbox._bwrap import bwrap_argv
from hero_logic.sandbox._nsjail import kafel_policy
from hero_logic.sdk import read_flow_signature
from hero_logic.server import serve
from hero_logic.testing import check_sandbox_tier

from . import _sandbox_weaken
from ._sandbox_helpers import HAVE, IS_ROOT, tier_params
from .conftest import make_config

if TYPE_CHECKING:
    from pathlib import Path

TIER_CLASSES = {"env_scrub": EnvScrubTier, "bwrap": BwrapTier, "nsjail": NsjailTier}


@pytest.fixture(autouse=True)
def _weakened(monkeypatch: pytest.MonkeyPatch) -> None:
    _sandbox_weaken.apply(monkeypatch.setattr)


@pytest.mark.parametrize("tier", tier_params("env_scrub", "bwrap", "nsjail"))
async def test_conformance_kit(tier: str, root: Path) -> None:
    """Every available tier passes the kit (a setsid grandchild contained where cgroups or a
    PID namespace make that possible)."""
    contains = tier != "env_scrub" or IS_ROOT
    await check_sandbox_tier(TIER_CLASSES[tier].from_config, root, contains_descendants=contains)


# -- limits and the --sandbox setting --------------------------------------------------------


def test_sandbox_options_parse_into_limits() -> None:
    assert SandboxLimits.parse("memory_mb=64, pids=8") == SandboxLimits(memory_mb=64, pids=8)
    assert SandboxLimits.parse("") == SandboxLimits()
    for bad in ("memory=64", "pids=-1", "pids=many", "pids"):
        with pytest.raises(ConfigError, match="sandbox option"):
            SandboxLimits.parse(bad)


# -- the bwrap command line ------------------------------------------------------------------


def _argv(network: bool) -> list[str]:
    return bwrap_argv(
        "/usr/bin/bwrap",
        python=sys.executable,
        limits=SandboxLimits(tmp_mb=8),
        network=network,
        binds=["--bind-fd", "7", "/hero/work"],
        seccomp_fd=9,
        command=["/usr/bin/python3", "-I", "-S", "/hero/sdk/hero_boot.py"],
    )


def test_bwrap_command_line_unshares_everything_and_binds_little() -> None:
    argv = _argv(network=False)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--seccomp") + 1] == "9"
    assert "--share-net" not in argv
    assert argv[argv.index("--remount-ro") + 1] == "/"
    assert argv[argv.index("/tmp") - 2] == str(8 * 1024 * 1024)  # --size N --tmpfs /tmp
    writable = [argv[i + 2] for i, a in enumerate(argv) if a in ("--bind", "--bind-fd")]
    assert writable == ["/hero/work"]
    assert argv[argv.index("--") + 1 :] == ["/usr/bin/python3", "-I", "-S", "/hero/sdk/hero_boot.py"]
    assert "--share-net" in _argv(network=True)


def test_bwrap_binary_missing_or_broken_is_unavailable(tmp_path: Path) -> None:
    config = Config.load(environ={"PATH_ROOT": str(tmp_path)})
    missing = attrs.evolve(BwrapTier.from_config(config), binary=str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        missing.check()
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    broken = attrs.evolve(BwrapTier.from_config(config), binary=str(fake))
    with pytest.raises(SandboxUnavailable, match="uid map: Permission denied"):
        broken.check()


# -- nsjail: config generation without the binary --------------------------------------------


def _nsjail_text(network: bool) -> str:
    return nsjail_config(
        name="hero_logic play p1",
        python="/usr/bin/python3.11",
        limits=SandboxLimits(memory_mb=256, tmp_mb=16, cpu_s=60, nofile=64, fsize_mb=32),
        network=network,
        env={"HERO_FLOW_PLAY_SID": "p1", "HOME": "/hero/work"},
        files=[("/state/plays/p1/flow.py", "/hero/play/flow.py")],
        sdk_dir="/opt/sdk",
        workdir="/state/plays/p1/work",
        memory_cgroup=True,
    )


def test_nsjail_config_expresses_the_same_policy() -> None:
    text = _nsjail_text(network=False)
    lines = text.splitlines()
    assert "clone_newnet: true" in lines
    for ns in ("user", "ns", "pid", "ipc", "uts", "cgroup"):
        assert f"clone_new{ns}: true" in lines
    assert "keep_env: false" in lines
    assert 'envar: "HERO_FLOW_PLAY_SID=p1"' in lines
    assert "rlimit_cpu: 60" in lines
    assert "rlimit_fsize: 32" in lines
    assert "rlimit_nofile: 64" in lines
    assert 'uidmap { inside_id: "65534" outside_id: "" count: 1 }' in lines
    rw = [line for line in lines if "rw: true" in line and "is_bind: true" in line]
    assert [line for line in rw if "/dev/" not in line] == [
        'mount { src: "/state/plays/p1/work" dst: "/hero/work" is_bind: true rw: true }'
    ]
    assert 'mount { src: "/state/plays/p1/flow.py" dst: "/hero/play/flow.py" is_bind: true rw: false }' in lines
    assert any('dst: "/tmp" fstype: "tmpfs"' in line and "size=16777216" in line for line in lines)
    assert text.count("{") == text.count("}")
    assert "clone_newnet: false" in _nsjail_text(network=True).splitlines()


def test_kafel_policy_denies_the_seccomp_list() -> None:
    policy = kafel_policy(allow_network=False)
    for name in ("ptrace", "mount", "unshare", "bpf", "keyctl"):
        assert name in policy
    assert "domain != 1 }" in policy
    assert "(request & 0xffffffff) == 0x5412" in policy
    assert "domain != 2" in kafel_policy(allow_network=True)
    assert policy.endswith("DEFAULT ALLOW")


def test_nsjail_missing_or_broken_is_unavailable(tmp_path: Path) -> None:
    config = Config.load(environ={"PATH_ROOT": str(tmp_path)})
    missing = attrs.evolve(NsjailTier.from_config(config), binary=str(tmp_path / "no-nsjail"))
    with pytest.raises(SandboxUnavailable, match="Debian 12 does not package it"):
        missing.check()
    fake = tmp_path / "nsjail"
    fake.write_text("#!/bin/sh\necho 'nsjail: clone(CLONE_NEWUSER) failed' >&2\nexit 255\n")
    fake.chmod(0o755)
    broken = attrs.evolve(NsjailTier.from_config(config), binary=str(fake))
    with pytest.raises(SandboxUnavailable, match=r"CLONE_NEWUSER\) failed"):
        broken.check()


# -- fail closed at start-up -----------------------------------------------------------------


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only a broken ``bwrap`` (and no nsjail)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(
    ("spec", "path", "match"),
    [
        ("bwrap", "empty", "not installed or not on PATH"),
        ("bwrap", "fake", "cannot build a sandbox here"),
        ("nsjail", "empty", "not installed or not on PATH"),
    ],
)
async def test_a_configured_tier_that_cannot_work_refuses_to_start(
    root: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, spec: str, path: str, match: str
) -> None:
    """The service does not start (never downgraded): missing binary, broken binary."""
    monkeypatch.setenv("PATH", str(fake_bin) if path == "fake" else str(fake_bin.parent / "empty"))
    with pytest.raises(SandboxUnavailable, match=match):
        await serve(make_config(root, sandbox=spec))


@pytest.mark.skipif(not HAVE["bwrap"], reason="bwrap is not installed here")
async def test_bwrap_refuses_to_start_when_the_seccomp_filter_cannot_be_built(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import fails like a missing binding
    with pytest.raises(SandboxUnavailable, match="seccomp binding cannot be loaded"):
        await serve(make_config(root, sandbox="bwrap"))


def test_auto_picks_the_strongest_available_tier_and_logs_it(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hero_logic.kernel")
    tier = select_sandbox_tier(make_config(root, sandbox="auto"))
    try:
        expected = "nsjail" if HAVE["nsjail"] else "bwrap" if HAVE["bwrap"] else "env_scrub"
        assert tier.name == expected
        assert f"sandbox auto: using {expected}" in caplog.text
    finally:
        tier.close()


# -- the flow's declaration ------------------------------------------------------------------


def test_flow_decorator_declares_minimum_tier_and_network() -> None:
    sig = read_flow_signature("from hero_tracing import flow\n@flow(sandbox='bwrap', network=True)\ndef main():\n    pass\n")
    assert (sig.sandbox, sig.network) == ("bwrap", True)
    assert read_flow_signature("from hero_tracing import flow\n@flow\ndef main():\n    pass\n").network is False
    from hero_logic.sdk import FlowSourceError

    with pytest.raises(FlowSourceError, match="network must be True or False"):
        read_flow_signature("from hero_tracing import flow\n@flow(network='yes')\ndef main():\n    pass\n")


# -- seccomp ---------------------------------------------------------------------------------

SECCOMP_PROBE = r"""
import ctypes, errno, fcntl, os, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def call(name, *args):
    result = getattr(libc, name)(*args)
    out[name] = "allowed" if result != -1 else errno.errorcode[ctypes.get_errno()]
call("ptrace", 16, 1, 0, 0)  # PTRACE_ATTACH to pid 1
call("unshare", 0x10000000)
call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
libc.syscall.restype = ctypes.c_long
for name, nr, args in (("bpf", 321, (0, 0, 0)), ("keyctl", 250, (0, 0)), ("io_uring_setup", 425, (1, 0))):
    r = libc.syscall(nr, *args)
    out[name] = "allowed" if r != -1 else errno.errorcode[ctypes.get_errno()]
for fam in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"):
    try:
        socket.socket(getattr(socket, fam), socket.SOCK_DGRAM).close()
        out[fam] = "allowed"
    except OSError as exc:
        out[fam] = errno.errorcode[exc.errno]
socket.socketpair(socket.AF_UNIX)
master, slave = os.openpty()
r = libc.ioctl(slave, ctypes.c_ulong(0x5412 | (1 << 32)), ctypes.c_char_p(b"x"))
out["TIOCSTI|1<<32"] = "allowed" if r != -1 else errno.errorcode[ctypes.get_errno()]
print(out)
"""


@pytest.mark.skipif(not HAVE["bwrap"], reason="bwrap is not installed here")
async def test_seccomp_filter_denies_what_flows_never_need(root: Path) -> None:
    """ptrace, unshare, mount, bpf, keyctl, io_uring, INET/NETLINK/PACKET sockets, TIOCSTI
    with high bits: denied inside the bwrap tier; AF_UNIX and plain Python keep working."""
    from ._sandbox_helpers import open_service, run_flow

    async with open_service(root, "bwrap") as svc:
        play = await run_flow(
            svc,
            "import subprocess, sys\nfrom hero_tracing import flow\n@flow\ndef main(code: str):\n"
            "    return subprocess.run([sys.executable, '-I', '-S', '-c', code], capture_output=True, text=True).stdout\n",
            code=SECCOMP_PROBE,
        )
    assert play["status"] == "success", play["error_message"]
    import ast

    out = ast.literal_eval(play["output_data"])
    allowed = {name for name, verdict in out.items() if verdict == "allowed"}
    assert not allowed, out
    assert out["AF_INET"] == "EAFNOSUPPORT"
    assert out["unshare"] == "EPERM"


def test_seccomp_golden_list() -> None:
    for name in ("ptrace", "mount", "unshare", "setns", "bpf", "keyctl", "io_uring_setup", "perf_event_open"):
        assert name in _seccomp.DENIED_SYSCALLS
    assert len(_seccomp.build_filter(allow_network=False)) > 0


# -- the parent-death signal follows the forking thread --------------------------------------


def test_parent_death_signal_follows_the_thread_that_forked() -> None:
    """Why flows are forked from the Trio thread: a child whose PR_SET_PDEATHSIG was set is
    killed when the *thread* that forked it exits (Trio's worker threads exit after 10 s)."""
    from hero_logic.sandbox._policy import child_setup

    procs: list[subprocess.Popen[bytes]] = []

    def spawn() -> None:
        procs.append(subprocess.Popen(["sleep", "30"], preexec_fn=child_setup({})))

    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
    try:
        assert procs[0].wait(timeout=5) == -9
    finally:
        if procs[0].poll() is None:
            procs[0].kill()
            procs[0].wait()


async def test_the_executor_forks_flows_from_the_trio_thread(tmp_path: Path) -> None:
    from hero_logic.kernel import Launch
    from hero_logic.plugins.executor import ProcessExecutor

    out = tmp_path / "ident"

    def record() -> None:  # runs in the child: the forking thread's identity carries over
        out.write_text(str(threading.get_ident()))

    launch = Launch(
        argv=("/bin/true",), env={}, cwd=tmp_path, play_sid="p", play_dir=tmp_path,
        workdir=tmp_path, span_socket=tmp_path / "s", sdk_dir=tmp_path, preexec=record,
    )
    outcome = await ProcessExecutor().run(launch, timeout_s=10, kill_grace_s=1)
    assert outcome.exit_code == 0
    assert out.read_text() == str(threading.get_ident())


@pytest.mark.skipif(not HAVE["bwrap"], reason="bwrap is not installed here")
async def test_a_play_outlives_the_idle_timeout_of_trio_worker_threads(root: Path) -> None:
    """A bwrap play (--die-with-parent) still runs after Trio's idle worker threads exit."""
    from trio._core import _thread_cache

    from ._sandbox_helpers import open_service, run_flow

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_thread_cache, "IDLE_TIMEOUT", 0.05)  # worker threads exit almost at once
        async with open_service(root, "bwrap") as svc:
            started = time.monotonic()
            play = await run_flow(svc, "import time\nfrom hero_tracing import flow\n@flow\ndef main():\n    time.sleep(1.5)\n    return 'slept'\n")
    assert play["status"] == "success", play["error_message"]
    assert time.monotonic() - started >= 1.5

