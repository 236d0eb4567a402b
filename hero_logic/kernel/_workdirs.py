"""Workdir quotas: while a play runs, its workdir is a file system of its own, capped in size.

A flow may write into its workdir (``plays/<sid>/work``), which lives on the file system that
also holds PATH_ROOT and the LMDB. Uncapped, one flow fills that file system in a second and
every later play and commit fails. So, where the service runs as root (``--workdir-mb``,
default 1024; ``0`` turns it off), each **run** of a play gets a fresh ext4 file system of that
size in a sparse image file, loop-mounted at the workdir (``nosuid,nodev``) before the flow
starts and taken apart when the run ends:

1. ``mkfs.ext4`` a sparse image ``workdir-images/<sid>.img`` (about 3 ms; it takes disk space
   only as it fills);
2. if the workdir holds files from earlier runs (a paused play resumed), it is renamed
   ``work.old``, the image is mounted at ``work`` and they are copied in; otherwise the image is
   mounted straight away;
3. the flow runs: every tier binds the workdir path, so it writes into the image, and a write
   past the cap fails with ENOSPC ("No space left on device");
4. at the end of the run (shielded: also on cancel and on the service's shutdown) the image's
   contents are copied to ``work.new`` with :func:`~._copy_tree.copy_tree` (sparse files stay
   sparse, hard links stay links, nothing is followed), the image is unmounted, ``work.new``
   becomes ``work`` and the image is deleted.

Between runs and after the play, the workdir is a plain directory, readable as before; the
host's file system grows by at most what the flow wrote within its cap. A run that found its
file system full fails with a reason naming ``--workdir-mb``.

Why this design: this machine's kernel has no ext4/XFS quota format (``CONFIG_QFMT_V2``), so
project quotas on one shared file system are out; a tmpfs would hold the files in memory
and lose a finished step's files with the sandbox; an image mounted for the play's whole life
would hold a loop device per paused play (thousands). A mount per run costs about 5 ms and one
copy each way of what the workdir holds (nothing, for most plays).

A service killed during a run leaves the image mounted (or, after a reboot, on disk): at the
next start :meth:`WorkdirQuota.recover` finishes step 4 (or, if step 2 was interrupted, puts
``work.old`` back) before any play runs again.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import shutil
import struct
import subprocess
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from ._copy_tree import copy_tree

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from ._config import Config

__all__ = ["QuotaRun", "WorkdirQuota", "mounted_at"]

log = logging.getLogger("hero_logic.kernel")

MIB = 1 << 20
_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_CONFIGURE = 0x4C0A
_LOOP_SET_FD = 0x4C00
_LOOP_SET_STATUS64 = 0x4C04
_LO_FLAGS_AUTOCLEAR = 4
_MS_NOSUID = 2
_MS_NODEV = 4
_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unescape(field: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline, backslash in octal)."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounted_at(path: Path) -> bool:
    """True if a file system is mounted at ``path`` in the service's mount namespace."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(_unescape(line.split()[4]) == target for line in f if len(line.split()) > 4)
    except OSError:
        return False


def _attach_loop(image: Path) -> tuple[str, int]:
    """A free loop device backed by ``image`` and a descriptor holding it: the device clears
    itself once its last user lets go (keep the descriptor until it is mounted)."""
    for _ in range(20):
        ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            number = fcntl.ioctl(ctl, _LOOP_CTL_GET_FREE)
        finally:
            os.close(ctl)
        device = f"/dev/loop{number}"
        loop = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
        try:
            info = bytearray(232)  # struct loop_info64; lo_flags at offset 52
            struct.pack_into("I", info, 52, _LO_FLAGS_AUTOCLEAR)
            try:
                fcntl.ioctl(loop, _LOOP_CONFIGURE, struct.pack("II", backing, 0) + bytes(info) + bytes(64))
            except OSError as exc:
                if exc.errno == 16:  # EBUSY: another thread took this device first
                    os.close(loop)
                    continue
                try:
                    if exc.errno != 22:  # EINVAL: a kernel before 5.8 has no LOOP_CONFIGURE
                        raise
                    fcntl.ioctl(loop, _LOOP_SET_FD, backing)
                    fcntl.ioctl(loop, _LOOP_SET_STATUS64, bytes(info))
                except BaseException:
                    os.close(loop)
                    raise
            return device, loop
        finally:
            os.close(backing)
    msg = "no free loop device after 20 tries"
    raise OSError(msg)


def _mount(image: Path, target: Path) -> None:
    device, loop = _attach_loop(image)
    try:
        if _libc().mount(device.encode(), os.fsencode(target), b"ext4", _MS_NOSUID | _MS_NODEV, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {image} at {target}: {os.strerror(err)}")
    finally:
        os.close(loop)


def _unmount(target: Path) -> None:
    if _libc().umount2(os.fsencode(target), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err != 22:  # EINVAL: not mounted any more
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _has_entries(path: Path) -> bool:
    with os.scandir(path) as entries:
        return any(True for _ in entries)


def _remove_dir(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@attrs.define(eq=False)
class QuotaRun:
    """One run's capped workdir: why it could not be set up, or why the run may have failed."""

    error: str = ""
    """The workdir could not get its file system (the play fails with this)."""
    reason: str = ""
    """The run filled its workdir (set when the run ends), or ""."""


@attrs.define(eq=False)
class WorkdirQuota:
    """Mounts a capped file system at a play's workdir for each of its runs."""

    config: Config
    size_mb: int = 0
    """The cap; 0: workdirs are plain directories (no root, or ``--workdir-mb 0``)."""

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
        elif shutil.which("mkfs.ext4") is None:
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
    async def attached(self, play_sid: str) -> AsyncIterator[QuotaRun]:
        """The play's workdir as a capped file system for the block (see the module doc)."""
        run = QuotaRun()
        if not self.size_mb:
            yield run
            return
        try:
            with trio.CancelScope(shield=True):  # a half-made mount is always taken apart
                await trio.to_thread.run_sync(self._attach, play_sid)
        except OSError as exc:
            run.error = self._attach_error(play_sid, exc)
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.recover_one, play_sid)
            yield run
            return
        try:
            yield run
        finally:
            with trio.CancelScope(shield=True):
                run.reason = self._full_reason(self.config.play_workdir(play_sid))
                try:
                    await trio.to_thread.run_sync(self._detach, play_sid)
                except OSError as exc:  # the files stay in the mounted image; the next run or start retries
                    log.error("could not copy the workdir of play %s out of its file system: %s", play_sid, exc)

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

    def _attach(self, play_sid: str) -> None:
        work = self.config.play_workdir(play_sid)
        old = work.with_name("work.old")
        image = self._image(play_sid)
        if image.exists() or old.exists() or mounted_at(work):
            self.recover_one(play_sid)  # an earlier run's end was interrupted
        self.images_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        image.unlink(missing_ok=True)
        fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, self.size_mb * MIB)
        finally:
            os.close(fd)
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", str(image)],
            check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        st = os.stat(work, follow_symlinks=False)
        filled = _has_entries(work)
        if filled:
            work.rename(old)
            work.mkdir(mode=0o700)
        _mount(image, work)
        os.chown(work, st.st_uid, st.st_gid)
        os.chmod(work, st.st_mode & 0o777)
        lost = work / "lost+found"  # mkfs's; the flow should find its workdir as it left it
        if lost.is_dir() and not _has_entries(lost):
            lost.rmdir()
        if filled:
            copy_tree(str(old), str(work))
            shutil.rmtree(old)

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
                f"the play used all {st.f_files} files its workdir quota of {self.size_mb} MiB "
                "allows (about one per 16 KiB of --workdir-mb): keep fewer files, or raise --workdir-mb"
            )
        return ""

    def _detach(self, play_sid: str) -> None:
        """Copy the image's files out to a plain workdir, unmount it, delete it."""
        work = self.config.play_workdir(play_sid)
        new = work.with_name("work.new")
        _remove_dir(new)
        st = os.stat(work)
        new.mkdir(mode=0o700)
        copy_tree(str(work), str(new))
        os.chown(new, st.st_uid, st.st_gid)
        os.chmod(new, st.st_mode & 0o777)
        _unmount(work)
        try:
            work.rmdir()  # the directory the image was mounted on
        except OSError:
            stale = work.with_name("work.stale")  # something wrote under the mount: drop it
            _remove_dir(stale)
            work.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        new.rename(work)
        self._image(play_sid).unlink(missing_ok=True)

    # -- after a crash ----------------------------------------------------------------------------

    async def recover(self) -> int:
        """Finish what a killed service left half done (see the module doc); how many plays."""
        try:
            images = sorted(p.name for p in self.images_dir.glob("*.img"))
        except OSError:
            return 0
        for name in images:
            await trio.to_thread.run_sync(self.recover_one, name[: -len(".img")])
        if images:
            log.warning("put back the workdirs of %d play(s) a stopped service left mounted", len(images))
        return len(images)

    def recover_one(self, play_sid: str) -> None:
        """Bring one play's workdir back to a plain directory, whatever step was interrupted."""
        image = self._image(play_sid)
        work = self.config.play_workdir(play_sid)
        old = work.with_name("work.old")
        try:
            if not work.parent.is_dir():
                return
            if old.exists():  # the copy in was interrupted: what is in work.old is the truth
                if mounted_at(work):
                    _unmount(work)
                _remove_dir(work)
                old.rename(work)
                return
            if image.exists():
                if not work.is_dir():
                    work.mkdir(mode=0o700)
                if not mounted_at(work):
                    _mount(image, work)
                self._detach(play_sid)
        except OSError as exc:
            log.error("could not put back the workdir of play %s from %s: %s", play_sid, image, exc)
        finally:
            if not mounted_at(work):
                image.unlink(missing_ok=True)
