"""Where the seed flows live, and their presets as pytest params."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

import hero_logic.seed_flows

SEED_FLOWS = Path(hero_logic.seed_flows.__file__).parent


def presets(module: str) -> list[Any]:
    """The presets of a seed flow (its ``SEED`` literal) that say what the flow must return,
    as pytest params named after the preset."""
    seed = importlib.import_module(f"hero_logic.seed_flows.{module}").SEED
    return [pytest.param(p, id=p["name"]) for p in seed["presets"] if "expected_output" in p]
