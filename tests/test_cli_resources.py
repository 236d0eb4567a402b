"""``hero_logic secrets`` takes values from stdin, never argv; ``flow push`` shows a version's
dependencies and follows its environment build."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import trio

from ._sandbox_helpers import open_service
from ._wheels import tiny_index

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Service


async def _cli(svc: Service, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> tuple[int, str]:
    full = {**os.environ, "PATH_ROOT": str(svc.config.root), "NO_COLOR": "1", **(env or {})}
    result = await trio.run_process(
        [sys.executable, "-m", "hero_logic.cli", *args],
        env=full, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout.decode() + result.stderr.decode()


async def test_secrets_set_reads_stdin_and_list_shows_no_value(service: Service) -> None:
    code, out = await _cli(service, "secrets", "set", "API_KEY", stdin=b"sk-from-stdin-1234\n")
    assert code == 0, out
    assert "sk-from-stdin" not in out
    code, out = await _cli(service, "secrets", "list")
    assert code == 0, out
    assert "API_KEY" in out
    assert "sk-from-stdin" not in out
    code, out = await _cli(service, "secrets", "set", "EMPTY", stdin=b"")
    assert code == 1
    assert "empty" in out
    code, out = await _cli(service, "secrets", "delete", "API_KEY")
    assert code == 0, out
    assert await service.call("secret_list") == []


async def test_flow_push_shows_the_resolution_and_the_environment_build(root: Path) -> None:
    wheels = tiny_index(root / "wheels")
    flow_file = root / "pkg.py"
    flow_file.write_text(
        '# /// script\n# dependencies = ["tinypkg"]\n# ///\nfrom hero_tracing import flow\n\n@flow\ndef pkg():\n    return 1\n'
    )
    async with open_service(root, "env_scrub", index_url="none", find_links=str(wheels)) as svc:
        code, out = await _cli(svc, "flow", "push", str(flow_file))
    assert code == 0, out
    assert "dependencies: tinypkg" in out
    assert "resolved: tinydep==1.0, tinypkg==1.1" in out
    assert "environment ready" in out
