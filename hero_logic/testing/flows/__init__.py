"""A test harness for flow authors, and the pytest plugin that provides it (docs/testing.md).

Enable the plugin in the ``conftest.py`` at the root of your tests::

    pytest_plugins = ["hero_logic.testing.flows"]

and write trio tests (pytest-trio, ``trio_mode = true``) against the ``flows`` fixture — a
real service on a temporary root (memory store, ``env_scrub`` sandbox unless a test says
otherwise), whose plays are real sandboxed subprocesses::

    async def test_a_big_claim_asks_a_manager(flows):
        expense = await flows.push("flows/expense_approval.py")
        result = await flows.run(
            expense,
            {"employee": "Grace", "amount": 840},
            answers={"approve": True, "category": "training", "note": "Enjoy"},
        )
        result.assert_succeeded({"approved": True, "category": "training"}, partial=True)
        result.tree.assert_span("policy_check", tags={"amount": 840})

``flows_sync`` is the same harness for plain ``def`` tests. Without pytest,
:func:`open_flow_harness` (async) and :func:`open_sync_flow_harness` open one.

Durable sleeps and events are not resolved by the harness yet: a play that waits on a
timer or an event stops there, and its :class:`PlayResult` says what it waits on.
"""

from ._harness import DEFAULTS as DEFAULTS
from ._harness import Flow as Flow
from ._harness import FlowHarness as FlowHarness
from ._harness import harness_config as harness_config
from ._harness import open_flow_harness as open_flow_harness
from ._play import PlayHandle as PlayHandle
from ._plugin import flows as flows
from ._plugin import flows_sync as flows_sync
from ._plugin import hero_logic_settings as hero_logic_settings
from ._plugin import pytest_addoption as pytest_addoption
from ._plugin import pytest_configure as pytest_configure
from ._result import PlayResult as PlayResult
from ._sync import SyncFlowHarness as SyncFlowHarness
from ._sync import SyncPlay as SyncPlay
from ._sync import open_sync_flow_harness as open_sync_flow_harness
from ._tree import SpanNode as SpanNode
from ._tree import SpanTree as SpanTree
from ._waits import Answered as Answered
from ._waits import FlowAssertionError as FlowAssertionError
from ._waits import UnusedAnswers as UnusedAnswers
from ._waits import Wait as Wait
from ._waits import WrongAnswer as WrongAnswer
from ._waits import describe_schema as describe_schema
