"""The ``nsjail`` tier: the bwrap tier's policy written as an nsjail config.

Used only where the ``nsjail`` binary is installed (Debian 12 does not package it); choosing it
where it is missing or broken is a start-up error. The config (protobuf text format, fields
of nsjail's ``config.proto``) is generated per play by :func:`nsjail_config`, a pure function
that is unit-tested where the binary is absent:

* every namespace, the network included (a ``network=True`` play is refused: nsjail cannot
  attach pasta yet, and the host's namespace would expose its loopback), and uid/gid 65534
  inside; no capabilities (nsjail drops them), no new privileges, a new session;
* the version's environment at ``/hero/packages`` and its declared service sockets under
  ``/hero/services/``, read-only;
* the same read-only binds as the bwrap tier (``/usr``, the interpreter's prefix, the SDK,
  the play's files under ``/hero/play``), the workdir read-write at ``/hero/work``, private
  size-capped ``/tmp`` and ``/dev/shm``, a procfs of its own;
* the rlimits of :class:`~._policy.SandboxLimits`; processes and memory through the same
  per-play cgroup as the other tiers (nsjail inherits it from the service's child set-up);
* the seccomp deny list of :mod:`._seccomp` as a Kafel policy (``seccomp_string``).

nsjail reads mount sources by path: the service opens each with ``O_NOFOLLOW`` first and
refuses a symlink (the files live in the play directory, which a jailed flow cannot write).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import SandboxUnavailable
from hero_logic.sdk import ENV_PACKAGES, ENV_SERVICES

from ._bwrap import (
    INSIDE_PACKAGES,
    INSIDE_SDK,
    INSIDE_SERVICES,
    INSIDE_WORK,
    SANDBOX_UID,
    inside_command,
    inside_paths,
    interpreter_prefix,
    open_path,
)
from ._policy import MIB, SandboxLimits, rlimits_for, scrubbed_env
from ._scope import Containment
from ._seccomp import CLONE_NEW_FLAGS, DENIED_SYSCALLS, TIOCLINUX, TIOCSTI

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hero_logic.kernel import Config, Launch

__all__ = ["KAFEL_DENIED", "NsjailTier", "kafel_policy", "nsjail_config"]

_UNKNOWN_TO_KAFEL = frozenset({
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_file_load",
})
"""Calls younger than Kafel's syscall tables: naming them would make nsjail reject the policy."""

KAFEL_DENIED = tuple(name for name in DENIED_SYSCALLS if name not in _UNKNOWN_TO_KAFEL)
"""The deny list of :mod:`._seccomp` (one list for both tiers) minus what Kafel cannot name."""

_PROBE_TIMEOUT_S = 20
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _q(text: str) -> str:
    """A protobuf text-format string literal (JSON escaping is a subset it accepts)."""
    return json.dumps(text)


def kafel_policy(*, allow_network: bool) -> str:
    """The seccomp deny list as a Kafel policy."""
    families = (1, 2, 10, 16) if allow_network else (1,)
    family_test = " && ".join(f"domain != {f}" for f in families)
    clone_mask = 0
    for flag in CLONE_NEW_FLAGS:
        clone_mask |= flag
    return (
        f"ERRNO(1) {{ {', '.join(KAFEL_DENIED)} }} "
        f"ERRNO(1) {{ clone(flags, stack, ptid, ctid, tls) {{ (flags & {clone_mask:#x}) != 0 }} }} "
        "ERRNO(38) { clone3 } "
        f"ERRNO(1) {{ ioctl(fd, request) {{ (request & 0xffffffff) == {TIOCSTI:#x} "
        f"|| (request & 0xffffffff) == {TIOCLINUX:#x} }} }} "
        f"ERRNO(97) {{ socket(domain, type, protocol) {{ {family_test} }} }} "
        "DEFAULT ALLOW"
    )


def _mount(src: str, dst: str, *, rw: bool = False) -> str:
    return f"mount {{ src: {_q(src)} dst: {_q(dst)} is_bind: true rw: {str(rw).lower()} }}"


def _tmpfs(dst: str, size: int) -> str:
    return f'mount {{ dst: {_q(dst)} fstype: "tmpfs" rw: true options: {_q(f"size={size},mode=1777")} }}'


def nsjail_config(
    *,
    name: str,
    python: str,
    limits: SandboxLimits,
    network: bool,
    env: Mapping[str, str],
    files: Sequence[tuple[str, str]],
    sdk_dir: str,
    workdir: str,
    memory_cgroup: bool,
    seccomp: bool = True,
) -> str:
    """The nsjail config of one play run (pure: paths in, text out)."""
    rlimits = rlimits_for(limits, memory_cgroup=memory_cgroup)
    lines = [
        f"name: {_q(name)}",
        "mode: ONCE",
        'hostname: "hero-flow"',
        f"cwd: {_q(INSIDE_WORK)}",
        "time_limit: 0",
        "log_level: WARNING",
        "keep_env: false",
        *(f"envar: {_q(f'{k}={v}')}" for k, v in sorted(env.items())),
        "skip_setsid: false",
        "keep_caps: false",
        "disable_no_new_privs: false",
        f"rlimit_as: {rlimits['RLIMIT_AS'] // MIB}",
        f"rlimit_cpu: {rlimits['RLIMIT_CPU']}",
        f"rlimit_fsize: {rlimits['RLIMIT_FSIZE'] // MIB}",
        f"rlimit_nofile: {rlimits['RLIMIT_NOFILE']}",
        "rlimit_core: 0",
        f"clone_newnet: {str(not network).lower()}",
        "clone_newuser: true",
        "clone_newns: true",
        "clone_newpid: true",
        "clone_newipc: true",
        "clone_newuts: true",
        "clone_newcgroup: true",
        f'uidmap {{ inside_id: "{SANDBOX_UID}" outside_id: "" count: 1 }}',
        f'gidmap {{ inside_id: "{SANDBOX_UID}" outside_id: "" count: 1 }}',
        "mount_proc: false",
        _mount("/usr", "/usr"),
    ]
    for path in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache"):
        if os.path.exists(path):
            lines.append(_mount(path, path))
    if network:
        for path in ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl"):
            if os.path.exists(path):
                lines.append(_mount(path, path))
    prefix = interpreter_prefix(python)
    if not prefix.startswith("/usr/") and prefix != "/usr":
        lines.append(_mount(prefix, prefix))
    lines += [
        'mount { dst: "/proc" fstype: "proc" rw: false }',
        _tmpfs("/tmp", limits.tmp_mb * MIB),
        'mount { dst: "/dev" fstype: "tmpfs" rw: true options: "size=65536,mode=755" }',
        *(_mount(dev, dev, rw=True) for dev in _DEVICES),
        _tmpfs("/dev/shm", limits.tmp_mb * MIB),
        _mount(sdk_dir, INSIDE_SDK),
        *(_mount(host, inside) for host, inside in files),
        _mount(workdir, INSIDE_WORK, rw=True),
    ]
    if seccomp:
        lines.append(f"seccomp_string: {_q(kafel_policy(allow_network=network))}")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@attrs.define(eq=False)
class NsjailTier:
    """nsjail with the bwrap tier's policy (``hero_logic.sandbox``); needs the binary."""

    containment: Containment
    python: str
    binary: str = "nsjail"
    name: str = "nsjail"
    strength: int = 40
    _resolved: str = ""

    @classmethod
    def from_config(cls, config: Config) -> NsjailTier:
        """The tier with the limits of the ``--sandbox`` options; nsjail found on PATH."""
        return cls(containment=Containment.from_config(config), python=config.python)

    def _binary(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            msg = (
                f"sandbox tier nsjail: {self.binary!r} is not installed or not on PATH (Debian 12 "
                "does not package it): build nsjail from source, or use --sandbox bwrap"
            )
            raise SandboxUnavailable(msg)
        return found

    def check(self) -> None:
        """Run a trivial command in a jail configured like a play's (fails closed)."""
        binary = self._binary()
        with tempfile.TemporaryDirectory(prefix="hero-nsjail-") as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            config = Path(tmp) / "probe.cfg"
            config.write_text(
                nsjail_config(
                    name="hero_logic probe",
                    python=self.python,
                    limits=self.containment.limits,
                    network=False,
                    env={},
                    files=[],
                    sdk_dir=tmp,
                    workdir=str(work),
                    memory_cgroup=False,
                )
            )
            argv = [binary, "--config", str(config), "--", os.path.realpath(self.python), "-I", "-S", "-c", "pass"]
            try:
                result = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                msg = f"sandbox tier nsjail: {binary} cannot run: {exc}"
                raise SandboxUnavailable(msg) from None
        if result.returncode != 0:
            why = result.stderr.decode(errors="replace").strip()[-500:] or f"exit {result.returncode}"
            msg = f"sandbox tier nsjail: {binary} cannot build a jail here ({why})"
            raise SandboxUnavailable(msg)
        self._resolved = binary

    def prepare(self) -> None:
        """Check nsjail works here and set up the containment."""
        self.check()
        self.containment.prepare(self.name)

    def wrap(self, launch: Launch) -> Launch:
        """``launch`` as an nsjail command line with a config written in the play directory."""
        if launch.allow_network:
            msg = (
                f"play {launch.play_sid} asks for the network (@flow(network=True)); the nsjail "
                "tier cannot yet give a play a network namespace of its own (only the host's, "
                "which would expose the host's loopback services): run the service with --sandbox bwrap"
            )
            raise SandboxUnavailable(msg)
        env, files = inside_paths(launch)
        env = scrubbed_env(env, home=INSIDE_WORK)
        env["TMPDIR"] = "/tmp"
        if launch.packages_dir is not None:
            files.append((launch.packages_dir, INSIDE_PACKAGES))
            env[ENV_PACKAGES] = INSIDE_PACKAGES
        if launch.service_sockets:
            inside_sockets = {name: f"{INSIDE_SERVICES}/{name}" for name in sorted(launch.service_sockets)}
            files += [(launch.service_sockets[name], inside) for name, inside in inside_sockets.items()]
            env[ENV_SERVICES] = json.dumps(inside_sockets)
        config_path = launch.play_dir / "nsjail.cfg"
        try:
            for host, inside in files:
                os.close(open_path(host, directory=inside == INSIDE_PACKAGES))
            os.close(open_path(launch.workdir, directory=True))
            scope = self.containment.open_scope(launch.play_sid, wrapper_exit=True)
        except OSError as exc:
            msg = f"cannot prepare the nsjail sandbox of play {launch.play_sid}: {exc}"
            raise SandboxUnavailable(msg) from None
        text = nsjail_config(
            name=f"hero_logic play {launch.play_sid}",
            python=self.python,
            limits=self.containment.limits,
            network=launch.allow_network,
            env=env,
            files=[(str(host), inside) for host, inside in files],
            sdk_dir=str(launch.sdk_dir),
            workdir=str(launch.workdir),
            memory_cgroup=scope.cgroup is not None,
        )
        _write_private(config_path, text)
        setup, rlimits = self.containment.child_setup(
            scope, drop_capabilities=False, overrides=launch.rlimits
        )
        argv = [
            self._resolved or self._binary(),
            "--config",
            str(config_path),
            "--",
            *inside_command(launch, self.python),
        ]
        return attrs.evolve(
            launch, argv=tuple(argv), env={}, preexec=setup, setup=setup.spec, rlimits=rlimits, scope=scope
        )

    def close(self) -> None:
        """Stop the cgroup watchdog."""
        self.containment.close()
