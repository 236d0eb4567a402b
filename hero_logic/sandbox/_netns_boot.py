"""Wrapper of a ``network=True`` play under bwrap: give its network namespace user-mode networking.

Run by the service as ``python -I -S _netns_boot.py PASTA RUNAS FDS -- bwrap ARGS...`` (stdlib
only, no hero_logic import). It starts bwrap with ``--info-fd`` and ``--block-fd``, so bwrap
builds every namespace, reports the sandbox's pid and then waits before it executes the flow;
attaches **pasta** (Debian ``passt``) to that network namespace with port forwarding off in
both directions and the gateway not mapped to the host (so the host's loopback services stay
out of reach); then lets bwrap go on, waits for it and exits with its status (128+N for a
signal N). SIGTERM and SIGINT are passed on to bwrap. If pasta cannot attach, bwrap is killed
and the run fails with pasta's reason. pasta quits by itself once the namespace is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

PASTA_FLAGS = (
    "--config-net", "--quiet",
    "-t", "none", "-u", "none",  # nothing of the host forwarded into the namespace
    "-T", "none", "-U", "none",  # nor the namespace's loopback ports to the host's
    "--no-map-gw",               # the gateway address is not the host's loopback
)  # fmt: skip


def _child_pid(info_fd: int) -> int:
    data = b""
    while b"}" not in data:
        chunk = os.read(info_fd, 4096)
        if not chunk:
            msg = "bwrap ended before it reported the sandbox's pid"
            raise RuntimeError(msg)
        data += chunk
    pid = json.loads(data[: data.index(b"}") + 1])["child-pid"]
    return int(pid)


def main(argv: list[str]) -> int:
    """Run bwrap with pasta attached; return the exit status to leave with."""
    pasta, runas, fds_text, sep, *bwrap = argv
    if sep != "--" or not bwrap:
        sys.stderr.write("netns wrapper: usage: PASTA RUNAS FDS -- bwrap ARGS...\n")
        return 1
    fds = [int(fd) for fd in fds_text.split(",") if fd]
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe()
    command = [bwrap[0], "--info-fd", str(info_w), "--block-fd", str(block_r), *bwrap[1:]]
    proc = subprocess.Popen(command, pass_fds=(*fds, info_w, block_r), stdin=subprocess.DEVNULL)
    os.close(info_w)
    os.close(block_r)
    for fd in fds:
        os.close(fd)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda sig, _frame: proc.send_signal(sig))
    try:
        pid = _child_pid(info_r)
        flags = [*PASTA_FLAGS, *(["--runas", runas] if runas else []), "--netns", f"/proc/{pid}/ns/net"]
        attached = subprocess.run(
            [pasta, *flags], stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
        )
        if attached.returncode != 0:
            why = attached.stderr.decode(errors="replace").replace("Failed to send", "").strip()
            msg = f"pasta could not give the play's network namespace a network (exit {attached.returncode}): {why[-800:]}"
            raise RuntimeError(msg)
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        proc.kill()
        proc.wait()
        sys.stderr.write(f"network set-up failed: {exc}\n")
        return 1
    os.write(block_w, b"x")
    os.close(block_w)
    code = proc.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
