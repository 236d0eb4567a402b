"""Workdir quotas (``--workdir-mb``, hero_logic/kernel/_workdirs.py): a capped file system per
run, mounted at the workdir, its files copied back to a plain workdir at the run's end, and
whatever a killed service left half done put back at the next start.

The hostile side (a flow filling its workdir, per tier) is in test_sandbox_hostile_host.py."""

from __future__ import annotations

import os
import stat
import subprocess
from typing import TYPE_CHECKING

import attrs
import pytest
import trio

from hero_logic.kernel import Config, _loopfs
from hero_logic.kernel._copy_tree import MAX_DEPTH, copy_tree, remove_tree
from hero_logic.kernel._loopfs import LoopFs, mounted_at
from hero_logic.kernel._workdirs import WorkdirQuota

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loop mounts need root")


def test_copy_follows_no_link_keeps_holes_and_hard_links_and_drops_set_uid(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    dst.mkdir()
    (src / "a" / "b" / "f").write_text("hello")
    os.chmod(src / "a" / "b" / "f", 0o4755)
    os.link(src / "a" / "b" / "f", src / "hard")
    os.symlink("/etc/passwd", src / "link")
    with open(src / "sparse", "wb") as f:
        f.truncate(1 << 30)
        f.seek(1 << 20)
        f.write(b"x")
    os.mkfifo(src / "fifo")
    copy_tree(str(src), str(dst))
    assert sorted(os.listdir(dst)) == ["a", "hard", "link", "sparse"]  # no FIFO
    assert os.readlink(dst / "link") == "/etc/passwd"
    assert stat.S_IMODE(os.stat(dst / "a" / "b" / "f").st_mode) == 0o755
    assert os.stat(dst / "hard").st_ino == os.stat(dst / "a" / "b" / "f").st_ino
    sparse = os.stat(dst / "sparse")
    assert sparse.st_size == 1 << 30
    assert sparse.st_blocks * 512 < 1 << 20


@pytest.fixture
def quota(tmp_path: Path) -> Iterator[WorkdirQuota]:
    config = attrs.evolve(Config.load(environ={"PATH_ROOT": str(tmp_path)}), workdir_mb=8)
    quota = WorkdirQuota.from_config(config)
    yield quota
    quota.close()
    for sid in ("p1",):
        work = config.play_workdir(sid)
        if mounted_at(work):
            subprocess.run(["umount", "-l", str(work)], check=False)


def _workdir(quota: WorkdirQuota, sid: str, **files: str) -> Path:
    work = quota.config.play_workdir(sid)
    work.mkdir(parents=True, mode=0o700)
    for name, text in files.items():
        (work / name).write_text(text)
    return work


@needs_root
def test_a_run_s_workdir_is_a_file_system_of_the_quota_s_size_and_its_files_stay(quota: WorkdirQuota) -> None:
    """Files of an earlier run are in the run's file system; what the run writes is in the
    plain workdir afterwards; the image is gone."""
    work = _workdir(quota, "p1", before="earlier run")
    quota._attach("p1")
    assert mounted_at(work)
    st = os.statvfs(work)
    assert st.f_blocks * st.f_frsize <= 8 << 20
    assert (work / "before").read_text() == "earlier run"
    assert sorted(os.listdir(work)) == ["before"]  # no lost+found
    (work / "during").write_text("this run")
    with pytest.raises(OSError, match="No space left"), open(work / "big", "wb") as f:
        f.write(b"x" * (16 << 20))
    assert "workdir quota of 8 MiB" in quota._full_reason(work)
    quota._detach("p1")
    assert not mounted_at(work)
    assert (work / "during").read_text() == "this run"
    assert os.path.getsize(work / "big") < 8 << 20
    assert list(quota.images_dir.glob("p1*")) == []


@needs_root
def test_a_service_killed_during_a_run_leaves_the_files_to_the_next_start(quota: WorkdirQuota) -> None:
    """The image still mounted (the service was killed): recovery copies its files out."""
    work = _workdir(quota, "p1")
    quota._attach("p1")
    (work / "written").write_text("before the crash")
    quota.recover_one("p1")
    assert not mounted_at(work)
    assert (work / "written").read_text() == "before the crash"
    assert not quota._image("p1").exists()


@needs_root
def test_after_a_reboot_the_image_on_disk_is_mounted_and_its_files_copied_out(quota: WorkdirQuota) -> None:
    work = _workdir(quota, "p1")
    quota._attach("p1")
    (work / "written").write_text("before the reboot")
    subprocess.run(["umount", str(work)], check=True)  # what a reboot does to the mount
    assert not (work / "written").exists()
    quota.recover_one("p1")
    assert (work / "written").read_text() == "before the reboot"


@needs_root
def test_an_interrupted_copy_in_puts_the_earlier_files_back(quota: WorkdirQuota) -> None:
    """work.old exists only while files are copied in: it is the truth."""
    work = _workdir(quota, "p1", kept="earlier run")
    quota._attach("p1")
    (work / "kept").unlink()  # as if the copy in had not got to it
    old = work.with_name("work.old")
    old.mkdir()
    (old / "kept").write_text("earlier run")
    quota.recover_one("p1")
    assert not mounted_at(work)
    assert (work / "kept").read_text() == "earlier run"
    assert not old.exists()


@needs_root
def test_a_workdir_left_mounted_whose_image_was_deleted_is_copied_out_at_the_next_start(quota: WorkdirQuota) -> None:
    """Killed during a run, then the images were deleted (PATH_ROOT cleaned by hand): the
    mount still holds the files; the next start copies them out and lets the mount go."""
    work = _workdir(quota, "p1")
    quota._attach("p1")
    (work / "written").write_text("before the crash")
    quota._image("p1").unlink()
    trio.run(quota.recover)
    assert not mounted_at(work)
    assert (work / "written").read_text() == "before the crash"


def _nest(top: Path, depth: int) -> None:
    """``depth`` directories ``d/d/...`` under ``top`` with a file at the bottom (made relative
    to each directory: the full path may pass PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
    finally:
        os.close(fd)


def test_a_tree_nested_thousands_deep_is_copied_to_its_cap_and_removed(tmp_path: Path) -> None:
    """A flow can nest directories far deeper than Python's recursion limit: the copy stops at
    MAX_DEPTH and names what it left out; removal goes all the way (rmtree alone raised
    RecursionError and ended the service)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "top.txt").write_text("kept")
    _nest(src, 1500)
    too_deep: list[str] = []
    copy_tree(str(src), str(dst), too_deep)
    assert (dst / "top.txt").read_text() == "kept"
    assert too_deep == ["/".join(["d"] * MAX_DEPTH)]
    assert os.path.isdir(dst / "/".join(["d"] * (MAX_DEPTH - 1)))
    remove_tree(src)
    assert not src.exists()
    remove_tree(src)  # gone already: nothing to do


def _warm_workdir(quota: WorkdirQuota) -> Path:
    """A warm process's own workdir under the shared mount, as the pool makes it."""
    quota.share_warm_root()
    at = quota.warm_root / "w1"
    at.mkdir(mode=0o700)
    return at


@needs_root
def test_a_warm_run_s_file_system_is_mounted_at_the_warm_workdir_and_its_files_come_back(quota: WorkdirQuota) -> None:
    """A warm run: the play's files are copied into a file system mounted at the warm
    process's workdir; what the run wrote is in the play's plain workdir afterwards."""
    work = _workdir(quota, "p1", before="earlier run")
    at = _warm_workdir(quota)
    try:
        quota._attach("p1", at)
        assert mounted_at(at)
        assert not mounted_at(work)
        assert (at / "before").read_text() == "earlier run"
        assert sorted(os.listdir(at)) == ["before"]
        (at / "during").write_text("this run")
        quota._detach("p1", at)
        assert not mounted_at(at)
        assert sorted(os.listdir(work)) == ["before", "during"]
        assert (work / "during").read_text() == "this run"
        assert list(quota.images_dir.glob("p1*")) == []
    finally:
        quota.release_warm_root()


@needs_root
def test_a_service_killed_during_a_warm_run_leaves_the_run_s_files_to_the_next_start(quota: WorkdirQuota) -> None:
    """kill -9 while the run's file system is mounted at a warm workdir: the next start
    releases the warm mounts, then copies the image's files to the play's workdir."""
    work = _workdir(quota, "p1", before="earlier run")
    at = _warm_workdir(quota)
    quota._attach("p1", at)
    (at / "written").write_text("before the crash")
    trio.run(quota.recover)  # the next start (the dead service's mount is still there)
    assert not quota.warm_root.exists() or not mounted_at(at)
    assert not mounted_at(work)
    assert (work / "written").read_text() == "before the crash"
    assert (work / "before").read_text() == "earlier run"
    assert list(quota.images_dir.glob("p1*")) == []


@needs_root
def test_an_interrupted_warm_copy_in_keeps_the_plain_workdir(quota: WorkdirQuota) -> None:
    """Killed while the play's files were copied into the warm run's file system: the plain
    workdir is whole (it was copied, not moved), so recovery drops the image and keeps it."""
    work = _workdir(quota, "p1", kept="earlier run")
    at = _warm_workdir(quota)
    quota._attach("p1", at)
    (at / "kept").unlink()  # as if the copy in had not got to it
    quota._copying("p1").touch()  # ... and had not finished
    trio.run(quota.recover)
    assert (work / "kept").read_text() == "earlier run"
    assert sorted(os.listdir(work)) == ["kept"]
    assert list(quota.images_dir.glob("p1*")) == []


def test_the_quota_is_off_with_zero_or_without_root(tmp_path: Path) -> None:
    config = attrs.evolve(Config.load(environ={"PATH_ROOT": str(tmp_path)}), workdir_mb=0)
    assert WorkdirQuota.from_config(config).size_mb == 0
    assert Config.load(environ={"PATH_ROOT": str(tmp_path)}).workdir_mb == 1024
    with pytest.raises(Exception, match="HERO_LOGIC_WORKDIR_MB must be 0 or more"):
        Config.load(environ={"PATH_ROOT": str(tmp_path), "HERO_LOGIC_WORKDIR_MB": "-1"})


def test_a_ready_spare_is_not_made_again_when_a_run_that_made_its_own_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs taking their file systems at once: one finds the spare being made and makes its
    own; when it ends, the spare is ready. Making it again then unlinked the ready spare under
    the next run's take (seen in a burst of 50 plays: "could not use the spare ... No such
    file"). No loop device needed: the file system calls are stubbed."""
    made: list[Path] = []

    def make_image(image: Path, size_mb: int) -> None:
        made.append(image)
        image.write_bytes(b"fs")

    monkeypatch.setattr(_loopfs, "make_image", make_image)
    monkeypatch.setattr(_loopfs, "mount_image", lambda image, target: None)
    monkeypatch.setattr(_loopfs, "bind", lambda source, target: None)
    monkeypatch.setattr(_loopfs, "unmount", lambda target: None)
    fs = LoopFs(tmp_path / "images", 16)
    fs.warm()
    fs._jobs.put(None)  # let the worker finish the spare and stop, so the count below is final
    assert fs._worker is not None
    fs._worker.join()
    fs._worker = None
    assert made == [tmp_path / "images" / ".spare.img"]
    fs._want_spare()  # what the run that made its own file system does as it ends
    fs.close()
    assert made == [tmp_path / "images" / ".spare.img"], "a ready spare was made again"
