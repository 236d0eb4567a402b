"""``hero_logic fork PLAY --from SPAN``: fork an ended play from one of its steps, as a person
types it, against a real service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .test_cli import _cli

if TYPE_CHECKING:
    from .conftest import Service

ROWS = """
from hero_tracing import flow

@flow
def enrich(row: int):
    if row == 3 and BROKEN:
        raise ValueError(f"row {row} has no customer id")
    return row * 2

@flow(name="rows")
def main(rows: int = 5):
    return {"total": sum(enrich(row=r) for r in range(1, rows + 1))}
"""


async def test_fork_from_the_failed_step_onto_a_fixed_version_by_label(service: Service) -> None:
    wf = await service.push(ROWS.replace("BROKEN", "True"), name="rows")
    failed = await service.run(wf)
    assert failed["status"] == "failed"
    await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], python_source=ROWS.replace("BROKEN", "False"),
        version_label="fixed", make_current=False,
    )
    _, out = await _cli(service, "fork", failed["sid"], "--from", "failed", "--version", "fixed", "--wait")
    assert "success" in out
    fork = (await service.call("play_list", limit=1))[0]
    assert fork["fork_of"] == failed["sid"]
    assert fork["output_data"] == {"total": 30}
    spans = await service.call("play_spans", play_sid=fork["sid"])
    assert [s["input"]["row"] for s in spans if s["status"] == "replayed"] == [1, 2]

    _, out = await _cli(service, "fork", failed["sid"], "--from", "failed", "--input-json", '{"rows": 2}')
    assert out.strip().startswith("play_")  # the new play's sid, for scripts


async def test_fork_says_what_is_wrong_with_its_arguments(service: Service) -> None:
    wf = await service.push(ROWS.replace("BROKEN", "True"), name="rows")
    failed = await service.run(wf)
    code, out = await _cli(service, "fork", failed["sid"], "--from", "0123456789abcdef0123", check=False)
    assert code == 1
    assert "from_span_id" in out
    assert "has no span '0123456789abcdef0123'" in out
    code, out = await _cli(service, "fork", failed["sid"], "--from", "failed", "--version", "v9", check=False)
    assert code == 2
    assert "--version 'v9' is no version of this play's workflow (its versions: v1)" in out
    code, out = await _cli(service, "fork", failed["sid"], "--from", "failed", "--input-json", "[1]", check=False)
    assert code == 2
    assert "holds a JSON list, not an object" in out
    code, out = await _cli(service, "fork", failed["sid"], check=False)
    assert code == 2
    assert "--from" in out
