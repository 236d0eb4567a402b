"""Settings and paths, read from command-line flags and the environment.

Every setting has a flag, an environment variable and a default (CONTRACT.md §2); a flag beats
the environment, which beats the default. :data:`SETTINGS` is the one table the CLI builds its
flags from and the README documents. Paths all derive from ``PATH_ROOT`` (default ``~/hero``)
and ``PATH_SOCKET`` (default ``$PATH_ROOT/var/sockets``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["SETTINGS", "Config", "Setting", "real_python"]


def real_python() -> str:
    """The absolute, resolved path of the interpreter running the service.

    Flows are spawned with this path, never with a bare ``python3``: on this kind of machine
    ``python3`` on PATH is a shell shim, and with a scrubbed environment exec would silently
    fall back to another interpreter.
    """
    return os.path.realpath(sys.executable)


def _positive_int(name: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            msg = f"setting {name} must be a positive integer, got {raw!r}"
            raise ConfigError(msg) from None
        if value <= 0:
            msg = f"setting {name} must be a positive integer, got {value}"
            raise ConfigError(msg)
        return value

    return parse


def _non_negative_int(name: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            msg = f"setting {name} must be a whole number (0 or more), got {raw!r}"
            raise ConfigError(msg) from None
        if value < 0:
            msg = f"setting {name} must be 0 or more, got {value}"
            raise ConfigError(msg)
        return value

    return parse


def _text(raw: str) -> str:
    return raw


def _on_off(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("1", "on", "true", "yes"):
            return True
        if value in ("0", "off", "false", "no"):
            return False
        msg = f"setting {name} must be on or off, got {raw!r}"
        raise ConfigError(msg)

    return parse


@attrs.frozen
class Setting:
    """One row of the settings table: attribute, flag, environment variable, default, help."""

    attr: str
    flag: str
    env: str
    default: str
    help: str
    parse: Callable[[str], Any] = _text
    repeat: bool = False
    """The flag may be given several times; its values are joined with commas."""


SETTINGS: tuple[Setting, ...] = (
    Setting("root", "--root", "PATH_ROOT", "~/hero", "root of all state (db, plays, sockets)"),
    Setting("socket_root", "--socket-dir", "PATH_SOCKET", "", "socket directory root (default $PATH_ROOT/var/sockets)"),
    Setting("sandbox", "--sandbox", "HERO_LOGIC_SANDBOX", "auto", "sandbox tier: auto (strongest available), env_scrub, bwrap or nsjail, optionally with limits, e.g. bwrap:memory_mb=512,pids=128 (see docs/sandbox.md)"),
    Setting("store", "--store", "HERO_LOGIC_STORE", "lmdb", "store plugin: lmdb or memory"),
    Setting("admin_bind", "--admin-bind", "HERO_LOGIC_ADMIN_BIND", "127.0.0.1:9820", "admin TCP address, or 'none'"),
    Setting("play_timeout_ms", "--play-timeout", "HERO_LOGIC_PLAY_TIMEOUT_MS", "300000", "default wall-clock limit of a play, in ms", _positive_int("HERO_LOGIC_PLAY_TIMEOUT_MS")),
    Setting("max_running", "--max-running", "HERO_LOGIC_MAX_RUNNING", "8", "plays running at once; the rest wait as pending", _positive_int("HERO_LOGIC_MAX_RUNNING")),
    Setting("max_body_bytes", "--max-body", "HERO_LOGIC_MAX_BODY_BYTES", str(8 * 1024 * 1024), "largest accepted RPC body, in bytes", _positive_int("HERO_LOGIC_MAX_BODY_BYTES")),
    Setting("kill_grace_ms", "--kill-grace", "HERO_LOGIC_KILL_GRACE_MS", "2000", "ms between TERM and KILL of a flow process", _positive_int("HERO_LOGIC_KILL_GRACE_MS")),
    Setting("lmdb_map_size", "--lmdb-map-size", "HERO_LOGIC_LMDB_MAP_SIZE", str(64 * 1024 * 1024), "initial LMDB map size in bytes (it grows when full)", _positive_int("HERO_LOGIC_LMDB_MAP_SIZE")),
    Setting("python", "--python", "HERO_LOGIC_PYTHON", "", "interpreter for flows (default: the service's own, resolved)"),
    Setting("version_picker", "--version-picker", "HERO_LOGIC_VERSION_PICKER", "weighted", "version picker plugin used by pick_version and play_start(pick=...)"),
    Setting("max_descendants", "--max-descendants", "HERO_LOGIC_MAX_DESCENDANTS", "1000", "most child plays one root play may have below it, at every depth together", _positive_int("HERO_LOGIC_MAX_DESCENDANTS")),
    Setting("max_pending", "--max-pending", "HERO_LOGIC_MAX_PENDING", "10000", "most plays waiting for a run slot; past it new plays are refused (-32010) until the queue drains", _positive_int("HERO_LOGIC_MAX_PENDING")),
    Setting("span_push_outputs", "--span-push-outputs", "HERO_LOGIC_SPAN_PUSH_OUTPUTS", "off", "let span_push write step outputs, failures, outputs and pauses (which resumes replay): on only for tests", _on_off("HERO_LOGIC_SPAN_PUSH_OUTPUTS")),
    Setting("index_url", "--index-url", "HERO_LOGIC_INDEX_URL", "", "package index flow dependencies (PEP 723) are resolved from: a URL, 'none' for --find-links only, or empty for uv's own configuration (default PyPI)"),
    Setting("find_links", "--find-links", "HERO_LOGIC_FIND_LINKS", "", "comma-separated directories or URLs of wheels for flow dependencies", repeat=True),
    Setting("allow_direct_deps", "--allow-direct-deps", "HERO_LOGIC_ALLOW_DIRECT_DEPS", "off", "allow flow dependencies given as a local path or a VCS/URL reference: on or off", _on_off("HERO_LOGIC_ALLOW_DIRECT_DEPS")),
    Setting("service_sockets", "--service-socket", "HERO_LOGIC_SERVICE_SOCKETS", "", "local service sockets flows may declare with @flow(services=[...]): NAME=PATH (repeatable; the variable takes name=path,...)", repeat=True),
    Setting("workdir_mb", "--workdir-mb", "HERO_LOGIC_WORKDIR_MB", "1024", "size quota of each play's workdir in MiB: a file system of that size is mounted at the workdir for each run (as root); 0 turns it off (see docs/sandbox.md)", _non_negative_int("HERO_LOGIC_WORKDIR_MB")),
    Setting("retention_days", "--retention-days", "HERO_LOGIC_RETENTION_DAYS", "0", "delete ended plays (record, span events, workdir) whose whole tree ended more than this many days ago, hourly; 0 keeps every play", _non_negative_int("HERO_LOGIC_RETENTION_DAYS")),
    Setting("seed_flows", "--seed-flows", "HERO_LOGIC_SEED_FLOWS", "on", "seed the bundled example flows at start-up (once each, by name): on or off", _on_off("HERO_LOGIC_SEED_FLOWS")),
)


@attrs.frozen
class Config:
    """The resolved settings of one service instance. Build it with :meth:`load`."""

    root: Path
    socket_root: Path
    sandbox: str = "auto"
    store: str = "lmdb"
    admin_bind: str = "127.0.0.1:9820"
    play_timeout_ms: int = 300_000
    max_running: int = 8
    max_body_bytes: int = 8 * 1024 * 1024
    kill_grace_ms: int = 2000
    lmdb_map_size: int = 64 * 1024 * 1024
    python: str = attrs.field(factory=real_python)
    seed_flows: bool = True
    version_picker: str = "weighted"
    max_descendants: int = 1000
    max_pending: int = 10_000
    span_push_outputs: bool = False
    index_url: str = ""
    find_links: str = ""
    allow_direct_deps: bool = False
    service_sockets: str = ""
    workdir_mb: int = 1024
    retention_days: int = 0

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Resolve every setting: ``flags`` (attr → value, None = unset), then env, then default."""
        flags = flags or {}
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = flags.get(setting.attr)
            if isinstance(raw, list | tuple):
                raw = ",".join(str(item) for item in raw)
            if raw is None:
                raw = env.get(setting.env) or setting.default
            values[setting.attr] = setting.parse(str(raw)) if not isinstance(raw, int) else raw
        root = Path(os.path.expanduser(values.pop("root"))).absolute()
        socket_root_raw = values.pop("socket_root")
        socket_root = (
            Path(os.path.expanduser(socket_root_raw)).absolute()
            if socket_root_raw
            else root / "var" / "sockets"
        )
        python = values.pop("python") or real_python()
        if not os.path.isabs(python) or not os.access(python, os.X_OK):
            msg = (
                f"flow interpreter {python!r} is not an absolute path to an executable: "
                "set HERO_LOGIC_PYTHON / --python to e.g. /usr/bin/python3.11"
            )
            raise ConfigError(msg)
        return cls(root=root, socket_root=socket_root, python=python, **values)

    # -- derived paths -------------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        """``$PATH_SOCKET/hero_logic``: holds rpc.sock and admin.sock (mode 0700)."""
        return self.socket_root / "hero_logic"

    @property
    def rpc_socket(self) -> Path:
        """The JSON-RPC socket."""
        return self.socket_dir / "rpc.sock"

    @property
    def admin_socket(self) -> Path:
        """The admin's Unix socket."""
        return self.socket_dir / "admin.sock"

    @property
    def state_dir(self) -> Path:
        """``$PATH_ROOT/var/hero_logic``."""
        return self.root / "var" / "hero_logic"

    @property
    def db_dir(self) -> Path:
        """The LMDB environment directory."""
        return self.state_dir / "db"

    @property
    def plays_dir(self) -> Path:
        """Parent of every per-play directory."""
        return self.state_dir / "plays"

    @property
    def pid_file(self) -> Path:
        """Where the background service (``hero_logic --start``) records its pid."""
        return self.state_dir / "hero_logic.pid"

    @property
    def log_file(self) -> Path:
        """Where the background service writes its log."""
        return self.state_dir / "hero_logic.log"

    @property
    def envs_dir(self) -> Path:
        """Built flow environments, one per lock hash, and uv's cache (``envs/.uv-cache``)."""
        return self.state_dir / "envs"

    @property
    def secrets_key_file(self) -> Path:
        """The key secrets are encrypted with (0600, outside the database directory)."""
        return self.state_dir / "secrets.key"

    def play_dir(self, play_sid: str) -> Path:
        """``plays/{play_sid}``: the span socket and staged files of one play."""
        return self.plays_dir / play_sid

    def play_workdir(self, play_sid: str) -> Path:
        """``plays/{play_sid}/work``: the flow's working directory."""
        return self.play_dir(play_sid) / "work"
