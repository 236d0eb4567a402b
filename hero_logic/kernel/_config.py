"""Settings and paths, read from command-line flags and the environment.

Every setting has a flag, an environment variable and a default (CONTRACT.md §2); a flag beats
the environment, which beats the default. :data:`SETTINGS` is the one table the CLI builds its
flags from and the README documents. Paths all derive from ``PATH_ROOT`` (default ``~/hero``)
and ``PATH_SOCKET`` (default ``$PATH_ROOT/var/sockets``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["SETTINGS", "Config", "Setting", "parse_rate_limit", "real_python", "warm_pool_minimum"]


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


def warm_pool_minimum(spec: str, tier: str) -> int:
    """The minimum of ``tier``'s warm pool from ``--warm-pool-min`` (``N``, or ``TIER=N,...``
    where a tier not named gets 0); ConfigError if ``spec`` is not shaped so."""
    spec = spec.strip()
    if not spec:
        return 0
    if "=" not in spec:
        return _non_negative_int("HERO_LOGIC_WARM_POOL_MIN")(spec)
    found = 0
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            msg = f"setting HERO_LOGIC_WARM_POOL_MIN takes N or TIER=N,... (e.g. bwrap=2,env_scrub=1), got {item!r}"
            raise ConfigError(msg)
        value = _non_negative_int("HERO_LOGIC_WARM_POOL_MIN")(raw.strip())
        if name.strip() == tier:
            found = value
    return found


def _warm_pool_min(raw: str) -> str:
    warm_pool_minimum(raw, "")  # shape checked at start-up; the tier picks its own value
    return raw.strip()


def _text(raw: str) -> str:
    return raw


_RATE_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}


def parse_rate_limit(raw: str, *, setting: str, example: str) -> tuple[float, int]:
    """``"20/s,burst=100"`` → ``(20.0, 100)``: units per second and the most held at once.

    The rate may be per ``s``, ``min`` or ``h`` (``30/min`` is 0.5 a second); both parts are
    required, the rate above 0 and the burst a whole number of 1 or more. A ConfigError names
    ``setting``, the value and the expected form, with ``example``."""
    rate_part, sep, burst_part = raw.partition(",")
    number, slash, unit = rate_part.strip().partition("/")
    key, equals, burst_text = burst_part.strip().partition("=")
    try:
        rate = float(number) / _RATE_UNITS[unit.strip()] if slash else math.nan
        burst = int(burst_text) if sep and equals and key.strip() == "burst" else 0
    except (ValueError, KeyError):
        rate, burst = math.nan, 0
    if not (math.isfinite(rate) and rate > 0 and burst >= 1):
        msg = (
            f"setting {setting} must be RATE/s,burst=N (a rate above 0 per s, min or h, and a "
            f"whole burst of 1 or more), got {raw!r}: use e.g. {example}"
        )
        raise ConfigError(msg)
    return rate, burst


def _rate_limit(setting: str, example: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parse_rate_limit(raw, setting=setting, example=example)
        return raw.strip()

    return parse


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
    Setting("max_batch_length", "--max-batch", "HERO_LOGIC_MAX_BATCH", "100", "most requests in one JSON-RPC batch; a longer batch is refused whole (-32600)", _positive_int("HERO_LOGIC_MAX_BATCH")),
    Setting("max_response_bytes", "--max-response", "HERO_LOGIC_MAX_RESPONSE_BYTES", str(16 * 1024 * 1024), "bound of a batch's answers, in bytes: once passed, the rest of the batch is not run (-32600)", _positive_int("HERO_LOGIC_MAX_RESPONSE_BYTES")),
    Setting("header_timeout_ms", "--header-timeout", "HERO_LOGIC_HEADER_TIMEOUT_MS", "10000", "ms a connection has to send a request's headers, from its opening or its previous answer (an idle keep-alive connection is closed after as long)", _positive_int("HERO_LOGIC_HEADER_TIMEOUT_MS")),
    Setting("body_timeout_ms", "--body-timeout", "HERO_LOGIC_BODY_TIMEOUT_MS", "15000", "ms a request has to send its whole body once its headers are in; later, it is answered 408", _positive_int("HERO_LOGIC_BODY_TIMEOUT_MS")),
    Setting("max_connections", "--max-connections", "HERO_LOGIC_MAX_CONNECTIONS", "256", "connections each listener (rpc.sock, admin.sock, the admin's TCP port) serves at once; a newcomer displaces the one that has owed its request longest, or gets 503 when all are busy", _positive_int("HERO_LOGIC_MAX_CONNECTIONS")),
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
    Setting("webhook_bind", "--webhook-bind", "HERO_LOGIC_WEBHOOK_BIND", "127.0.0.1:9821", "HTTP address of the ingress (resume links, approval pages, inbound webhooks), or 'none'"),
    Setting("public_url", "--public-url", "HERO_LOGIC_PUBLIC_URL", "", "base URL people and webhook senders reach the ingress at (default http://<webhook-bind>)"),
    Setting("resume_url_ttl_s", "--resume-url-ttl", "HERO_LOGIC_RESUME_URL_TTL_S", "604800", "seconds a resume link stays valid", _positive_int("HERO_LOGIC_RESUME_URL_TTL_S")),
    Setting("webhook_rate_per_address", "--webhook-rate-per-address", "HERO_LOGIC_WEBHOOK_RATE_PER_ADDRESS", "20/s,burst=100", "requests the ingress takes from one remote TCP address: RATE/s (or /min, /h) and the burst allowed at once; more get 429 with Retry-After (loopback and the Unix socket are exempt)", _rate_limit("HERO_LOGIC_WEBHOOK_RATE_PER_ADDRESS / --webhook-rate-per-address", "20/s,burst=100")),
    Setting("webhook_rate_per_key", "--webhook-rate-per-key", "HERO_LOGIC_WEBHOOK_RATE_PER_KEY", "50/s,burst=300", "requests the ingress takes for one resume link or webhook, from every address together: RATE/s (or /min, /h) and the burst allowed at once; more get 429 with Retry-After", _rate_limit("HERO_LOGIC_WEBHOOK_RATE_PER_KEY / --webhook-rate-per-key", "50/s,burst=300")),
    Setting("webhook_max_body", "--webhook-max-body", "HERO_LOGIC_WEBHOOK_MAX_BODY", str(1024 * 1024), "largest webhook delivery body, in bytes (larger ones get 413)", _positive_int("HERO_LOGIC_WEBHOOK_MAX_BODY")),
    Setting("sleep_exit_ms", "--sleep-exit", "HERO_LOGIC_SLEEP_EXIT_MS", "2000", "a flow's wait longer than this (ms) exits its process and is woken by the service's timer; a shorter sleep stays in the process", _positive_int("HERO_LOGIC_SLEEP_EXIT_MS")),
    Setting("max_wait_ms", "--max-wait", "HERO_LOGIC_MAX_WAIT_MS", str(366 * 24 * 3600 * 1000), "longest wait a flow may ask for (flow.sleep, a wait's timeout), in ms", _positive_int("HERO_LOGIC_MAX_WAIT_MS")),
    Setting("event_retention_ms", "--event-retention", "HERO_LOGIC_EVENT_RETENTION_MS", "86400000", "how long a sent event is kept as a mailbox for plays that wait for it later, in ms", _positive_int("HERO_LOGIC_EVENT_RETENTION_MS")),
    Setting("seed_flows", "--seed-flows", "HERO_LOGIC_SEED_FLOWS", "on", "seed the bundled example flows at start-up (once each, by name): on or off", _on_off("HERO_LOGIC_SEED_FLOWS")),
    Setting("warm_pool", "--warm-pool", "HERO_LOGIC_WARM_POOL", "2", "warm flow processes kept ready (per environment), each already in its sandbox with the SDK imported and used for one play only; 0 disables (every play starts cold)", _non_negative_int("HERO_LOGIC_WARM_POOL")),
    Setting("warm_pool_min", "--warm-pool-min", "HERO_LOGIC_WARM_POOL_MIN", "1", "warm processes refilled at once even while plays run (the rest of the pool refills while no play runs): N, or TIER=N,... per sandbox tier", _warm_pool_min),
    Setting("warm_pool_max_idle_s", "--warm-pool-max-idle", "HERO_LOGIC_WARM_POOL_MAX_IDLE", "300", "seconds a warm process may wait unused before it is replaced by a fresh one", _positive_int("HERO_LOGIC_WARM_POOL_MAX_IDLE")),
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
    max_batch_length: int = 100
    max_response_bytes: int = 16 * 1024 * 1024
    header_timeout_ms: int = 10_000
    body_timeout_ms: int = 15_000
    max_connections: int = 256
    kill_grace_ms: int = 2000
    lmdb_map_size: int = 64 * 1024 * 1024
    python: str = attrs.field(factory=real_python)
    seed_flows: bool = True
    version_picker: str = "weighted"
    max_descendants: int = 1000
    max_pending: int = 10_000
    webhook_bind: str = "127.0.0.1:9821"
    public_url: str = ""
    resume_url_ttl_s: int = 604_800
    webhook_max_body: int = 1024 * 1024
    webhook_rate_per_address: str = "20/s,burst=100"
    webhook_rate_per_key: str = "50/s,burst=300"
    span_push_outputs: bool = False
    index_url: str = ""
    find_links: str = ""
    allow_direct_deps: bool = False
    service_sockets: str = ""
    warm_pool: int = 2
    warm_pool_min: str = "1"
    warm_pool_max_idle_s: int = 300
    workdir_mb: int = 1024
    retention_days: int = 0
    sleep_exit_ms: int = 2000
    max_wait_ms: int = 366 * 24 * 3600 * 1000
    event_retention_ms: int = 86_400_000

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
    def ingress_socket(self) -> Path:
        """The ingress's Unix socket (beside its TCP address; for local tools and tests)."""
        return self.socket_dir / "ingress.sock"

    @property
    def resume_links_key_file(self) -> Path:
        """The 0600 key that signs resume links (outside the database)."""
        return self.state_dir / "resume_links.key"

    @property
    def ingress_public_url(self) -> str:
        """The base URL of resume links and webhooks."""
        if self.public_url:
            return self.public_url.rstrip("/")
        bind = self.webhook_bind.strip()
        return f"http://{bind}" if bind and bind.lower() not in ("none", "off") else "http://127.0.0.1:9821"

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
