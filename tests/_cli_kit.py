"""Driving the ``hero_logic`` command as a person does: a real process against a real service."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .conftest import Service


def cli_env(service: Service, **extra: str) -> dict[str, str]:
    """The environment a CLI process gets: the service's PATH_ROOT, a wide plain terminal."""
    return {**os.environ, "PATH_ROOT": str(service.config.root), "COLUMNS": "200", "NO_COLOR": "1", **extra}


async def cli(service: Service, *args: str, check: bool = True, stdin: bytes = b"") -> tuple[int, str]:
    """Run ``hero_logic ARGS``; its exit code and its stdout followed by its stderr."""
    result = await trio.run_process(
        [sys.executable, "-m", "hero_logic.cli", *args],
        env=cli_env(service), stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
    )
    out = result.stdout.decode() + result.stderr.decode()
    if check:
        assert result.returncode == 0, out
    return result.returncode, out
