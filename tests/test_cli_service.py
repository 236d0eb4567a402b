"""The foreground binaries ``hero_logic_server`` and ``hero_logic_admin``: one serve-until-signal
loop in the CLI, start-up errors as one line, and an admin package that imports neither the
CLI nor the server (no import circle admin → cli → server → admin)."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

import hero_logic
from hero_logic.kernel import ConfigError, HeroLogicError, NotFound, unwrap_startup_error

from ._cli_kit import cli_env

if TYPE_CHECKING:
    from .conftest import Service

ADMIN = Path(__file__).parent.parent / "hero_logic" / "admin"
ADMIN_MAIN = "import sys; from hero_logic.cli import admin_main; sys.exit(admin_main())"


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions, relative ones resolved."""
    package = "hero_logic.admin"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_admin_package_imports_neither_the_cli_nor_the_server() -> None:
    files = sorted(ADMIN.rglob("*.py"))
    assert files
    for path in files:
        bad = {
            m for m in _imported_modules(path)
            if m.startswith(("hero_logic.cli", "hero_logic.server")) or m in ("hero_logic.cli", "hero_logic.server")
        }
        assert not bad, f"{path.relative_to(ADMIN.parent.parent)} imports {sorted(bad)}"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, hero_logic.admin; print(sorted(m for m in sys.modules if m.startswith(('hero_logic.cli', 'hero_logic.server'))))"],
        capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_a_lone_start_up_error_leaves_its_nurseries_bare() -> None:
    error = ConfigError("bad setting")
    with pytest.raises(ConfigError) as info, unwrap_startup_error():
        raise BaseExceptionGroup("outer", [ExceptionGroup("inner", [error])])
    assert info.value is error
    two = ExceptionGroup("two", [ConfigError("a"), NotFound("b")])
    with pytest.raises(ExceptionGroup) as group, unwrap_startup_error():
        raise two
    assert group.value is two  # more than one: the group as it was
    with pytest.raises(ExceptionGroup), unwrap_startup_error():
        raise ExceptionGroup("other", [ValueError("not ours")])
    with unwrap_startup_error():
        pass
    assert issubclass(ConfigError, HeroLogicError)


async def test_hero_logic_admin_serves_until_sigterm(service: Service) -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", ADMIN_MAIN],
        env=cli_env(service, HERO_LOGIC_ADMIN_BIND="none"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen = b""
    with trio.fail_after(30):
        while b"serving on" not in seen:
            chunk = await proc.stdout.receive_some()
            assert chunk, seen.decode()
            seen += chunk
        assert service.config.admin_socket.exists()
        proc.send_signal(signal.SIGTERM)
        while chunk := await proc.stdout.receive_some():
            seen += chunk
        code = await proc.wait()
    out = seen.decode()
    assert code == 0, out
    assert f"hero_logic_admin {hero_logic.__version__} serving on http://unix:{service.config.admin_socket}" in out
    assert f"service at {service.config.rpc_socket}" in out
    assert "received SIGTERM: stopping" in out
    assert "Traceback" not in out


async def test_hero_logic_admin_with_a_bad_bind_says_so_in_one_line(service: Service) -> None:
    result = await trio.run_process(
        [sys.executable, "-c", ADMIN_MAIN],
        env=cli_env(service, HERO_LOGIC_ADMIN_BIND="nowhere"), capture_stdout=True, capture_stderr=True, check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "Traceback" not in err
    assert "admin bind 'nowhere' is not HOST:PORT" in err
