"""Workdir quotas: while a play runs, its workdir is a file system of its own, capped in size.

A flow may write into its workdir (``plays/<sid>/work``), which lives on the file system that
also holds PATH_ROOT and the LMDB. Uncapped, one flow fills that file system in a second and
every later play and commit fails. So, where the service runs as root (``--workdir-mb``,
default 1024; ``0`` turns it off), each **run** of a play gets a fresh ext4 file system of that
size in a sparse image file, loop-mounted at the workdir (``nosuid,nodev``) before the flow
starts and taken apart when the run ends:

1. take a fresh ext4 file system in a sparse image, ``workdir-images/<sid>.img`` (it takes
   disk space only as it fills): the spare one :class:`~._loopfs.LoopFs` made and mounted in
   the background since the last run (a bind mount, well under a millisecond), or a new one;
2. if the workdir holds files from earlier runs (a paused play resumed), it is renamed
   ``work.old``, the image is mounted at ``work`` and they are copied in; otherwise the image is
   mounted straight away;
3. the flow runs: every tier binds the workdir path, so it writes into the image, and a write
   past the cap fails with ENOSPC ("No space left on device");
4. at the end of the run (shielded: also on cancel and on the service's shutdown) the image's
   contents are copied to ``work.new`` with :func:`~._copy_tree.copy_tree` (sparse files stay
   sparse, hard links stay links, nothing is followed), the image is detached (its teardown
   finishes in the background), ``work.new`` becomes ``work`` and the image is deleted.

Between runs and after the play, the workdir is a plain directory, readable as before; the
host's file system grows by at most what the flow wrote within its cap. A run that found its
file system full fails with a reason naming ``--workdir-mb``.

Why this design: this machine's kernel has no ext4/XFS quota format (``CONFIG_QFMT_V2``), so
project quotas on one shared file system are out; a tmpfs would hold the files in memory
and lose a finished step's files with the sandbox; an image mounted for the play's whole life
would hold a loop device per paused play (thousands). A mount per run costs a few milliseconds
on the play's path (the slow parts run beside it) and one copy each way of what the workdir
holds (nothing, for most plays); ``bench/bench_workdir.py`` measures it.

**A run in a warm process** (:mod:`._pool`, ``bwrap``) cannot have its file system mounted at the
play's workdir: its sandbox bound a directory of its own (``warm-work/w<N>``) at ``/hero/work``
when it started. So the image is mounted there instead (``attached(sid, at=...)``): ``warm-work/``
is a shared mount, so the mount propagates into the waiting sandbox. Step 2 then *copies* the
workdir's files in (the plain workdir stays as it was until step 4 replaces it; a marker
``<sid>.copying`` beside the image says the copy in was not finished, and recovery then drops
the image and keeps the plain workdir); step 4 copies out to ``work.new`` as before.

A service killed during a run leaves the image mounted (or, after a reboot, on disk): at the
next start :meth:`WorkdirQuota.recover` finishes step 4 (or, if step 2 was interrupted, puts
``work.old`` back) before any play runs again.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

from ._copy_tree import MAX_DEPTH, copy_tree, remove_tree
from ._loopfs import MIB, LoopFs, mount_image, mounted_at, mounts_under, share, tool, unmount

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._config import Config

__all__ = ["QuotaRun", "WorkdirQuota"]

log = logging.getLogger("hero_logic.kernel")

def _has_entries(path: Path) -> bool:
    with os.scandir(path) as entries:
        return any(True for _ in entries)


def _remove_dir(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        remove_tree(path)


def _too_deep_reason(too_deep: list[str]) -> str:
    shown = ", ".join(too_deep[:3]) + (f" and {len(too_deep) - 3} more" if len(too_deep) > 3 else "")
    return (
        f"the play's workdir nested directories over {MAX_DEPTH} deep; what lay below that depth "
        f"was not kept after the run ({shown[:300]}): keep the workdir's tree shallower"
    )


@attrs.define(eq=False)
class QuotaRun:
    """One run's capped workdir: why it could not be set up, or why the run may have failed."""

    error: str = ""
    """The workdir could not get its file system (the play fails with this)."""
    reason: str = ""
    """The run filled its workdir (set when the run ends), or ""."""
    lost: str = ""
    """What of the workdir could not be kept after the run (the play fails with it), or ""."""


@attrs.define(eq=False)
class WorkdirQuota:
    """Mounts a capped file system at a play's workdir for each of its runs."""

    config: Config
    size_mb: int = 0
    """The cap; 0: workdirs are plain directories (no root, or ``--workdir-mb 0``)."""
    _fs: LoopFs | None = None

    @property
    def fs(self) -> LoopFs:
        """The file systems' maker (with its spare)."""
        if self._fs is None:
            self._fs = LoopFs(self.images_dir, self.size_mb)
        return self._fs

    @property
    def images_dir(self) -> Path:
        """Where the image of each running play's workdir lives."""
        return self.config.state_dir / "workdir-images"

    @classmethod
    def from_config(cls, config: Config) -> WorkdirQuota:
        """Quotas of ``--workdir-mb`` where they can work here (root, loop devices, mkfs.ext4);
        otherwise none, saying why in the log."""
        size = config.workdir_mb
        if size <= 0:
            return cls(config)
        why = ""
        if os.geteuid() != 0:
            why = "the service does not run as root (loop mounts need it)"
        elif not os.path.exists("/dev/loop-control"):
            why = "/dev/loop-control is missing (load the loop module: modprobe loop)"
        elif tool("mkfs.ext4") is None:
            why = "mkfs.ext4 is not installed (apt-get install e2fsprogs)"
        if why:
            log.warning(
                "workdir quotas are off: %s; a flow may fill the file system of PATH_ROOT through "
                "its workdir (set --workdir-mb 0 to silence this)", why,
            )
            return cls(config)
        return cls(config, size_mb=size)

    # -- a run ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def attached(self, play_sid: str, at: Path | None = None) -> AsyncIterator[QuotaRun]:
        """The play's workdir as a capped file system for the block, mounted at the workdir or
        at ``at`` (a warm process's own workdir; see the module doc)."""
        run = QuotaRun()
        if not self.size_mb:
            yield run
            return
        try:
            with trio.CancelScope(shield=True):  # a half-made mount is always taken apart
                await trio.to_thread.run_sync(self._attach, play_sid, at)
        except OSError as exc:
            run.error = self._attach_error(play_sid, exc)
            with trio.CancelScope(shield=True):
                if at is not None:  # the file system taken at the warm workdir goes first
                    await trio.to_thread.run_sync(self._unmount_quietly, at)
                await trio.to_thread.run_sync(self.recover_one, play_sid)
            yield run
            return
        try:
            yield run
        finally:
            with trio.CancelScope(shield=True):
                run.reason = self._full_reason(at or self.config.play_workdir(play_sid))
                try:
                    too_deep = await trio.to_thread.run_sync(self._detach, play_sid, at)
                except Exception as exc:  # the files stay in the mounted image; the next run or start retries
                    log.error("could not copy the workdir of play %s out of its file system: %s", play_sid, exc)
                else:
                    if too_deep:
                        run.lost = _too_deep_reason(too_deep)

    def _attach_error(self, play_sid: str, exc: OSError) -> str:
        if exc.errno == 28:  # ENOSPC: the files of earlier runs do not fit (the cap was lowered)
            return (
                f"the workdir of play {play_sid} holds more than its quota of {self.size_mb} MiB "
                "(--workdir-mb / HERO_LOGIC_WORKDIR_MB), so it cannot run: raise --workdir-mb "
                "or remove files from the workdir"
            )
        return (
            f"could not give the workdir of play {play_sid} its {self.size_mb} MiB file system "
            f"(--workdir-mb): {exc}; set --workdir-mb 0 to run without workdir quotas"
        )

    def _image(self, play_sid: str) -> Path:
        return self.images_dir / f"{play_sid}.img"

    def _copying(self, play_sid: str) -> Path:
        return self.images_dir / f"{play_sid}.copying"

    def _attach(self, play_sid: str, at: Path | None = None) -> None:
        work = self.config.play_workdir(play_sid)
        old = work.with_name("work.old")
        image = self._image(play_sid)
        if image.exists() or old.exists() or mounted_at(work):
            self.recover_one(play_sid)  # an earlier run's end was interrupted
        self.images_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(work, follow_symlinks=False)
        if at is not None:
            self._attach_at(play_sid, work, at, st)
            return
        filled = _has_entries(work)
        if filled:
            work.rename(old)
            work.mkdir(mode=0o700)
        self._take(play_sid, work, st)
        if filled:
            copy_tree(str(old), str(work))
            remove_tree(old)

    def _take(self, play_sid: str, target: Path, st: os.stat_result) -> None:
        """A fresh file system of the play's at ``target``, owned and moded as the workdir
        (``st``), without mkfs's lost+found (where debugfs is missing): the flow finds its
        workdir as it left it."""
        self.fs.take(self._image(play_sid), target)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, st.st_mode & 0o777)
        lost = target / "lost+found"
        if lost.is_dir() and not _has_entries(lost):
            lost.rmdir()

    def _attach_at(self, play_sid: str, work: Path, at: Path, st: os.stat_result) -> None:
        """Mount a fresh file system at ``at`` and copy the play's workdir into it (the workdir
        stays as it is; the marker says the copy is unfinished until it is)."""
        marker = self._copying(play_sid)
        marker.touch(mode=0o600)
        self._take(play_sid, at, st)
        if _has_entries(work):
            copy_tree(str(work), str(at))
        marker.unlink()

    def close(self) -> None:
        """Finish pending teardowns, remove the spare file system and the warm processes'
        shared mount (the kernel is closing: every run has ended)."""
        if self._fs is not None:
            self._fs.close()
        if self.size_mb:
            self.release_warm_root()

    @staticmethod
    def _unmount_quietly(path: Path) -> None:
        try:
            unmount(path)
        except OSError as exc:
            log.warning("could not unmount %s: %s", path, exc)

    def _full_reason(self, work: Path) -> str:
        try:
            st = os.statvfs(work)
        except OSError:
            return ""
        free = st.f_bavail * st.f_frsize
        if free < max(MIB, self.size_mb * MIB // 64):
            return (
                f"the play filled its workdir quota of {self.size_mb} MiB (--workdir-mb / "
                "HERO_LOGIC_WORKDIR_MB): its writes failed with 'No space left on device'; write "
                "less into the workdir, delete what the flow no longer needs, or raise --workdir-mb"
            )
        if st.f_files and st.f_favail == 0:
            return (
                f"the play made all {st.f_files} files its workdir's file system of {self.size_mb} MiB "
                "holds (--workdir-mb; about one per 16 KiB, per 4 KiB below 512 MiB): keep fewer "
                "files in the workdir, or raise --workdir-mb"
            )
        return ""

    def _detach(self, play_sid: str, at: Path | None = None) -> list[str]:
        """Copy the image's files (mounted at the workdir, or at ``at``) out to a plain workdir,
        unmount it, delete it; the directories too deep to copy (see ``copy_tree``)."""
        work = self.config.play_workdir(play_sid)
        mounted = at or work
        new = work.with_name("work.new")
        _remove_dir(new)
        st = os.stat(mounted)
        new.mkdir(mode=0o700)
        too_deep: list[str] = []
        copy_tree(str(mounted), str(new), too_deep)
        if too_deep:
            log.warning("play %s: %d director(ies) nested over %d deep in its workdir were not kept: %s",
                        play_sid, len(too_deep), MAX_DEPTH, ", ".join(too_deep[:3])[:300])
        os.chown(new, st.st_uid, st.st_gid)
        os.chmod(new, st.st_mode & 0o777)
        self.fs.release(mounted)
        try:
            work.rmdir()  # the directory the image was mounted on (at a warm run: the old workdir)
        except OSError:
            stale = work.with_name("work.stale")  # something wrote under the mount: drop it
            _remove_dir(stale)
            work.rename(stale)
            try:
                remove_tree(stale)
            except OSError as exc:
                log.warning("play %s: %s", play_sid, exc)
        new.rename(work)
        self._image(play_sid).unlink(missing_ok=True)
        return too_deep

    def remove_play_dir(self, play_sid: str) -> None:
        """Remove a deleted play's directory, its workdir included (blocking: run it in a thread)."""
        work = self.config.play_workdir(play_sid)
        if mounted_at(work):  # left by a run whose end could not copy it out
            unmount(work)
        self._image(play_sid).unlink(missing_ok=True)
        path = self.config.play_dir(play_sid)
        try:
            remove_tree(path)
        except OSError as exc:
            log.warning("play %s was deleted, but not its directory %s: %s", play_sid, path, exc)

    # -- after a crash ----------------------------------------------------------------------------

    @property
    def warm_root(self) -> Path:
        """Where warm processes' workdirs are, at which a warm run's file system is mounted."""
        return self.config.state_dir / "warm-work"

    def share_warm_root(self) -> None:
        """Make the warm processes' directory a shared mount (see the module doc), when quotas
        are on; blocking."""
        if self.size_mb:
            self.warm_root.mkdir(mode=0o700, parents=True, exist_ok=True)
            share(self.warm_root)

    def release_warm_root(self, *, runs: bool = True) -> None:
        """Unmount everything at or below the warm processes' directory (blocking); with
        ``runs=False`` only the directory's own mount, and only if no run's file system is
        mounted below it (the run's end unmounts that after copying it out)."""
        points = mounts_under(self.warm_root)
        if not runs and len(points) > 1:
            return
        for point in points:
            try:
                unmount(Path(point))
            except OSError as exc:
                log.warning("could not unmount %s: %s", point, exc)

    async def recover(self) -> int:
        """Finish what a killed service left half done (see the module doc); how many plays."""
        await trio.to_thread.run_sync(self.release_warm_root)  # a warm run's mount, if any
        try:
            images = sorted({p.name.rpartition(".")[0] + ".img" for p in self.images_dir.glob("*.*") if p.suffix in (".img", ".copying") and not p.name.startswith(".")})
        except OSError:
            images = []
        for sid in await trio.to_thread.run_sync(self._mounted_workdirs):  # mounted, image deleted
            if f"{sid}.img" not in images:
                images.append(f"{sid}.img")
        for name in images:
            await trio.to_thread.run_sync(self.recover_one, name[: -len(".img")])
        self.fs.sweep()
        if self.size_mb:
            self.fs.warm()
        if images:
            log.warning("put back the workdirs of %d play(s) a stopped service left mounted", len(images))
        return len(images)

    def _mounted_workdirs(self) -> list[str]:
        """The plays whose workdir has a file system mounted on it (blocking)."""
        plays = os.path.realpath(self.config.plays_dir)
        out = []
        for point in mounts_under(Path(plays)):
            sid, _, leaf = point[len(plays) + 1 :].partition("/")
            if leaf == "work" and sid:
                out.append(sid)
        return out

    def recover_one(self, play_sid: str) -> None:
        """Bring one play's workdir back to a plain directory, whatever step was interrupted."""
        image = self._image(play_sid)
        work = self.config.play_workdir(play_sid)
        old = work.with_name("work.old")
        try:
            if not work.parent.is_dir():
                return
            if self._copying(play_sid).exists():  # a warm run's copy in was interrupted: work is whole
                image.unlink(missing_ok=True)
                self._copying(play_sid).unlink()
                return
            if old.exists():  # the copy in was interrupted: what is in work.old is the truth
                if mounted_at(work):
                    unmount(work)
                _remove_dir(work)
                old.rename(work)
                return
            if image.exists() or mounted_at(work):  # (mounted with its image deleted: copied out all the same)
                if not work.is_dir():
                    work.mkdir(mode=0o700)
                if not mounted_at(work):
                    mount_image(image, work)
                self._detach(play_sid)
        except OSError as exc:
            log.error("could not put back the workdir of play %s from %s: %s", play_sid, image, exc)
        finally:
            if not mounted_at(work):
                image.unlink(missing_ok=True)
