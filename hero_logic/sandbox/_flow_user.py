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

The child set-up (:func:`hero_logic.kernel.apply_child_setup`, from ``ChildSetup``'s
``run_as``, ``covers`` and ``binds``) joins the play's cgroups and sets rlimits as
root, enters the view, empties the capability bounding set, then drops to the uid, and only
then asks for the parent-death signal (a change of uid clears it).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hero_logic.kernel import Launch

__all__ = ["FLOW_UID_BASE", "FLOW_UID_SPAN", "FlowUser", "covers_for", "flow_uid"]

FLOW_UID_BASE = 1_900_000_000
"""The first uid of ``env_scrub`` flows (above the usual ranges of users and of subordinate
uids for containers, below 2**31 for tools that read uids as signed)."""
FLOW_UID_SPAN = 1 << 24

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


def _prefix(python: str) -> str:
    real = os.path.realpath(python)
    parent = os.path.dirname(real)
    return os.path.dirname(parent) if os.path.basename(parent) == "bin" else parent

