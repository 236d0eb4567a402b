"""Seed flows: bundled, seeded once by name at start-up, never over a user's edits, and runnable:
every preset of every seeded version succeeds when benchmarked."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import AsyncClient
from hero_logic.server import serve
from hero_logic.service import SeedError, read_seed, seed_files

from .conftest import Service, make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SEEDED = {
    "text_stats", "invoice_total", "ticket_triage", "fx_convert", "expense_approval",
    "report_digest", "summarise_extractive",
}


@asynccontextmanager
async def _service(root: Path) -> AsyncIterator[Service]:
    config = make_config(root, seed_flows=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            yield Service(config, client)
        nursery.cancel_scope.cancel()


async def _by_name(service: Service) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in await service.call("workflow_list")}


def test_every_bundled_seed_parses_and_declares_presets() -> None:
    groups = seed_files()
    assert set(groups) == SEEDED
    assert [s.version_label for s in groups["ticket_triage"]] == ["keywords", "scored"]
    for name, group in groups.items():
        assert any(s.presets for s in group), name
        assert any(s.description for s in group), name


def test_the_seeds_cover_every_authoring_pattern() -> None:
    sources = "\n".join(s.source for group in seed_files().values() for s in group)
    for pattern in [
        "with flow.step(", ".tag(", ".log(", "instrument(", "ask_user.confirm(", "ask_user.choice(",
        "ask_user.text(", 'flow.invoke("text_stats"', "spawn=True", "cost_usd=", "score=", "async def",
        "asyncio.gather(", "raise flow.Failed(",
    ]:
        assert pattern in sources, pattern


def test_a_malformed_seed_is_a_clear_error() -> None:
    with pytest.raises(SeedError, match="no SEED"):
        read_seed("x.py", "x = 1\n")
    with pytest.raises(SeedError, match="line 1"):
        read_seed("x.py", "SEED = {'workflow': f()}\n")
    with pytest.raises(SeedError, match="unknown keys"):
        read_seed("x.py", "SEED = {'workflow': 'x', 'colour': 'red'}\n")
    assert read_seed("x.py", "SEED = {'workflow': 'x'}\n").version_label == "x"


async def test_seeds_arrive_once_and_every_preset_of_every_version_runs(root: Path) -> None:
    async with _service(root) as service:
        workflows = await _by_name(service)
        assert set(workflows) == SEEDED
        triage = workflows["ticket_triage"]
        versions = await service.call("workflow_version_list", workflow_sid=triage["sid"])
        assert [v["version_label"] for v in versions] == ["keywords", "scored"]
        assert triage["current_version_sid"] == versions[1]["sid"]
        assert "support" in triage["tags"]
        bench_sids: dict[str, str] = {}
        for wf in workflows.values():
            presets = await service.call("example_list", workflow_sid=wf["sid"])
            assert presets, wf["name"]
            for version in await service.call("workflow_version_list", workflow_sid=wf["sid"]):
                label = f"{wf['name']}/{version['version_label']}"
                bench_sids[label] = await service.call("benchmark_run", version_sid=version["sid"])
        results = {}
        for label, sid in bench_sids.items():
            with trio.fail_after(60):
                results[label] = await service.call("benchmark_wait", sid=sid)
        for label, done in results.items():
            assert done["status"] == "done", (label, done)
            assert done["success_rate"] == 1.0, (label, done["run_notes"])
        accuracy = {label: done["accuracy"] for label, done in results.items()}
        assert accuracy.pop("ticket_triage/keywords") == 0.6  # the weak version, on purpose
        assert accuracy.pop("summarise_extractive/summarise_extractive") == pytest.approx((1.0 + 0.667) / 2)
        assert all(value == 1.0 for value in accuracy.values()), {k: results[k]["run_notes"] for k in accuracy}
        assert results["ticket_triage/scored"]["avg_cost_usd"] == pytest.approx(0.0004)
        assert results["fx_convert/fx_convert"]["avg_cost_usd"] == pytest.approx(0.0002)
        assert results["summarise_extractive/summarise_extractive"]["accuracy_basis"] == "score"

        digest = await service.call("play_status", play_sid=results["report_digest/report_digest"]["runs"][1])
        assert len(digest["child_play_sids"]) == 1  # the invoice ran as a child play
        spans = await service.call("play_spans", play_sid=digest["sid"])
        assert any(s["name"] == "invoke:text_stats" for s in spans)
        assert any(s["kind"] == "rpc" for s in await service.call("play_spans", play_sid=results["fx_convert/fx_convert"]["runs"][0]))

        found = await service.call("flow_library_search", query="invoce")
        assert found[0] == workflows["invoice_total"]["sid"]
        assert (await service.call("flow_library_search", query="ask approver"))[0] == workflows["expense_approval"]["sid"]

        pick = await service.call("pick_version", workflow_sid=triage["sid"], cost_weight=0.2, speed_weight=0.2, accuracy_weight=1, min_accuracy=0.8)
        assert pick["version_sid"] == versions[1]["sid"]
        assert "under the floor" in pick["reasoning"]


async def test_seeding_never_overwrites_the_users_edits(root: Path) -> None:
    async with _service(root) as service:
        workflows = await _by_name(service)
        await service.call("workflow_update", sid=workflows["text_stats"]["sid"], description="mine now")
        await service.call("workflow_delete", sid=workflows["fx_convert"]["sid"])
        stats_presets = await service.call("example_list", workflow_sid=workflows["text_stats"]["sid"])
        await service.call("example_delete", sid=stats_presets[0]["sid"])
    async with _service(root) as service:
        again = await _by_name(service)
        assert set(again) == SEEDED - {"fx_convert"}  # a deleted seed stays deleted
        assert again["text_stats"]["sid"] == workflows["text_stats"]["sid"]
        assert again["text_stats"]["description"] == "mine now"
        assert len(await service.call("example_list", workflow_sid=again["text_stats"]["sid"])) == len(stats_presets) - 1


async def test_a_users_workflow_with_a_seed_name_is_left_alone(root: Path) -> None:
    config = make_config(root)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            await client.call("workflow_create", {"name": "text_stats", "description": "my own"})
        nursery.cancel_scope.cancel()
    async with _service(root) as service:
        workflows = await _by_name(service)
        assert workflows["text_stats"]["description"] == "my own"
        assert workflows["text_stats"]["current_version_sid"] == ""
        assert await service.call("example_list", workflow_sid=workflows["text_stats"]["sid"]) == []
        assert set(workflows) == SEEDED
