"""Flow environments: the PEP 723 dependencies of a version, locked at save, built per lock.

A version's source may open with inline script metadata (PEP 723)::

    # /// script
    # requires-python = ">=3.11"
    # dependencies = ["httpx>=0.27", "pydantic>=2"]
    # ///

At save, :meth:`Environments.resolve` checks the block (each requirement a plain name and
version specifier; a local path or URL only when the operator allows direct references;
``requires-python`` against the flow interpreter) and has **uv** resolve it for that interpreter
into pinned requirements with hashes: the version's ``lock``. A requirement uv cannot resolve
refuses the save (-32602 with uv's reason). Only wheels are accepted (``--only-binary
:all:``): installing an sdist would run its build code, which the service never does.

The environment of a lock is built once, by the service, under
``$PATH_ROOT/var/hero_logic/envs/<lock_hash>/site`` (``uv pip install --target`` with hashes
required, hardlinked from uv's cache in ``envs/.uv-cache``, so versions sharing a package
share its files on disk). It is built into a temporary directory and renamed into place, so
it exists only whole. Versions with the same lock (and interpreter) share one environment;
each version records ``env_status`` (``none | building | ready | failed``) and ``env_error``.
A play of a version whose environment is building waits ``pending``; one whose build failed
fails, naming the error. The sandbox tiers bind the environment read-only (env_scrub puts it
on the path); a flow never installs anything.

Index rows: ``env_versions`` ``{lock_hash}/{version_sid}`` (empty), ``envs`` ``{lock_hash}``
(``{"lock", "status", "error"}``). :meth:`Environments.collect` removes the environments no
version uses any more (after a workflow is deleted, and at start-up).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.kernel import (
    Delete,
    HeroLogicError,
    InvalidFlowSource,
    InvalidParams,
    KeyedLock,
    Put,
    WorkflowVersion,
)

from ._script_metadata import (
    MAX_DEPENDENCIES,
    ScriptMetadata,
    read_script_metadata,
    requirement_problem,
    requires_python_problem,
)

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.kernel import Kernel, Write

__all__ = [
    "MAX_DEPENDENCIES",
    "EnvironmentFailed",
    "Environments",
    "ScriptMetadata",
    "read_script_metadata",
    "requirement_problem",
    "requires_python_problem",
]

log = logging.getLogger("hero_logic.environments")

_HASH_DIR = re.compile(r"[0-9a-f]{64}")
RESOLVE_TIMEOUT_S = 180
BUILD_TIMEOUT_S = 900
_REASON_CHARS = 3000


class EnvironmentFailed(HeroLogicError):
    """A version's environment could not be built; its plays fail with this."""


def _reason(stderr: bytes) -> str:
    lines = [
        line for line in stderr.decode(errors="replace").splitlines()
        if line.strip() and not line.startswith(("Using CPython", "Using Python"))
    ]  # fmt: skip
    return "\n".join(lines).strip()[-_REASON_CHARS:] or "uv gave no reason"


@attrs.define(eq=False)
class Environments:
    """Locks at save, builds per lock, waits for a play, collects what no version uses."""

    kernel: Kernel
    uv: str = attrs.field(factory=lambda: _find_uv())
    _python_info: tuple[str, tuple[int, int, int]] | None = None
    _builds: dict[str, trio.Event] = attrs.Factory(dict)
    _locks: KeyedLock = attrs.Factory(KeyedLock)

    @property
    def envs_dir(self) -> Path:
        return self.kernel.config.envs_dir

    def site_dir(self, lock_hash: str) -> Path:
        """Where the environment of ``lock_hash`` lives once built (its ``site-packages``)."""
        return self.envs_dir / lock_hash / "site"

    def _source_args(self) -> list[str]:
        config = self.kernel.config
        args: list[str] = []
        index = config.index_url.strip()
        if index.lower() == "none":
            args.append("--no-index")
        elif index:
            args += ["--index-url", index]
        for link in filter(None, (part.strip() for part in config.find_links.split(","))):
            args += ["--find-links", link]
        return args

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["UV_PYTHON_DOWNLOADS"] = "never"  # the interpreter stays the service's
        env["UV_NO_PROGRESS"] = "1"
        return env

    async def _python(self) -> tuple[str, tuple[int, int, int]]:
        """The flow interpreter's identity (implementation, ABI, platform) and version."""
        if self._python_info is None:
            code = (
                "import sys, sysconfig; v = sys.version_info; "
                "print(sys.implementation.cache_tag, sysconfig.get_platform(), "
                "sysconfig.get_config_var('SOABI'), sys.abiflags, v[0], v[1], v[2])"
            )
            result = await trio.run_process(
                [self.kernel.config.python, "-I", "-S", "-c", code], capture_stdout=True, capture_stderr=True
            )
            parts = result.stdout.decode().split()
            version = (int(parts[-3]), int(parts[-2]), int(parts[-1]))
            self._python_info = (" ".join(parts), version)
        return self._python_info

    # -- at save ---------------------------------------------------------------------------------

    async def resolve(self, version: WorkflowVersion, *, context: str) -> WorkflowVersion:
        """``version`` with its dependencies locked (env_status building, or ready when an
        environment of the same lock exists); unchanged without a PEP 723 block."""
        try:
            meta = read_script_metadata(version.python_source)
        except ValueError as exc:
            raise _bad_source(context, str(exc)) from None
        if meta is None or (not meta.dependencies and not meta.requires_python):
            return version
        identity, running = await self._python()
        if meta.requires_python:
            problem = requires_python_problem(meta.requires_python, running)
            if problem:
                raise _bad_source(context, problem)
        allow = self.kernel.config.allow_direct_deps
        problems = [p for p in (requirement_problem(d, allow_direct=allow) for d in meta.dependencies) if p]
        if problems:
            raise _bad_source(context, "; ".join(problems))
        changes: dict[str, Any] = {
            "dependencies": list(meta.dependencies),
            "requires_python": meta.requires_python,
        }
        if not meta.dependencies:
            return attrs.evolve(version, **changes)
        lock = await self._compile(meta.dependencies, context=context)
        lock_hash = hashlib.sha256(f"{identity}\n{lock}".encode()).hexdigest()
        status = "ready" if self.site_dir(lock_hash).is_dir() else "building"
        return attrs.evolve(version, lock=lock, lock_hash=lock_hash, env_status=status, env_error="", **changes)

    async def _compile(self, dependencies: tuple[str, ...], *, context: str) -> str:
        work = self.envs_dir / ".resolve"
        work.mkdir(parents=True, exist_ok=True)
        with _TempDir(work) as tmp:
            requirements = tmp / "requirements.in"
            requirements.write_text("\n".join(dependencies) + "\n")
            argv = [
                self.uv, "pip", "compile", str(requirements), "--quiet", "--no-header",
                "--no-annotate", "--generate-hashes", "--only-binary", ":all:",
                "--python", self.kernel.config.python, "--cache-dir", str(self._cache()),
                *self._source_args(),
            ]  # fmt: skip
            result = await self._run_uv(argv, RESOLVE_TIMEOUT_S, what="resolving the dependencies")
        if result.returncode != 0:
            reason = _reason(result.stderr)
            msg = f"{context}: the PEP 723 dependencies cannot be resolved: {reason}"
            raise InvalidParams(msg, data=[{"field": "python_source", "error": f"dependencies cannot be resolved: {reason}"}])
        return result.stdout.decode()

    async def _run_uv(self, argv: list[str], timeout_s: float, *, what: str) -> subprocess.CompletedProcess[bytes]:
        try:
            with trio.fail_after(timeout_s):
                return await trio.run_process(
                    argv, capture_stdout=True, capture_stderr=True, check=False,
                    stdin=subprocess.DEVNULL, env=self._env(),
                )  # fmt: skip
        except trio.TooSlowError:
            msg = f"uv took longer than {timeout_s:.0f} s {what}: check that the package index is reachable"
            raise InvalidParams(msg) from None
        except OSError as exc:
            msg = f"uv cannot run ({exc}): reinstall hero-logic, which depends on the uv package"
            raise InvalidParams(msg) from None

    def _cache(self) -> Path:
        return self.envs_dir / ".uv-cache"

    def index_writes(self, version: WorkflowVersion) -> list[Write]:
        """Rows to commit with a new version that has a lock."""
        if not version.lock_hash:
            return []
        return [Put("env_versions", f"{version.lock_hash}/{version.sid}", b"")]

    async def after_save(self, version: WorkflowVersion) -> None:
        """Make sure the saved version's environment is built or being built."""
        if version.lock_hash:
            await self._ensure(version.lock_hash, version.lock)

    # -- building --------------------------------------------------------------------------------

    async def _ensure(self, lock_hash: str, lock: str) -> None:
        async with self._locks.hold(lock_hash):
            if lock_hash in self._builds:
                return
            if self.site_dir(lock_hash).is_dir():
                await self._mark(lock_hash, "ready", "")
                return
            event = self._builds[lock_hash] = trio.Event()
            await self._save_record(lock_hash, lock, "building", "")
        self.kernel.start_system_task(self._build, lock_hash, lock, event, name=f"env build {lock_hash[:12]}")

    async def _build(self, lock_hash: str, lock: str, done: trio.Event) -> None:
        status, error = "failed", "the build stopped unexpectedly"
        stopping = False
        try:
            status, error = await self._build_once(lock_hash, lock)
        except trio.Cancelled:  # the service is stopping: stays "building", resumed at start-up
            stopping = True
            raise
        finally:
            if stopping:
                self._builds.pop(lock_hash, None)
                done.set()
            else:
                with trio.CancelScope(shield=True):
                    async with self._locks.hold(lock_hash):
                        try:
                            await self._save_record(lock_hash, lock, status, error)
                            await self._mark(lock_hash, status, error)
                        finally:
                            self._builds.pop(lock_hash, None)
                            done.set()

    async def _build_once(self, lock_hash: str, lock: str) -> tuple[str, str]:
        log.info("building the environment %s", lock_hash[:12])
        self.envs_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.envs_dir / f".build-{lock_hash}-{os.urandom(4).hex()}"
        tmp.mkdir()
        try:
            (tmp / "requirements.txt").write_text(lock)
            argv = [
                self.uv, "pip", "install", "--target", str(tmp / "site"), "-r", str(tmp / "requirements.txt"),
                "--no-deps", "--require-hashes", "--only-binary", ":all:", "--link-mode", "hardlink",
                "--compile-bytecode", "--quiet", "--python", self.kernel.config.python,
                "--cache-dir", str(self._cache()), *self._source_args(),
            ]  # fmt: skip
            try:
                result = await self._run_uv(argv, BUILD_TIMEOUT_S, what="building the environment")
            except InvalidParams as exc:
                return "failed", exc.message
            if result.returncode != 0:
                return "failed", f"uv could not install the locked packages: {_reason(result.stderr)}"
            (tmp / "site" / ".lock").unlink(missing_ok=True)
            try:
                os.rename(tmp, self.envs_dir / lock_hash)
            except OSError:
                if not self.site_dir(lock_hash).is_dir():
                    raise
            log.info("environment %s is ready", lock_hash[:12])
            return "ready", ""
        finally:
            if tmp.exists():
                await trio.to_thread.run_sync(shutil.rmtree, tmp, True)

    async def _record(self, lock_hash: str) -> dict[str, Any] | None:
        raw = await self.kernel.store.get("envs", lock_hash)
        return json.loads(raw) if raw is not None else None

    async def _save_record(self, lock_hash: str, lock: str, status: str, error: str) -> None:
        record = {"lock": lock, "status": status, "error": error}
        await self.kernel.repo.commit([Put("envs", lock_hash, json.dumps(record).encode())])

    async def _mark(self, lock_hash: str, status: str, error: str) -> None:
        """Record ``status`` on every version of ``lock_hash`` (under the hash's lock)."""
        repo = self.kernel.repo
        writes: list[Write] = []
        for key, _ in await self.kernel.store.scan("env_versions", f"{lock_hash}/"):
            raw = await self.kernel.store.get("versions", key.split("/", 1)[1])
            if raw is None:
                continue
            version = await repo.get_version(key.split("/", 1)[1])
            if (version.env_status, version.env_error) != (status, error):
                writes += repo.put_version(attrs.evolve(version, env_status=status, env_error=error))
        if writes:
            await repo.commit(writes)

    # -- at play time ----------------------------------------------------------------------------

    async def wait_ready(self, version: WorkflowVersion) -> Path | None:
        """The version's built environment, once it is ready (None without dependencies).

        Waits while it builds (the play stays pending); builds it again if it went missing;
        raises EnvironmentFailed with uv's reason if the build failed."""
        lock_hash = version.lock_hash
        if not lock_hash:
            return None
        while True:
            site = self.site_dir(lock_hash)
            if site.is_dir():
                return site
            building = self._builds.get(lock_hash)
            if building is not None:
                await building.wait()
                continue
            record = await self._record(lock_hash)
            if record is not None and record.get("status") == "failed":
                msg = (
                    f"the environment of version {version.sid} failed to build: {record.get('error', '')} "
                    "(fix the PEP 723 dependencies and save a new version)"
                )
                raise EnvironmentFailed(msg)
            await self._ensure(lock_hash, version.lock)

    async def resume_builds(self) -> None:
        """At start-up: build again what a stopped service left ``building``."""
        for lock_hash, raw in await self.kernel.store.scan("envs"):
            record = json.loads(raw)
            if record.get("status") == "building":
                await self._ensure(lock_hash, str(record.get("lock", "")))

    # -- garbage collection ----------------------------------------------------------------------

    async def collect(self) -> list[str]:
        """Remove the environments (and index rows) of locks no stored version uses; returns
        the lock hashes removed."""
        store = self.kernel.store
        live: set[str] = set()
        writes: list[Write] = []
        for key, _ in await store.scan("env_versions"):
            lock_hash, version_sid = key.split("/", 1)
            if await store.get("versions", version_sid) is None:
                writes.append(Delete("env_versions", key))
            else:
                live.add(lock_hash)
        removed: list[str] = []
        for key, _ in await store.scan("envs"):
            if key not in live and key not in self._builds:
                writes.append(Delete("envs", key))
        if writes:
            await self.kernel.repo.commit(writes)
        if not self.envs_dir.is_dir():
            return removed
        for entry in sorted(self.envs_dir.iterdir()):
            name = entry.name
            if name.startswith(".build-") and name[7:71] not in self._builds:  # a dead build's scratch
                await trio.to_thread.run_sync(shutil.rmtree, entry, True)
                continue
            if _HASH_DIR.fullmatch(name) and name not in live and name not in self._builds:
                async with self._locks.hold(name):
                    if name in self._builds:
                        continue
                    await trio.to_thread.run_sync(shutil.rmtree, entry, True)
                removed.append(name)
                log.info("removed the unused environment %s", name[:12])
        return removed


def _find_uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return found or "uv"


def _bad_source(context: str, reason: str) -> InvalidFlowSource:
    msg = f"{context}: python_source's PEP 723 block is not usable: {reason}"
    return InvalidFlowSource(msg, data=[{"field": "python_source", "error": reason}])


class _TempDir:
    """A private scratch directory under ``parent``, removed on exit."""

    def __init__(self, parent: Path) -> None:
        self.path = parent / os.urandom(8).hex()

    def __enter__(self) -> Path:
        self.path.mkdir(mode=0o700)
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
