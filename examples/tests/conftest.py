"""The seed flows, tested the way a flow author tests their own flows: with the flow harness
(``hero_logic.testing.flows``, docs/testing.md). Each test gets its own embedded service."""

from __future__ import annotations

from pathlib import Path

import pytest

import hero_logic.seed_flows

pytest_plugins = ["hero_logic.testing.flows"]


@pytest.fixture
def seeds() -> Path:
    """The folder of the seed flows (``seeds / "expense_approval.py"``)."""
    return Path(hero_logic.seed_flows.__file__).parent
