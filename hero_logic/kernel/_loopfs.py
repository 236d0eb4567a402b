"""Small ext4 file systems in sparse image files, loop-mounted, with one kept ready.

The mechanics behind workdir quotas (:mod:`._workdirs`): making a file system (``mkfs.ext4``),
mounting it through a loop device that clears itself once unused, unmounting it. The slow parts
(``mkfs.ext4``, the first mount, and the file system's teardown after an unmount, which writes
its journal and superblock) run in one worker thread of :class:`LoopFs`, off a play's path: a
spare file system is kept made and mounted at ``.spare-mnt``, and a run takes it with a bind
mount; an unmounted file system is detached at once and torn down by the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import queue
import shutil
import struct
import subprocess
import threading
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["LoopFs", "bind", "make_image", "mount_image", "mounted_at", "mounts_under", "share", "tool", "unmount"]

log = logging.getLogger("hero_logic.kernel")

MIB = 1 << 20
_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_CONFIGURE = 0x4C0A
_LOOP_SET_FD = 0x4C00
_LOOP_SET_STATUS64 = 0x4C04
_LO_FLAGS_AUTOCLEAR = 4
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_BIND = 4096
_MS_SHARED = 1 << 20
_MNT_DETACH = 2
_ENOENT = 2
_EBUSY = 16
_EINVAL = 22


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
            return any(len(fields) > 4 and _unescape(fields[4]) == target for fields in map(str.split, f))
    except OSError:
        return False


def mounts_under(path: Path) -> list[str]:
    """The mount points at or below ``path``, deepest first (to unmount them in order)."""
    top = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            points = {_unescape(fields[4]) for fields in map(str.split, f) if len(fields) > 4}
    except OSError:
        return []
    return sorted((p for p in points if p == top or p.startswith(top + "/")), key=len, reverse=True)


def share(path: Path) -> None:
    """Make ``path`` a mount point of its own (a bind of itself) whose mount events propagate
    (``MS_SHARED``): a file system mounted below it later also appears in the sandboxes that
    bound a directory under it earlier (their copies are its slaves)."""
    if not mounted_at(path):
        bind(path, path)
    _check(_libc().mount(b"none", os.fsencode(path), None, _MS_SHARED, None), f"make {path} shared")


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
                if exc.errno == _EBUSY:  # another thread took this device first
                    os.close(loop)
                    continue
                try:
                    if exc.errno != _EINVAL:  # EINVAL: a kernel before 5.8 has no LOOP_CONFIGURE
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


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount_image(image: Path, target: Path) -> None:
    """Mount the ext4 file system in ``image`` at ``target`` (``nosuid,nodev``)."""
    device, loop = _attach_loop(image)
    try:
        flags = _MS_NOSUID | _MS_NODEV
        _check(_libc().mount(device.encode(), os.fsencode(target), b"ext4", flags, None), f"mount {image} at {target}")
    finally:
        os.close(loop)


def bind(source: Path, target: Path) -> None:
    """Bind-mount ``source`` at ``target``."""
    _check(_libc().mount(os.fsencode(source), os.fsencode(target), None, _MS_BIND, None), f"bind {source} at {target}")


def unmount(target: Path) -> None:
    """Detach the file system mounted at ``target`` (nothing to do if none is)."""
    if _libc().umount2(os.fsencode(target), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (_EINVAL, _ENOENT):  # nothing is mounted there, or nothing is there
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def tool(name: str) -> str | None:
    """The absolute path of ``name`` on PATH or in the system directories (a service started
    without /usr/sbin on its PATH still finds mkfs.ext4)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def make_image(image: Path, size_mb: int) -> None:
    """A sparse file of ``size_mb`` MiB at ``image`` holding an empty ext4 file system (no
    ``lost+found``, no blocks reserved for root)."""
    image.unlink(missing_ok=True)
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size_mb * MIB)
    finally:
        os.close(fd)
    mkfs, debugfs = tool("mkfs.ext4") or "mkfs.ext4", tool("debugfs")
    steps = [[mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", str(image)]]
    if debugfs:
        steps.append([debugfs, "-w", "-R", "rmdir lost+found", str(image)])
    for argv in steps:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip()[-300:] or f"exit {done.returncode}"
            msg = f"{argv[0]} could not make {image}: {why}"
            raise OSError(msg)


@attrs.define(eq=False)
class LoopFs:
    """Makes, mounts and unmounts the capped file systems, keeping one spare ready."""

    folder: Path
    size_mb: int
    _lock: threading.Lock = attrs.Factory(threading.Lock)
    _jobs: queue.SimpleQueue[Callable[[], None] | None] = attrs.Factory(queue.SimpleQueue)
    _worker: threading.Thread | None = None
    _spare_ready: bool = False
    _spare_wanted: bool = False
    _closed: bool = False

    @property
    def _spare_image(self) -> Path:
        return self.folder / ".spare.img"

    @property
    def _spare_mount(self) -> Path:
        return self.folder / ".spare-mnt"

    def take(self, image: Path, target: Path) -> None:
        """Mount a fresh, empty file system backed by ``image`` (which it names) at ``target``."""
        with self._lock:
            ready, self._spare_ready = self._spare_ready, False
        if ready:
            try:
                self._spare_image.rename(image)
                bind(self._spare_mount, target)
            except OSError as exc:
                log.warning("could not use the spare workdir file system (making one instead): %s", exc)
                ready = False
            with contextlib.suppress(OSError):
                unmount(self._spare_mount)
        if not ready:
            make_image(image, self.size_mb)
            mount_image(image, target)
        self._want_spare()

    def release(self, target: Path) -> None:
        """Unmount ``target`` at once; the file system's teardown happens in the worker."""
        held = os.open(target, os.O_PATH | os.O_CLOEXEC)  # keeps it alive past the unmount
        try:
            unmount(target)
        except BaseException:
            os.close(held)
            raise
        self._submit(lambda: os.close(held))

    def warm(self) -> None:
        """Start making the spare file system now (at start-up), for the first run."""
        self._want_spare()

    def _want_spare(self) -> None:
        """Have a spare made unless one is ready or being made (a run that made its own file
        system while the spare was being made must not have the ready spare made again: that
        unlinked it under the next run's ``take``)."""
        with self._lock:
            if self._spare_wanted or self._spare_ready:
                return
            self._spare_wanted = True
        self._submit(self._make_spare)

    def _make_spare(self) -> None:
        try:
            unmount(self._spare_mount)
            self.folder.mkdir(mode=0o700, exist_ok=True)  # never re-create a removed state dir
            self._spare_mount.mkdir(mode=0o700, exist_ok=True)
            make_image(self._spare_image, self.size_mb)
            mount_image(self._spare_image, self._spare_mount)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("could not make a spare workdir file system (a run will make its own): %s", exc)
            with self._lock:
                self._spare_wanted = False
            return
        with self._lock:
            self._spare_ready, self._spare_wanted = True, False

    def _submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the worker (after :meth:`close`: a teardown runs at once, a spare never)."""
        with self._lock:
            closed = self._closed
            if not closed and self._worker is None:
                self._worker = threading.Thread(target=self._work, name="hero_logic-loopfs", daemon=True)
                self._worker.start()
        if not closed:
            self._jobs.put(job)
        elif job != self._make_spare:
            job()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a failed teardown or spare must not stop the worker
                log.exception("workdir file system worker")

    def close(self) -> None:
        """Finish the pending teardowns, unmount and remove the spare file system."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._closed = True
        if worker is not None:
            self._jobs.put(None)
            worker.join()
        self.sweep()

    def sweep(self) -> None:
        """Remove a spare file system (this service's at close, or a dead one's at start)."""
        with contextlib.suppress(OSError):
            unmount(self._spare_mount)
        with contextlib.suppress(OSError):
            self._spare_mount.rmdir()
        self._spare_image.unlink(missing_ok=True)
        self._spare_ready = False
