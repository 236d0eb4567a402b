"""An unprivileged uid for ``env_scrub`` flows of a root service, and the view it needs.

A flow that is uid 0 without capabilities still owns every root-owned file: it could rewrite
them, write its pid into the root-owned ``cgroup.procs`` of another cgroup (leaving its play's
limits and its end-of-run kill) and write to root's terminals. So when the service runs as
root, ``env_scrub`` runs each play's flow as a uid of its own:

* **uid** ``FLOW_UID_BASE + h`` (and the same gid, no supplementary group), where ``h`` is
  taken from a hash of the play's sid: stable over the play's runs (the files it left in its
  workdir stay its own), different between plays (one play's flow cannot signal another's
  nor read its ``/proc`` files); two plays share a uid with probability about 1 in 16 million.
* **chown** of what is the play's: its staged files (``flow.py``, ``input.json``,
  ``replay.json``), its span socket and its workdir (the directory; what the flow wrote there
  before is its own already). The play directory stays root's, mode 0711: the flow may reach
  its files, not list or change the directory.
* **a view** of what it must reach: the interpreter's prefix, the SDK, the play's directory,
  the version's packages and the declared service sockets. Where one of them sits under a
  directory other users may not search (``/root`` holding a pyenv interpreter, a PATH_ROOT of
  mode 0700), the flow gets a mount namespace of its own in which that directory is an empty
  read-only tmpfs with only those paths bound back in, at their own paths. The rest of the
  host's file system is shared as before (``env_scrub`` is no isolation boundary); the
  namespace goes away with the flow's last process.

The child set-up (:func:`~._policy.child_setup`) joins the play's cgroups and sets rlimits as
root, enters the view, empties the capability bounding set, then drops to the uid, and only
then asks for the parent-death signal (a change of uid clears it).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hero_logic.kernel import Launch

__all__ = ["FLOW_UID_BASE", "FLOW_UID_SPAN", "FlowUser", "covers_for", "flow_uid"]

FLOW_UID_BASE = 1_900_000_000
"""The first uid of ``env_scrub`` flows (above the usual ranges of users and of subordinate
uids for containers, below 2**31 for tools that read uids as signed)."""
FLOW_UID_SPAN = 1 << 24

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def flow_uid(play_sid: str) -> int:
    """The uid (and gid) the flows of ``play_sid`` run as under ``env_scrub`` as root."""
    digest = hashlib.sha256(play_sid.encode()).digest()
    return FLOW_UID_BASE + int.from_bytes(digest[:4], "big") % FLOW_UID_SPAN


def _searchable_by_others(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IXOTH)
    except OSError:
        return False


def covers_for(paths: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The directories to cover with an empty tmpfs (the topmost ancestor of a needed path that
    others may not search) and the needed paths to bind back under them."""
    wanted = sorted(set(paths))
    covers: set[str] = set()
    for path in wanted:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):  # ancestors only: "/" itself and the path are never covered
            ancestor = "/" + "/".join(parts[:i])
            if not _searchable_by_others(ancestor):
                covers.add(ancestor)  # the topmost one: what is below it is bound back in
                break
    under = [p for p in wanted if any(p.startswith(c + "/") for c in covers)]
    binds = [p for p in under if not any(p.startswith(o + "/") for o in under)]
    return tuple(sorted(covers)), tuple(binds)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@attrs.frozen
class FlowUser:
    """Who one run's flow is (uid, gid) and the view it gets (covers and binds)."""

    uid: int
    covers: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()
    workdir: str = ""

    @classmethod
    def for_launch(cls, launch: Launch, python: str) -> FlowUser:
        """The flow user of ``launch``'s play and the view its paths need."""
        needed = [_prefix(python), str(launch.sdk_dir), str(launch.play_dir)]
        if launch.packages_dir is not None:
            needed.append(str(launch.packages_dir))
        needed += [str(p) for p in launch.service_sockets.values()]
        covers, binds = covers_for(os.path.realpath(p) for p in needed)
        return cls(uid=flow_uid(launch.play_sid), covers=covers, binds=binds, workdir=str(launch.workdir))

    def hand_over(self, launch: Launch) -> None:
        """Give the run's files to the flow's uid (before the spawn; as root).

        The play directory stays root's (0711); its staged files, span socket and workdir
        become the flow's. Nothing is followed: a link a flow planted is changed itself."""
        os.chmod(launch.play_dir, 0o711, follow_symlinks=False)
        staged = {launch.span_socket, launch.workdir}
        for key, value in launch.env.items():
            if key.startswith("HERO_FLOW_") and value.startswith("/") and os.path.dirname(value) == str(launch.play_dir):
                staged.add(Path(value))
        for path in staged:
            try:
                os.chown(path, self.uid, self.uid, follow_symlinks=False)
            except FileNotFoundError:
                continue

    def unreachable_sockets(self, launch: Launch) -> list[str]:
        """The declared service sockets this uid may not connect to (connecting needs write
        permission on the socket), as ``name (path, mode)``."""
        out = []
        for name, path in sorted(launch.service_sockets.items()):
            try:
                st = os.stat(path)
            except OSError:
                continue  # the service's own check names a socket that is not there
            if st.st_uid != self.uid and not st.st_mode & stat.S_IWOTH:
                out.append(f"{name!r} ({path}, mode {stat.S_IMODE(st.st_mode):04o})")
        return out

    def enter(self) -> Callable[[], None]:
        """The part of the child's set-up that builds the view (runs as root, after fork)."""
        covers = [os.fsencode(c) for c in self.covers]
        binds = [os.fsencode(b) for b in self.binds]
        workdir = os.fsencode(self.workdir)
        libc = _libc()

        def check(result: int, what: bytes) -> None:
            if result != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"flow view: {what.decode(errors='replace')}: {os.strerror(err)}")

        def enter() -> None:
            if not covers:
                return
            check(libc.unshare(_CLONE_NEWNS), b"unshare(CLONE_NEWNS)")
            check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), b"make / private")
            fds = [os.open(b, os.O_PATH | os.O_CLOEXEC) for b in binds]
            kinds = [os.path.isdir(b) for b in binds]
            try:
                for cover in covers:
                    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
                    check(libc.mount(b"tmpfs", cover, b"tmpfs", flags, b"mode=0755,size=1m"), cover)
                for bind, fd, is_dir in zip(binds, fds, kinds, strict=True):
                    os.makedirs(os.path.dirname(bind), mode=0o755, exist_ok=True)
                    if is_dir:
                        os.mkdir(bind, 0o755)
                    else:
                        os.close(os.open(bind, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
                    source = f"/proc/self/fd/{fd}".encode()
                    check(libc.mount(source, bind, None, _MS_BIND | _MS_REC, None), bind)
                for cover in covers:  # nothing more may be created in the view
                    flags = _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
                    check(libc.mount(b"tmpfs", cover, b"tmpfs", flags, b"mode=0755"), cover)
            finally:
                for fd in fds:
                    os.close(fd)
            os.chdir(workdir)  # the cwd inherited from the spawn is the covered original

        return enter


def _prefix(python: str) -> str:
    real = os.path.realpath(python)
    parent = os.path.dirname(real)
    return os.path.dirname(parent) if os.path.basename(parent) == "bin" else parent

