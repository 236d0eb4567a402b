"""The seed flows, tested the way a flow author tests their own flows: with the flow harness
(``hero_logic.testing.flows``, docs/testing.md). Each test gets its own embedded service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from _seeds import SEED_FLOWS

if TYPE_CHECKING:
    from pathlib import Path

pytest_plugins = ["hero_logic.testing.flows", "pytester"]


@pytest.fixture
def seeds() -> Path:
    """The folder of the seed flows (``seeds / "expense_approval.py"``)."""
    return SEED_FLOWS
