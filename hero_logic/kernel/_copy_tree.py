"""Copy a workdir between file systems without trusting what a flow left in it.

Used to move a play's workdir into and out of its size-capped file system (:mod:`._workdirs`).
The source may hold anything a hostile flow can make, so the copy:

* follows no symlink (every step is relative to a directory descriptor opened with
  ``O_NOFOLLOW``; symlinks are copied as symlinks) and writes only into a destination it
  created itself (``O_EXCL``);
* copies only the data extents of a file (``SEEK_DATA``/``SEEK_HOLE``), so a sparse file stays
  sparse and never grows to its apparent size on the host;
* copies a file with several names once and links the other names to it (a thousand hard links
  of one big file cost its size once);
* keeps owners, permission bits (without set-uid, set-gid and sticky) and modification times;
  skips FIFOs, sockets and device nodes (there is nothing to copy; a FIFO would block);
* goes at most :data:`MAX_DEPTH` directories deep: what lies deeper is not copied, and its
  top directories are reported (a flow can nest directories thousands deep; the copy holds two
  descriptors per level and must end).

:func:`remove_tree` removes such a tree too (``shutil.rmtree`` recurses once per level and
fails past Python's recursion limit), without crossing into another file system.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

from ._loopfs import mounts_under

__all__ = ["MAX_DEPTH", "copy_tree", "remove_tree"]

MAX_DEPTH = 128
"""Directories a copy descends at most (deeper ones are left out and reported)."""

_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(source: str, destination: str, too_deep: list[str] | None = None) -> int:
    """Copy the contents of directory ``source`` into the existing, empty ``destination``;
    returns the number of entries copied. Raises OSError (ENOSPC when the destination fills).
    Directories deeper than :data:`MAX_DEPTH` are not copied; their paths (relative to
    ``source``) are appended to ``too_deep``."""
    src = os.open(source, _DIR)
    try:
        dst = os.open(destination, _DIR)
        try:
            return _copy_dir(src, dst, dst, "", {}, 1, too_deep if too_deep is not None else [])
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_dir(
    src: int, dst: int, root: int, rel: str, seen: dict[tuple[int, int], str], depth: int, too_deep: list[str]
) -> int:
    """Copy directory ``src`` into ``dst`` (at ``rel`` below the destination's ``root``, ``depth``
    directories down); ``seen`` maps the files with several names copied so far to their path
    below ``root``."""
    count = 0
    with os.scandir(src) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        try:
            st = os.stat(name, dir_fd=src, follow_symlinks=False)
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(st.st_mode) & 0o777
        if stat.S_ISDIR(st.st_mode):
            if depth >= MAX_DEPTH:
                too_deep.append(f"{rel}{name}")
                continue
            os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, _DIR, dir_fd=src)
            try:
                sub_dst = os.open(name, _DIR, dir_fd=dst)
                try:
                    count += _copy_dir(sub_src, sub_dst, root, f"{rel}{name}/", seen, depth + 1, too_deep)
                    _finish(sub_dst, st, mode)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen:
                os.link(seen[key], name, src_dir_fd=root, dst_dir_fd=dst, follow_symlinks=False)
            else:
                _copy_file(src, dst, name, st, mode)
                if st.st_nlink > 1:
                    seen[key] = f"{rel}{name}"
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            with contextlib.suppress(OSError):
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        else:
            continue  # FIFO, socket, device: nothing to copy
        count += 1
    return count


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` and what is below it, however deep, never crossing into another file
    system (a mounted workdir below it is left, with its mount point); nothing if it is gone.
    Raises OSError if something is left."""
    if not mounts_under(Path(path)):  # rmtree would empty a file system mounted below
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except (RecursionError, OSError):
            pass  # too deep for rmtree's recursion: rm walks without it
    done = subprocess.run(
        ["rm", "-rf", "--one-file-system", "--", os.fspath(path)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=600, check=False,
    )
    if os.path.lexists(path):
        why = done.stderr.decode(errors="replace").strip()[-300:] or f"exit {done.returncode}"
        msg = f"could not remove {os.fspath(path)}: {why}"
        raise OSError(msg)


def _copy_file(src: int, dst: int, name: str, st: os.stat_result, mode: int) -> None:
    try:
        fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return  # gone, or swapped for a link since it was listed
        raise
    try:
        if not stat.S_ISREG(os.fstat(fin).st_mode):
            return
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst)
        try:
            size = os.fstat(fin).st_size
            for start, end in _extents(fin, size):
                offset = start
                while offset < end:
                    data = os.pread(fin, min(_CHUNK, end - offset), offset)
                    if not data:
                        break
                    os.pwrite(fout, data, offset)
                    offset += len(data)
            os.ftruncate(fout, size)  # the holes at the end, if any
            _finish(fout, st, mode)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The data extents of a file, ``(start, end)``; the whole file where holes are unknown."""
    out = []
    offset = 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole is left
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, min(end, size)))
            offset = end
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
        return [(0, size)]
    return out


def _finish(fd: int, st: os.stat_result, mode: int) -> None:
    with contextlib.suppress(OSError):
        os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, mode)
    with contextlib.suppress(OSError):
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
