"""flow_library_search: BM25-style ranking over name, tags, field names and description, typo tolerant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.kernel import FlowField, Workflow
from hero_logic.rpc import RpcError
from hero_logic.service import SearchDoc, rank_workflows
from hero_logic.service._search import words

if TYPE_CHECKING:
    from .conftest import Service


def _wf(sid: str, name: str, description: str = "", tags: tuple[str, ...] = (), fields: tuple[str, ...] = (), created_at: int = 0) -> SearchDoc:
    return SearchDoc.of(
        Workflow(
            sid=sid, name=name, description=description, tags=list(tags),
            inputs=[FlowField(name=f) for f in fields], created_at=created_at or int(sid.rsplit("_", 1)[-1]),
        )
    )


LIBRARY = [
    _wf("wf_1", "invoice_parser", "reads PDF files", tags=("finance",), fields=("pdf_bytes",)),
    _wf("wf_2", "pdf_reader", "extracts the invoice number and the totals of a customer document"),
    _wf("wf_3", "weekly_report", "a report of the week"),
    _wf("wf_4", "monthly_report", "a report of the month"),
    _wf("wf_5", "sales_report", "a report of the sales"),
    _wf("wf_6", "ticket_triage", "sorts support tickets", tags=("support", "classification"), fields=("subject", "body")),
]


def test_words_split_case_underscores_and_camel_case() -> None:
    assert words("invoiceTotal, INVOICE_parser 2-step") == ["invoice", "total", "invoice", "parser", "2", "step"]


def test_a_name_match_outranks_a_description_match() -> None:
    assert rank_workflows("invoice", LIBRARY, 10) == ["wf_1", "wf_2"]
    newer_description_match = [*LIBRARY, _wf("wf_9", "reader", "the invoice of a customer")]
    assert rank_workflows("invoice", newer_description_match, 10)[0] == "wf_1"


def test_search_is_case_insensitive() -> None:
    assert rank_workflows("INVOICE", LIBRARY, 10) == rank_workflows("Invoice", LIBRARY, 10) == ["wf_1", "wf_2"]


def test_typos_find_the_closest_words() -> None:
    assert rank_workflows("invoce", LIBRARY, 10) == ["wf_1", "wf_2"]
    assert rank_workflows("tirage", LIBRARY, 10) == ["wf_6"]  # a swap of two letters is one edit
    with_invoke = [*LIBRARY, _wf("wf_7", "invoke helper")]
    assert rank_workflows("invoce", with_invoke, 10) == ["wf_1", "wf_2"]  # "invoice" is closer than "invoke"
    assert rank_workflows("invoke", with_invoke, 10) == ["wf_7"]  # a word of the library is taken as meant
    assert rank_workflows("tickte trage", LIBRARY, 10) == ["wf_6"]
    assert rank_workflows("pfd", LIBRARY, 10) == []  # words under 4 letters get no edits
    assert rank_workflows("pdff", LIBRARY, 10) == ["wf_2", "wf_1"]  # 4 to 7 letters: one edit


def test_a_prefix_finds_longer_words() -> None:
    assert rank_workflows("classif", LIBRARY, 10) == ["wf_6"]


def test_rare_words_weigh_more_than_common_ones() -> None:
    docs = [
        _wf("wf_1", "invoice check"),
        *(_wf(f"wf_{i}", f"{period} report") for i, period in [(2, "daily"), (3, "weekly"), (4, "monthly"), (5, "yearly")]),
        _wf("wf_6", "invoice report"),
    ]
    ranked = rank_workflows("report invoice", docs, 10)
    assert ranked[0] == "wf_6"  # both words
    assert ranked[1] == "wf_1"  # "invoice" is in 2 names, "report" in 5: the rarer word weighs more
    assert ranked[2:] == ["wf_5", "wf_4", "wf_3", "wf_2"]


def test_tags_and_field_names_are_searched() -> None:
    assert rank_workflows("support", LIBRARY, 10) == ["wf_6"]
    assert rank_workflows("subject", LIBRARY, 10) == ["wf_6"]
    assert rank_workflows("finance", LIBRARY, 10) == ["wf_1"]


def test_equal_scores_go_newest_first_and_limit_cuts() -> None:
    assert rank_workflows("report", LIBRARY, 10) == ["wf_5", "wf_4", "wf_3"]
    assert rank_workflows("report", LIBRARY, 2) == ["wf_5", "wf_4"]


def test_an_empty_query_lists_the_newest() -> None:
    assert rank_workflows("", LIBRARY, 3) == ["wf_6", "wf_5", "wf_4"]
    assert rank_workflows("  ?! ", LIBRARY, 2) == ["wf_6", "wf_5"]


def test_nothing_matches_nothing() -> None:
    assert rank_workflows("zebra", LIBRARY, 10) == []
    assert rank_workflows("invoice", [], 10) == []


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


FLOW = """
from hero_tracing import flow

@flow(name="f", inputs={"FIELD": "string"}, outputs={"result": "string"})
def main(**kw):
    return {"result": "ok"}
"""


async def test_search_through_the_service(service: Service) -> None:
    parser = await service.call(
        "workflow_create", name="Invoice Parser", description="reads PDF files", tags=["finance"],
        python_source=FLOW.replace("FIELD", "pdf_path"),
    )
    reader = await service.call("workflow_create", name="pdf reader", description="finds the INVOICE number")
    report = await service.call("workflow_create", name="weekly report", python_source=FLOW.replace("FIELD", "week"))
    again = await service.call("workflow_create", name="monthly report", python_source=FLOW.replace("FIELD", "month"))
    search = "flow_library_search"
    assert await service.call(search, query="invoice") == [parser["sid"], reader["sid"]]
    assert await service.call(search, query="INVOCE") == [parser["sid"], reader["sid"]]
    assert await service.call(search, query="pdf_path") == [parser["sid"], reader["sid"]]  # an input field, then "pdf" in a name
    assert await service.call(search, query="result", limit=1) == [again["sid"]]  # an output name, newest first
    assert await service.call(search, query="report") == [again["sid"], report["sid"]]
    assert await service.call(search, query="") == [again["sid"], report["sid"], reader["sid"], parser["sid"]]
    assert await service.call(search, query="", limit=2) == [again["sid"], report["sid"]]
    assert await service.call(search, query="zebra") == []
    await service.call("workflow_update", sid=reader["sid"], tags=["ocr"])
    assert await service.call(search, query="ocr") == [reader["sid"]]  # an update is searchable at once
    await service.call("workflow_create_version", workflow_sid=report["sid"], python_source=FLOW.replace("FIELD", "fortnight"))
    assert await service.call(search, query="fortnight") == [report["sid"]]  # so is a new current version's fields
    assert await service.call("workflow_delete", sid=report["sid"]) is True
    assert report["sid"] not in await service.call(search, query="report")  # and a deletion
    late = await service.call("workflow_create", name="late invoice reminder")
    assert late["sid"] in await service.call(search, query="invoice")  # and a new workflow
    for params, field in [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"query": "x" * 1001}, "query")]:
        err = await _error(service, search, **{"query": "invoice", **params})
        assert err.code == -32602
        assert err.data[0]["field"] == field
    assert (await _error(service, search, query=5)).code == -32602
