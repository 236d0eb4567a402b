"""The sandbox tier conformance kit: ``await check_sandbox_tier(make_tier, tmp_dir)``.

Any tier, built-in or third-party, runs the same battery through the real executor: the tier
is prepared, a launch shaped like a play's (a play directory with its files and span socket,
a workdir, an SDK directory) is wrapped, and a probe script runs inside. The kit checks that:

* the tier has the slot's shape (``name``, ``strength``, ``check``, ``prepare``, ``wrap``,
  ``close``) and ``check``/``prepare`` pass on this machine;
* none of the service's environment reaches the probe (a secret in the launch's ``env``
  that does not start with ``HERO_FLOW_``, another in the service's ``os.environ``), nor any descriptor beyond stdin, stdout
  and stderr (the kit holds an inheritable pipe while spawning);
* the probe reaches the span socket, reads its staged input, writes its workdir, and starts
  in the workdir;
* a ``setsid`` grandchild it leaves behind is gone once the run is over (only where the tier
  claims to contain descendants: ``contains_descendants=True``);
* a wrapped launch's scope reports the exit status of the process inside.

``make_tier(config)`` returns an unprepared tier; the kit prepares and closes it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.kernel import Config, Launch, SandboxTier
from hero_logic.plugins.executor import ProcessExecutor

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["SANDBOX_CHECKS", "check_sandbox_tier"]

SANDBOX_CHECKS = (
    "shape",
    "prepare",
    "environment",
    "descriptors",
    "span socket",
    "workdir",
    "descendants",
    "exit status",
)
"""What :func:`check_sandbox_tier` verifies, in order."""

_PROBE = r"""
import json, os, socket, sys, time
report = {
    "env": dict(os.environ),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "cwd": os.getcwd(),
    "input": open(os.environ["HERO_FLOW_INPUT_FILE"]).read(),
}
with open("written-by-probe.txt", "w") as f:
    f.write("probe")
report["fds"].remove(max(report["fds"]))  # the descriptor listdir itself held
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        with open("grandchild.pid", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
    os._exit(0)
os.waitpid(pid, 0)
for _ in range(200):
    if os.path.exists("grandchild.pid"):
        break
    time.sleep(0.01)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(os.environ["HERO_FLOW_SPAN_SOCK"])
sock.sendall(json.dumps(report).encode() + b"\n")
sock.close()
sys.exit(int(os.environ.get("HERO_FLOW_KIT_EXIT", "0")))
"""

_SECRET = "HERO_KIT_SERVICE_SECRET"
_OWN_SECRET = "HERO_KIT_OWN_SECRET"


class SandboxConformanceError(AssertionError):
    """A tier failed one of the kit's checks."""


def _fail(check: str, message: str) -> None:
    msg = f"sandbox tier conformance, {check}: {message}"
    raise SandboxConformanceError(msg)


def _stage(base: Path, *, exit_code: int = 0) -> Launch:
    play_dir = base / "play"
    workdir = play_dir / "work"
    sdk_dir = base / "sdk"
    for d in (play_dir, workdir):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Like an installed SDK, readable by every user: a root service's env_scrub flows run as
    # an unprivileged uid.
    sdk_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    (sdk_dir / "probe.py").write_text(_PROBE)
    (sdk_dir / "probe.py").chmod(0o644)
    (play_dir / "flow.py").write_text("# the probe ignores it\n")
    (play_dir / "input.json").write_text('{"hello": "kit"}')
    python = os.path.realpath(sys.executable)
    env = {
        "HERO_FLOW_SPAN_SOCK": str(play_dir / "span.sock"),
        "HERO_FLOW_SOURCE_FILE": str(play_dir / "flow.py"),
        "HERO_FLOW_INPUT_FILE": str(play_dir / "input.json"),
        "HERO_FLOW_PLAY_SID": "play_kit",
        "HERO_FLOW_KIT_EXIT": str(exit_code),
        _SECRET: "s3cret-value",
    }
    return Launch(
        argv=(python, "-I", "-S", str(sdk_dir / "probe.py")),
        env=env,
        cwd=workdir,
        play_sid=f"play_kit_{os.getpid()}_{time.monotonic_ns()}",
        play_dir=play_dir,
        workdir=workdir,
        span_socket=play_dir / "span.sock",
        sdk_dir=sdk_dir,
    )


async def _serve_once(listener: trio.SocketListener, into: list[bytes], done: trio.Event) -> None:
    stream = await listener.accept()
    async with stream:
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    into.append(data)
    done.set()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


async def _run_probe(tier: SandboxTier, base: Path, *, exit_code: int = 0) -> tuple[Any, dict[str, Any]]:
    launch = _stage(base, exit_code=exit_code)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(str(launch.span_socket))
    os.chmod(launch.span_socket, 0o600)
    sock.listen(4)
    listener = trio.SocketListener(sock)
    os.environ[_OWN_SECRET] = "own-s3cret"
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    os.set_inheritable(leak_w, True)
    received: list[bytes] = []
    done = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_once, listener, received, done)
            outcome = await ProcessExecutor().run(tier.wrap(launch), timeout_s=60, kill_grace_s=1)
            with trio.move_on_after(5):
                await done.wait()
            nursery.cancel_scope.cancel()
    finally:
        os.environ.pop(_OWN_SECRET, None)
        os.close(leak_r)
        os.close(leak_w)
        await listener.aclose()
        launch.span_socket.unlink(missing_ok=True)
    if not received:
        _fail("span socket", f"the probe sent nothing over its span socket; stderr: {outcome.stderr_tail[-2000:]}")
    report: dict[str, Any] = json.loads(received[0])
    return outcome, report


async def check_sandbox_tier(
    make_tier: Callable[[Config], SandboxTier],
    tmp_dir: Path,
    *,
    contains_descendants: bool = True,
) -> None:
    """Run the conformance battery against the tier ``make_tier`` builds (see the module doc).

    ``tmp_dir`` must be a short, private directory (AF_UNIX paths stay under 107 bytes).
    Raises :class:`SandboxConformanceError` naming the first check that fails.
    """
    config = Config.load(environ={"PATH_ROOT": str(tmp_dir / "root")})
    tier = make_tier(config)
    for attr in ("name", "strength", "check", "prepare", "wrap", "close"):
        if not hasattr(tier, attr):
            _fail("shape", f"{tier!r} has no {attr!r}")
    if not isinstance(tier, SandboxTier) or not isinstance(tier.strength, int) or not tier.name:
        _fail("shape", f"{tier!r} does not have the SandboxTier protocol's shape")
    tier.check()
    tier.prepare()
    try:
        outcome, report = await _run_probe(tier, tmp_dir / "a")
        if outcome.exit_code != 0:
            _fail("exit status", f"the probe exited {outcome.exit_code}: {outcome.stderr_tail[-2000:]}")
        if _SECRET in report["env"] or "s3cret-value" in json.dumps(report["env"]):
            _fail("environment", f"the service's variable {_SECRET} reached the flow")
        if _OWN_SECRET in report["env"]:
            _fail("environment", f"the service's own environment ({_OWN_SECRET}) reached the flow")
        if report["fds"] != [0, 1, 2]:
            _fail("descriptors", f"the flow started with descriptors {report['fds']} open; only 0, 1 and 2 may be (it opens its span socket itself)")
        if json.loads(report["input"]) != {"hello": "kit"}:
            _fail("workdir", f"the flow read {report['input']!r} as its input")
        workdir = tmp_dir / "a" / "play" / "work"
        if (workdir / "written-by-probe.txt").read_text() != "probe":
            _fail("workdir", "what the flow wrote in its workdir is not in the play's workdir")
        if os.path.basename(report["cwd"]) != "work":
            _fail("workdir", f"the flow started in {report['cwd']!r}, not its workdir")
        grandchild = int((workdir / "grandchild.pid").read_text() or 0)
        if contains_descendants and grandchild:
            # Inside a PID namespace the recorded pid is not the host's: look for any
            # survivor holding the workdir open instead.
            survivors = [pid for pid in _pids_with_cwd(workdir)]
            if survivors:
                for pid in survivors:
                    os.kill(pid, signal.SIGKILL)
                _fail("descendants", f"a setsid grandchild of the flow outlived the run (pids {survivors})")
        outcome, _report = await _run_probe(tier, tmp_dir / "b", exit_code=3)
        if outcome.exit_code != 3:
            _fail("exit status", f"a probe exiting 3 was reported as {outcome.exit_code}")
    finally:
        for pid in _pids_with_cwd(tmp_dir):
            os.kill(pid, signal.SIGKILL)
        tier.close()


def _pids_with_cwd(under: Path) -> list[int]:
    """Live processes whose working directory is inside ``under`` (the kit's leftovers)."""
    found = []
    prefix = str(under)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if (cwd == prefix or cwd.startswith(prefix + "/")) and _alive(int(entry)):
            found.append(int(entry))
    return found

