"""What a flow process does between fork and exec, applied from data (standard library only).

One implementation for both ways a flow is started: the service's own fork (the sandbox tier's
``preexec`` calls :func:`apply_child_setup`) and the executor's spawner, a small process that
loads this file by its path (it imports nothing of ``hero_logic``). The set-up is a plain dict,
the wire form of :class:`~hero_logic.kernel.ChildSetup` (:func:`setup_wire`)::

    {"rlimits": [[RLIMIT_*, value], ...], "cgroup_procs": [path, ...], "pdeathsig": N,
     "drop_caps": bool, "run_as": uid | None, "covers": [dir, ...], "binds": [path, ...],
     "view_cwd": dir}

In order: join the play's cgroups (so everything the flow starts is counted and can be killed),
set the rlimits (the CPU soft limit below the hard one, so SIGXCPU comes first and tells why),
build the flow's view (``covers``: directories hidden under an empty read-only tmpfs in a mount
namespace of the flow's own, ``binds``: the paths bound back under them; see
``sandbox/_flow_user.py``), empty the capability bounding set, become uid and gid ``run_as``
without supplementary groups, ask for ``pdeathsig`` when the parent dies (after the change of
uid, which clears that request) and set no_new_privs. A failure raises: the spawn fails, nothing
runs (fail closed).
"""

from __future__ import annotations

import ctypes
import os
import resource

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["apply_child_setup", "enter_view"]

_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


_LAST_CAP = _last_cap()


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter_view(covers: list[str], binds: list[str], cwd: str) -> None:
    """A mount namespace of the caller's own in which each of ``covers`` is an empty read-only
    tmpfs with ``binds`` bound back in at their own paths; then ``cwd`` (the inherited working
    directory may be covered). Nothing happens without covers."""
    if not covers:
        return
    _check(_libc.unshare(_CLONE_NEWNS), "flow view: unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "flow view: make / private")
    fds = [os.open(b, os.O_PATH | os.O_CLOEXEC) for b in binds]
    kinds = [os.path.isdir(b) for b in binds]
    try:
        for cover in covers:
            flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
            _check(_libc.mount(b"tmpfs", os.fsencode(cover), b"tmpfs", flags, b"mode=0755,size=1m"), f"flow view: {cover}")
        for bind, fd, is_dir in zip(binds, fds, kinds, strict=True):
            os.makedirs(os.path.dirname(bind), mode=0o755, exist_ok=True)
            if is_dir:
                os.mkdir(bind, 0o755)
            else:
                os.close(os.open(bind, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            source = f"/proc/self/fd/{fd}".encode()
            _check(_libc.mount(source, os.fsencode(bind), None, _MS_BIND | _MS_REC, None), f"flow view: {bind}")
        for cover in covers:  # nothing more may be created in the view
            flags = _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
            _check(_libc.mount(b"tmpfs", os.fsencode(cover), b"tmpfs", flags, b"mode=0755"), f"flow view: {cover}")
    finally:
        for fd in fds:
            os.close(fd)
    os.chdir(cwd)


def apply_child_setup(setup: Mapping[str, Any]) -> None:
    """Apply ``setup`` (the wire form, see the module doc) in a forked child, in order."""
    for path in setup.get("cgroup_procs", ()):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    cpu = resource.RLIMIT_CPU
    for which, value in setup.get("rlimits", ()):
        _soft, hard = resource.getrlimit(which)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        if which == cpu and hard == resource.RLIM_INFINITY:
            resource.setrlimit(which, (capped, capped + 2))
        else:
            resource.setrlimit(which, (capped, capped))
    enter_view(list(setup.get("covers", ())), list(setup.get("binds", ())), str(setup.get("view_cwd", "/")))
    drop = bool(setup.get("drop_caps"))
    if drop:
        for cap in range(_LAST_CAP + 1):
            _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
        _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    run_as = setup.get("run_as")
    if run_as is not None:
        os.setgroups([])
        os.setresgid(run_as, run_as, run_as)
        os.setresuid(run_as, run_as, run_as)
    pdeathsig = int(setup.get("pdeathsig", 0))
    if pdeathsig and _libc.prctl(_PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if (drop or run_as is not None) and _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
