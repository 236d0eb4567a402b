"""The ``bwrap`` tier: each flow in its own bubblewrap sandbox.

bubblewrap builds a new root on an empty tmpfs and shows the flow only what is bound in:

==============================  ======================================================
inside                          what
==============================  ======================================================
``/usr``, ``/lib*``, ``/bin``   the host's, read-only (``/lib`` etc. as the host's symlinks)
the interpreter's prefix        read-only, at its own path (e.g. a pyenv install)
``/hero/sdk``                   the SDK (``hero_tracing`` and the boot stub), read-only
``/hero/play/flow.py`` ...      the play's source, inputs, replay caches: read-only files
``/hero/play/span.sock``        the span socket: the flow's only way out
``/hero/work``                  the play's workdir, read-write (the cwd and HOME)
``/tmp``, ``/dev/shm``          private tmpfs, size-capped (``tmp_mb``)
``/proc``, ``/dev``             a procfs of its own PID namespace; a minimal /dev
everything else                 nothing; the root itself is read-only (``--remount-ro /``)
==============================  ======================================================

Every namespace is unshared (user, mount, PID, IPC, UTS, cgroup, and network unless the
workflow version allows it); inside, the flow runs as uid 65534 with no capability and may not
create user namespaces; ``--new-session`` (no terminal injection) and ``--die-with-parent``.
The service binds the play's files through descriptors opened with ``O_NOFOLLOW``
(``--bind-fd``), so a symlink planted where a bind source should be is never followed. A
seccomp filter (:mod:`._seccomp`) denies what flows never need. Resource limits: rlimits on
the bwrap process (inherited), and the per-play cgroup where the service may create one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import SandboxUnavailable, WarmAssignment
from hero_logic.sdk import ENV_PACKAGES, ENV_SERVICES

from ._policy import MIB, SandboxLimits, scrubbed_env
from ._scope import Containment
from ._seccomp import SeccompUnavailable, build_filter, filter_fd
from ._warm import show_play, warm_eligible

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hero_logic.kernel import Config, Launch

__all__ = [
    "INSIDE_PLAY",
    "INSIDE_SDK",
    "INSIDE_WORK",
    "BwrapTier",
    "bwrap_argv",
    "inside_command",
    "inside_paths",
    "interpreter_prefix",
    "open_path",
]

INSIDE_PLAY = "/hero/play"
INSIDE_WORK = "/hero/work"
INSIDE_SDK = "/hero/sdk"
INSIDE_PACKAGES = "/hero/packages"
INSIDE_SERVICES = "/hero/services"
NETNS_BOOT = Path(__file__).with_name("_netns_boot.py")
"""The wrapper that attaches pasta to a ``network=True`` play's namespace (:mod:`._netns_boot`)."""
SANDBOX_UID = 65534
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache",)
_NETWORK_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
)
_PROBE_TIMEOUT_S = 20


def interpreter_prefix(python: str) -> str:
    """The installation prefix of ``python`` (``/x/bin/python3.11`` → ``/x``)."""
    real = Path(os.path.realpath(python))
    return str(real.parent.parent) if real.parent.name == "bin" else str(real.parent)


def system_binds(*, network: bool) -> list[str]:
    """Read-only binds of the host's system paths (``/lib`` as the host's symlink to usr/lib)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _SYSTEM_FILES + (_NETWORK_FILES if network else ()):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def bwrap_argv(
    binary: str,
    *,
    python: str,
    limits: SandboxLimits,
    network: bool,
    binds: Sequence[str],
    seccomp_fd: int | None,
    command: Sequence[str],
    share_net: bool | None = None,
) -> list[str]:
    """The bwrap command line (pure: the caller supplies the play's binds and descriptors).

    ``network`` lets the flow use internet sockets and binds the resolver files;
    ``share_net`` (default: ``network``) keeps the host's network namespace instead of a new
    one (a ``network=True`` play gets a new one with pasta attached, :mod:`._netns_boot`)."""
    prefix = interpreter_prefix(python)
    tmp = str(limits.tmp_mb * MIB)
    argv = [binary, "--unshare-all"]
    if network if share_net is None else share_net:
        argv.append("--share-net")
    argv += [
        "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        "--disable-userns", "--cap-drop", "ALL",
        "--die-with-parent", "--new-session", "--hostname", "hero-flow",
        *system_binds(network=network),
    ]  # fmt: skip
    if not prefix.startswith("/usr/") and prefix != "/usr":
        argv += ["--ro-bind", prefix, prefix]
    argv += [
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "1777", "--size", tmp, "--tmpfs", "/tmp",
        "--perms", "1777", "--size", tmp, "--tmpfs", "/dev/shm",
        *binds,
        "--remount-ro", "/",
        "--chdir", INSIDE_WORK,
    ]  # fmt: skip
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", *command]


def open_path(path: Path, *, directory: bool = False) -> int:
    """An ``O_PATH`` descriptor of ``path`` itself, refusing a symlink in its last component."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode) or (directory and not stat.S_ISDIR(mode)):
        os.close(fd)
        msg = f"refusing to bind {path}: it is not a plain {'directory' if directory else 'file'}"
        raise OSError(msg)
    return fd


def inside_paths(launch: Launch) -> tuple[dict[str, str], list[tuple[Path, str]]]:
    """The flow's environment with host paths mapped inside the sandbox, and the play's files
    to bind (host path, inside path)."""
    env = dict(launch.env)
    files: list[tuple[Path, str]] = []
    for key, value in launch.env.items():
        if not key.startswith("HERO_FLOW_") or not value.startswith("/"):
            continue
        path = Path(value)
        if path.parent == launch.play_dir and path != launch.workdir:
            inside = f"{INSIDE_PLAY}/{path.name}"
            env[key] = inside
            files.append((path, inside))
        elif path == launch.workdir or launch.workdir in path.parents:
            env[key] = INSIDE_WORK + value[len(str(launch.workdir)) :]
    return env, files


def inside_command(launch: Launch, python: str) -> list[str]:
    command = [os.path.realpath(python)]
    for arg in launch.argv[1:]:
        if arg.startswith(str(launch.sdk_dir) + "/"):
            arg = INSIDE_SDK + arg[len(str(launch.sdk_dir)) :]
        command.append(arg)
    return command


@attrs.define(eq=False)
class BwrapTier:
    """Bubblewrap namespaces, read-only binds, seccomp, limits (``hero_logic.sandbox``)."""

    containment: Containment
    python: str
    binary: str = "bwrap"
    seccomp: bool = True
    name: str = "bwrap"
    strength: int = 30
    _resolved: str = ""
    _filters: dict[bool, bytes] = attrs.Factory(dict)
    pasta: str = attrs.field(factory=lambda: shutil.which("pasta") or "")
    """pasta (Debian ``passt``): the user-mode network of ``network=True`` plays."""

    @classmethod
    def from_config(cls, config: Config) -> BwrapTier:
        """The tier with the limits of the ``--sandbox`` options; bwrap found on PATH."""
        return cls(containment=Containment.from_config(config), python=config.python)

    def _binary(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            msg = (
                f"sandbox tier bwrap: {self.binary!r} is not installed or not on PATH: install "
                "bubblewrap (apt-get install bubblewrap) or pick another tier with --sandbox"
            )
            raise SandboxUnavailable(msg)
        return found

    def check(self) -> None:
        """Run a trivial flow-like command in a sandbox built like a play's (fails closed)."""
        binary = self._binary()
        if self.seccomp:
            try:
                build_filter(allow_network=False)
            except SeccompUnavailable as exc:
                msg = f"sandbox tier bwrap: {exc}"
                raise SandboxUnavailable(msg) from None
        argv = bwrap_argv(
            binary,
            python=self.python,
            limits=self.containment.limits,
            network=False,
            binds=[],
            seccomp_fd=None,
            command=[os.path.realpath(self.python), "-I", "-S", "-c", "import os, sys"],
        )
        argv[argv.index("--chdir") + 1] = "/"
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROBE_TIMEOUT_S,
                env={"PATH": "/usr/bin:/bin"},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"sandbox tier bwrap: {binary} cannot run: {exc}"
            raise SandboxUnavailable(msg) from None
        if result.returncode != 0:
            why = result.stderr.decode(errors="replace").strip()[-500:] or f"exit {result.returncode}"
            msg = (
                f"sandbox tier bwrap: {binary} cannot build a sandbox here ({why}): check that "
                "unprivileged user namespaces are allowed and bubblewrap >= 0.8 is installed"
            )
            raise SandboxUnavailable(msg)
        self._resolved = binary

    def prepare(self) -> None:
        """Check bwrap works here, build the seccomp filters, set up the containment."""
        self.check()
        if self.seccomp:
            for network in (False, True):
                self._filters[network] = build_filter(allow_network=network)
        self.containment.prepare(self.name)

    def wrap(self, launch: Launch) -> Launch:
        """``launch`` as a bwrap command line with its binds, limits and scope."""
        if launch.allow_network and not self.pasta:
            msg = (
                f"play {launch.play_sid} asks for the network (@flow(network=True)), which the "
                "bwrap tier gives through pasta, and pasta is not installed: apt-get install passt"
            )
            raise SandboxUnavailable(msg)
        env, files = inside_paths(launch)
        env = scrubbed_env(env, home=INSIDE_WORK)
        env["TMPDIR"] = "/tmp"
        fds: list[int] = []
        try:
            binds = ["--ro-bind", str(launch.sdk_dir), INSIDE_SDK]
            if launch.bind_play_dir:  # a warm process: its play's files are linked in later
                fd = open_path(launch.play_dir, directory=True)
                fds.append(fd)
                binds += ["--ro-bind-fd", str(fd), INSIDE_PLAY]
            for host, inside in files:
                fd = open_path(host)
                fds.append(fd)
                binds += ["--ro-bind-fd", str(fd), inside]
            if launch.packages_dir is not None:
                fd = open_path(launch.packages_dir, directory=True)
                fds.append(fd)
                binds += ["--ro-bind-fd", str(fd), INSIDE_PACKAGES]
                env[ENV_PACKAGES] = INSIDE_PACKAGES
            if launch.service_sockets:
                inside_sockets = {}
                for name, path in sorted(launch.service_sockets.items()):
                    fd = open_path(path)
                    fds.append(fd)
                    inside_sockets[name] = f"{INSIDE_SERVICES}/{name}"
                    binds += ["--ro-bind-fd", str(fd), inside_sockets[name]]
                env[ENV_SERVICES] = json.dumps(inside_sockets)
            fd = open_path(launch.workdir, directory=True)
            fds.append(fd)
            binds += ["--bind-fd", str(fd), INSIDE_WORK]
            seccomp_fd = None
            if self.seccomp:
                seccomp_fd = filter_fd(self._program(launch.allow_network))
                fds.append(seccomp_fd)
            scope = self.containment.open_scope(launch.play_sid, wrapper_exit=True)
        except (OSError, SandboxUnavailable) as exc:
            for fd in fds:
                os.close(fd)
            msg = f"cannot prepare the bwrap sandbox of play {launch.play_sid}: {exc}"
            raise SandboxUnavailable(msg) from None
        setup, rlimits = self.containment.child_setup(
            scope, drop_capabilities=False, overrides=launch.rlimits
        )
        argv = bwrap_argv(
            self._resolved or self._binary(),
            python=self.python,
            limits=self.containment.limits,
            network=launch.allow_network,
            binds=binds,
            seccomp_fd=seccomp_fd,
            command=inside_command(launch, self.python),
            share_net=False,
        )
        if launch.allow_network:
            argv = self._with_pasta(argv, fds)
        return attrs.evolve(
            launch,
            argv=tuple(argv),
            env=env,
            preexec=setup,
            setup=setup.spec,
            rlimits=rlimits,
            pass_fds=(*launch.pass_fds, *fds),
            scope=scope,
        )

    def _with_pasta(self, argv: list[str], fds: list[int]) -> list[str]:
        """``argv`` run by the wrapper that attaches pasta to the play's network namespace."""
        runas = "0" if os.geteuid() == 0 else ""  # as root pasta would drop to nobody and not attach
        wrapper = [os.path.realpath(self.python), "-I", "-S", str(NETNS_BOOT), self.pasta, runas]
        return [*wrapper, ",".join(map(str, fds)), "--", *argv]

    def _program(self, network: bool) -> bytes:
        program = self._filters.get(network)
        if program is None:
            try:
                program = self._filters[network] = build_filter(allow_network=network)
            except SeccompUnavailable as exc:
                raise SandboxUnavailable(str(exc)) from None
        return program

    def wrap_warm(self, launch: Launch) -> Launch:
        """A warm process's launch: its own play directory bound at /hero/play (see :mod:`._warm`)."""
        return self.wrap(launch)

    def assign_warm(self, warm: Launch, play: Launch, *, workdir_in_place: bool = False) -> WarmAssignment:
        """Show ``play``'s files and workdir in the warm sandbox; the environment ``wrap``
        would have given it."""
        env, files = inside_paths(play)
        env = scrubbed_env(env, home=INSIDE_WORK)
        env["TMPDIR"] = "/tmp"
        if play.packages_dir is not None:
            env[ENV_PACKAGES] = INSIDE_PACKAGES
        show_play(
            warm, play, [(host, inside.removeprefix(INSIDE_PLAY + "/")) for host, inside in files], adopt=not workdir_in_place
        )
        return WarmAssignment(env=env, cwd=INSIDE_WORK)

    def warm_refusal(self) -> str:
        """"": bwrap starts warm processes."""
        return ""

    def warm_eligible(self, play: Launch) -> bool:
        """Whether ``play`` may run warm (not with the network or service sockets)."""
        return warm_eligible(play)

    def close(self) -> None:
        """Stop the cgroup watchdog."""
        self.containment.close()

