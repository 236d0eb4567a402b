"""The pytest side: options, the ``hero_logic`` marker and the ``flows`` fixtures.

A test's service settings are, from weakest to strongest: the harness's defaults
(:data:`DEFAULTS`), the ini options ``hero_logic_sandbox`` / ``hero_logic_store``, the
command-line options ``--hero-logic-sandbox`` / ``--hero-logic-store``, ``hero_logic``
markers (module, then class, then function), and an indirect parameter of ``flows``
(a tier name, or a dict of settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from ._harness import open_flow_harness
from ._sync import open_sync_flow_harness

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ._harness import FlowHarness
    from ._sync import SyncFlowHarness

__all__ = [
    "flows",
    "flows_sync",
    "hero_logic_settings",
    "pytest_addoption",
    "pytest_configure",
]

_OPTIONS = (
    ("sandbox", "sandbox tier of the flows harness's service: env_scrub (default), bwrap, nsjail or auto"),
    ("store", "store of the flows harness's service: memory (default) or lmdb"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hero_logic", "hero_logic flow harness (hero_logic.testing.flows)")
    for name, help_text in _OPTIONS:
        group.addoption(f"--hero-logic-{name}", dest=f"hero_logic_{name}", default=None, help=help_text)
        parser.addini(f"hero_logic_{name}", help_text, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hero_logic(**settings): settings of the flows harness's service for these tests, by "
        "hero_logic.kernel.Config attribute, e.g. hero_logic(sandbox='bwrap', store='lmdb')",
    )


@pytest.fixture
def hero_logic_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings the ``flows`` fixtures start their service with (see the module docstring);
    override this fixture in a conftest.py to set them for a whole project."""
    settings: dict[str, Any] = {}
    for name, _ in _OPTIONS:
        value = request.config.getoption(f"hero_logic_{name}") or request.config.getini(f"hero_logic_{name}")
        if value:
            settings[name] = value
    for marker in reversed(list(request.node.iter_markers("hero_logic"))):  # the closest wins
        if marker.args:
            msg = f"@pytest.mark.hero_logic takes settings by name (sandbox='bwrap'), got {marker.args!r}"
            raise pytest.UsageError(msg)
        settings.update(marker.kwargs)
    return settings


def _with_param(request: pytest.FixtureRequest, settings: dict[str, Any]) -> dict[str, Any]:
    param = getattr(request, "param", None)
    if isinstance(param, str):
        return {**settings, "sandbox": param}
    if isinstance(param, Mapping):
        return {**settings, **param}
    if param is not None:
        msg = f"an indirect parameter of the flows fixture is a sandbox tier name or a dict of settings, got {param!r}"
        raise pytest.UsageError(msg)
    return settings


@pytest.fixture
async def flows(request: pytest.FixtureRequest, hero_logic_settings: dict[str, Any]) -> AsyncIterator[FlowHarness]:
    """A :class:`FlowHarness` on an embedded service of its own (trio tests)."""
    async with open_flow_harness(**_with_param(request, hero_logic_settings)) as harness:
        yield harness


@pytest.fixture
def flows_sync(request: pytest.FixtureRequest, hero_logic_settings: dict[str, Any]) -> Iterator[SyncFlowHarness]:
    """A :class:`SyncFlowHarness` on an embedded service in a thread (plain, non-async tests)."""
    with open_sync_flow_harness(**_with_param(request, hero_logic_settings)) as harness:
        yield harness
