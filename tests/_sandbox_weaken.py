"""Deliberately weakened tiers: each sandbox test must go red against one of these.

Set ``HERO_SANDBOX_WEAKEN=<name>`` and run ``tests/test_sandbox_hostile.py``: the named
protection is removed (in this process and in the service subprocesses the tests start) and
the tests that pin it fail. Normal runs never set it. The table in docs/sandbox.md lists which
test each weakening turns red.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

Setter = Callable[[Any, str, Any], None]


def _dumpable(set_: Setter) -> None:
    from hero_logic.sandbox import _policy, _scope

    set_(_scope, "make_non_dumpable", lambda: None)
    real = _policy.child_setup

    def keep_caps(rlimits: Any, **kw: Any) -> Any:
        kw["drop_capabilities"] = False
        return real(rlimits, **kw)

    set_(_scope, "child_setup", keep_caps)


def _inherit_fds(set_: Setter) -> None:
    from hero_logic.plugins.executor import _process

    real = _process.subprocess.Popen

    class LeakyPopen(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kw: Any) -> None:
            kw["close_fds"] = False
            kw.pop("pass_fds", None)
            super().__init__(*args, **kw)

    set_(_process.subprocess, "Popen", LeakyPopen)
    set_(_process, "SPAWN_CLOSE_FDS", False)  # the spawner's child keeps its descriptors


def _edit_bwrap(edit: Callable[[list[str]], list[str]]) -> Callable[[Setter], None]:
    def apply(set_: Setter) -> None:
        from hero_logic.sandbox import _bwrap

        real = _bwrap.bwrap_argv

        def weakened(*args: Any, **kw: Any) -> list[str]:
            return edit(real(*args, **kw))

        set_(_bwrap, "bwrap_argv", weakened)

    return apply


def _drop(argv: list[str], flag: str, n_args: int = 0) -> list[str]:
    out = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        if arg == flag:
            skip = n_args
            continue
        out.append(arg)
    return out


def _share_net(argv: list[str]) -> list[str]:
    argv = _drop(argv, "--seccomp", 1)
    i = argv.index("--unshare-all")
    return [*argv[: i + 1], "--share-net", *argv[i + 1 :]]


def _host_root(argv: list[str]) -> list[str]:
    return [argv[0], "--bind", "/", "/", *argv[1:]]


def _no_pidns(argv: list[str]) -> list[str]:
    argv = _drop(argv, "--unshare-all")
    return [argv[0], "--unshare-ipc", "--unshare-net", "--unshare-uts", *argv[1:]]


def _host_tmp(argv: list[str]) -> list[str]:
    i = argv.index("/tmp")  # "--perms 1777 --size N --tmpfs /tmp" becomes a bind of the host's
    return [*argv[: i - 5], "--bind", "/tmp", "/tmp", *argv[i + 1 :]]


def _no_die_with_parent(set_: Setter) -> None:
    _edit_bwrap(lambda argv: _drop(argv, "--die-with-parent"))(set_)
    _no_watchdog(set_)
    from hero_logic.sandbox import _policy, _scope

    real = _policy.child_setup

    def no_pdeathsig(rlimits: Any, **kw: Any) -> Any:
        kw["die_with_service"] = False
        return real(rlimits, **kw)

    set_(_scope, "child_setup", no_pdeathsig)


def _no_watchdog(set_: Setter) -> None:
    from hero_logic.sandbox import _cgroup

    set_(_cgroup.CgroupTree, "start_watchdog", lambda self, python: None)


def _no_limit_watch(set_: Setter) -> None:
    """The watchdog only cleans up after the service: it never reads ``pids.events``."""
    from hero_logic.sandbox import _cgroup

    real = _cgroup.CgroupTree.start_watchdog

    def blind(self: Any, python: str, *, poll_s: float = 0) -> None:
        real(self, python, poll_s=0)

    set_(_cgroup.CgroupTree, "start_watchdog", blind)


def _root_flows(set_: Setter) -> None:
    """env_scrub as root keeps its flows uid 0 (without capabilities), as it once did."""
    from hero_logic.sandbox import _env_scrub

    set_(_env_scrub.EnvScrubTier, "_as_flow_user", lambda self: False)


def _no_workdir_quota(set_: Setter) -> None:
    """Workdirs are plain directories on the file system of PATH_ROOT, whatever --workdir-mb says."""
    from hero_logic.kernel import _workdirs

    set_(_workdirs.WorkdirQuota, "from_config", classmethod(lambda cls, config: cls(config)))


def _no_cgroups(set_: Setter) -> None:
    from hero_logic.sandbox import _cgroup

    set_(_cgroup.CgroupTree, "probe", classmethod(lambda cls, tag, **kw: None))


def _no_seccomp(set_: Setter) -> None:
    _edit_bwrap(lambda argv: _drop(argv, "--seccomp", 1))(set_)


def _follow_symlinks(set_: Setter) -> None:
    from hero_logic.kernel import _runner

    def write_through(path: Any, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)

    set_(_runner, "_write_private", write_through)
    set_(_runner, "_private_dir", lambda path: path.mkdir(exist_ok=True))


def _fail_open(set_: Setter) -> None:
    from hero_logic.kernel import _errors, _open

    real = _open.select_sandbox_tier

    def downgrade(config: Any) -> Any:
        import attrs

        try:
            return real(config)
        except _errors.SandboxUnavailable:
            return real(attrs.evolve(config, sandbox="env_scrub"))

    set_(_open, "select_sandbox_tier", downgrade)


def _no_min_tier(set_: Setter) -> None:
    from hero_logic.kernel import _kernel

    set_(_kernel.Kernel, "_sandbox_problem", lambda self, version: "")


def _spawn_in_thread(set_: Setter) -> None:
    import threading

    from hero_logic.plugins.executor import _process

    real = _process._spawn

    def in_a_thread(launch: Any) -> Any:  # as trio.lowlevel.open_process does
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(real(launch)))
        thread.start()
        thread.join()
        return result[0]

    set_(_process, "_spawn", in_a_thread)
    # ... and every flow forked by the service itself (no spawner, whose own thread lives on)
    set_(_process.ProcessExecutor, "from_config", classmethod(lambda cls, config: cls()))


def _no_limits(set_: Setter) -> None:
    _no_cgroups(set_)
    from hero_logic.sandbox import _scope

    set_(_scope, "rlimits_for", lambda limits, **kw: {})


def _pasta_forwards(set_: Setter) -> None:
    """pasta with its defaults: the namespace's loopback ports forwarded to the host's."""
    import tempfile
    from pathlib import Path

    from hero_logic.sandbox import _bwrap

    text = _bwrap.NETNS_BOOT.read_text()
    for flag in ('"-T", "none", "-U", "none",', '"--no-map-gw",'):
        assert flag in text, flag
        text = text.replace(flag, "")
    copy = Path(tempfile.mkdtemp(prefix="hl-weak-")) / "_netns_boot.py"
    copy.write_text(text)
    set_(_bwrap, "NETNS_BOOT", copy)


def _no_timeout(set_: Setter) -> None:
    from hero_logic.plugins.executor import _process

    real = _process._supervise

    async def never(*args: Any, timeout_s: float, **kw: Any) -> Any:  # cold and warm runs alike
        return await real(*args, timeout_s=1e9, **kw)

    set_(_process, "_supervise", never)


def _no_tier_tag(set_: Setter) -> None:
    import attrs

    from hero_logic.kernel import _runner

    real = _runner.PlayRunner.stage

    def untagged(self: Any, *args: Any) -> Any:
        launch = real(self, *args)
        env = {k: v for k, v in launch.env.items() if k != "HERO_FLOW_SANDBOX"}
        return attrs.evolve(launch, env=env)

    set_(_runner.PlayRunner, "stage", untagged)


WEAKENINGS: dict[str, Callable[[Setter], None]] = {
    "no_tier_tag": _no_tier_tag,
    "no_limits": _no_limits,
    "no_timeout": _no_timeout,
    "spawn_in_thread": _spawn_in_thread,
    "dumpable": _dumpable,
    "inherit_fds": _inherit_fds,
    "share_net": _edit_bwrap(_share_net),
    "pasta_forwards": _pasta_forwards,
    "host_root": _edit_bwrap(_host_root),
    "no_pidns": _edit_bwrap(_no_pidns),
    "host_tmp": _edit_bwrap(_host_tmp),
    "no_die_with_parent": _no_die_with_parent,
    "no_cgroups": _no_cgroups,
    "no_workdir_quota": _no_workdir_quota,
    "root_flows": _root_flows,
    "no_limit_watch": _no_limit_watch,
    "no_seccomp": _no_seccomp,
    "follow_symlinks": _follow_symlinks,
    "fail_open": _fail_open,
    "no_min_tier": _no_min_tier,
}


def apply(set_: Setter, name: str | None = None) -> str:
    """Apply the weakenings named (comma-separated) by ``name`` or ``$HERO_SANDBOX_WEAKEN``."""
    name = name if name is not None else os.environ.get("HERO_SANDBOX_WEAKEN", "")
    for one in filter(None, name.split(",")):
        WEAKENINGS[one](set_)
    return name
