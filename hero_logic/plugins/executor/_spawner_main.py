"""The spawner: a small process that forks and execs flow processes for the service.

Run as ``python -I -S _spawner_main.py SERVICE_PID`` with a ``SOCK_SEQPACKET`` socket on its
standard input, by :class:`~hero_logic.plugins.executor._spawner.Spawner`. Forking the service
itself copies the page tables of ~50 MB and, because a flow needs set-up between fork and exec
(its cgroups, rlimits, parent-death signal, capabilities), it cannot use ``vfork``: the event
loop stalled 5-20 ms per play. This process carries a few MB, so its fork is cheap, and the
set-up (a cgroup attach may wait for an RCU grace period) blocks only the new child.

Protocol (one JSON object per datagram; descriptors ride along as ``SCM_RIGHTS``):

* request ``{"id", "argv", "env", "cwd", "targets", "setup", "close_fds"}`` with descriptors
  ``[stdin, stdout, stderr, *pass_fds]``; ``targets`` are the numbers the child gets them at
  (``[0, 1, 2, *pass_fds]``), ``setup`` is ``{"rlimits": [[which, value], ...], "cgroup_procs":
  [...], "pdeathsig": N, "drop_caps": bool, "run_as", "covers", "binds", "view_cwd"}``, applied
  by ``hero_logic/kernel/_child_setup.py`` (loaded by its path: the service's own fork runs the
  same code);
* answer ``{"id", "pid"}`` once the child has called ``execve``, or ``{"id", "error"}`` if its
  set-up or its ``execve`` failed (nothing is left running then);
* later ``{"id", "exit": returncode}`` once the child has ended (negative: killed by a signal).

The spawner makes itself non-dumpable and dies with the service (``PR_SET_PDEATHSIG``); every
child dies with the spawner the same way, so a ``kill -9`` of the service ends them all. It
exits once the service closes the socket. Standard library only, nothing imported lazily.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import json
import os
import select
import signal
import socket
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_REQUEST = 256 * 1024  # a SEQPACKET datagram is bounded by the socket buffer anyway
MAX_FDS = 253  # SCM_MAX_FD
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4

_libc = ctypes.CDLL(None, use_errno=True)


def _load_child_setup() -> Any:
    """``hero_logic/kernel/_child_setup.py``, loaded by its path (standard library only)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "kernel", "_child_setup.py")
    spec = importlib.util.spec_from_file_location("hero_child_setup", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CHILD_SETUP = _load_child_setup()
_CONTROL_FD = 3
"""Where the spawner keeps its socket (its standard input becomes /dev/null)."""


def _place_fds(received: list[int], targets: list[int], keep_extra: int, close_fds: bool) -> int:
    """Put ``received[i]`` at ``targets[i]``, close everything else but ``keep_extra`` (moved
    out of the way; its new number is returned)."""
    floor = max([2, *targets]) + 1
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in received]
    extra = fcntl.fcntl(keep_extra, fcntl.F_DUPFD_CLOEXEC, floor)
    for fd, target in zip(high, targets, strict=True):
        os.dup2(fd, target, inheritable=True)
    if close_fds:
        keep = sorted({*targets, extra})
        start = 0
        for fd in keep:
            if fd > start:
                os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, 1 << 20)
    else:  # a deliberately weakened spawner (tests): its own socket leaks into the child
        os.set_inheritable(_CONTROL_FD, True)
    return extra


def _child(request: dict[str, Any], received: list[int], err_w: int, spawner: int) -> None:
    """In the forked child: never returns."""
    try:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # as subprocess's restore_signals
            signal.signal(sig, signal.SIG_DFL)
        err_w = _place_fds(received, request["targets"], err_w, request.get("close_fds", True))
        os.setsid()
        _CHILD_SETUP.apply_child_setup(request.get("setup") or {})
        if request.get("setup", {}).get("pdeathsig") and os.getppid() != spawner:
            os._exit(128 + 9)  # the spawner died before the parent-death signal was armed
        os.chdir(request["cwd"])
        argv = request["argv"]
        os.execvpe(argv[0], argv, request["env"])
    except BaseException as exc:
        try:
            os.write(err_w, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:4000])
        finally:
            os._exit(255)


def _spawn(request: dict[str, Any], received: list[int]) -> dict[str, Any]:
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    spawner = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(err_r)
        os.close(err_w)
        return {"id": request["id"], "error": f"fork failed: {exc}"}
    if pid == 0:
        os.close(err_r)
        _child(request, received, err_w, spawner)
    os.close(err_w)
    chunks = []
    while chunk := os.read(err_r, 4096):
        chunks.append(chunk)
    os.close(err_r)
    if chunks:
        os.waitpid(pid, 0)
        return {"id": request["id"], "error": b"".join(chunks).decode(errors="replace")}
    return {"id": request["id"], "pid": pid}


def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    fds: list[int] = []
    data, ancdata, _flags, _addr = sock.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(MAX_FDS * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4))
    return data, fds


def main() -> None:
    service = int(sys.argv[1])
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0 or os.getppid() != service:
        sys.exit(1)
    os.dup2(0, _CONTROL_FD, inheritable=False)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    sock = socket.socket(fileno=_CONTROL_FD)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    children: dict[int, tuple[int, int]] = {}  # pidfd -> (request id, pid)
    while True:
        for fd, _mask in poller.poll():
            if fd == sock.fileno():
                data, fds = _receive(sock)
                if not data:
                    return  # the service closed the socket (or died): children die with us
                try:
                    request = json.loads(data)
                    answer = _spawn(request, fds)
                finally:
                    for received in fds:
                        os.close(received)
                if "pid" in answer:
                    pidfd = os.pidfd_open(answer["pid"])
                    children[pidfd] = (request["id"], answer["pid"])
                    poller.register(pidfd, select.POLLIN)
                sock.send(json.dumps(answer).encode())
            else:
                request_id, pid = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                sock.send(json.dumps({"id": request_id, "exit": os.waitstatus_to_exitcode(status)}).encode())


if __name__ == "__main__":
    main()
