"""Seeding the bundled flows of :mod:`hero_logic.seed_flows` into the library at start-up.

Each ``seed_flows/*.py`` file is one version of a workflow. A module-level literal tells what
it is and how to try it::

    SEED = {
        "workflow": "ticket_triage",     # the workflow's name (several files may share it)
        "version_label": "keywords",     # default: the file's stem
        "order": 1,                      # versions are created in this order (then by file name)
        "current": True,                 # the current version (default: the last one)
        "description": "...",            # default: the @flow description
        "tags": ["demo", "support"],
        "presets": [{"name": ..., "input_values": {...}, "expected_output": {...},
                     "prefill_resumes": {...}, "description": ...}],
    }

``SEED`` is read with :func:`ast.literal_eval`, never by running the file. A workflow is
seeded once, atomically (workflow, versions and presets in one commit), and recorded in the
``seeded`` table: it is never seeded again, so a user's edits, renames and deletions stick;
a workflow that already has the name (the user's own) is left alone. A seed that does not
parse or whose presets do not fit its flow is logged and skipped; the service still starts.
"""

from __future__ import annotations

import ast
import logging
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import Example, HeroLogicError, Workflow, new_sid, now_ms

from ._catalog import Library
from ._library import check_preset

if TYPE_CHECKING:
    from hero_logic.kernel import Write

    from ._workflows import Workflows

__all__ = ["SeedFile", "read_seed", "seed_files", "seed_library"]

log = logging.getLogger("hero_logic.seed")

SEED_PACKAGE = "hero_logic.seed_flows"


class SeedError(ValueError):
    """A seed file whose ``SEED`` literal is missing or malformed."""


@attrs.frozen
class SeedFile:
    """One bundled flow file and what its ``SEED`` literal says."""

    origin: str
    source: str
    workflow: str
    version_label: str
    order: int = 0
    current: bool | None = None
    description: str = ""
    tags: list[str] = attrs.Factory(list)
    presets: list[dict[str, Any]] = attrs.Factory(list)


def read_seed(origin: str, source: str) -> SeedFile:
    """The seed described by ``source``'s module-level ``SEED`` literal."""
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as exc:
        msg = f"seed {origin}: line {exc.lineno}: {exc.msg}"
        raise SeedError(msg) from None
    literal: Any = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SEED" for t in node.targets):
            try:
                literal = ast.literal_eval(node.value)
            except ValueError:
                msg = f"seed {origin}: line {node.lineno}: SEED must be a literal dict"
                raise SeedError(msg) from None
    if not isinstance(literal, dict) or not isinstance(literal.get("workflow"), str):
        msg = f"seed {origin}: no SEED = {{'workflow': ..., ...}} at module level"
        raise SeedError(msg)
    unknown = set(literal) - {"workflow", "version_label", "order", "current", "description", "tags", "presets"}
    if unknown:
        msg = f"seed {origin}: SEED has unknown keys {sorted(unknown)}"
        raise SeedError(msg)
    return SeedFile(
        origin=origin,
        source=source,
        workflow=literal["workflow"],
        version_label=str(literal.get("version_label") or origin.removesuffix(".py")),
        order=int(literal.get("order", 0)),
        current=literal.get("current"),
        description=str(literal.get("description", "")),
        tags=[str(t) for t in literal.get("tags", [])],
        presets=list(literal.get("presets", [])),
    )


def seed_files() -> dict[str, list[SeedFile]]:
    """The bundled seeds grouped by workflow name, each group in version order."""
    groups: dict[str, list[SeedFile]] = {}
    for entry in sorted(files(SEED_PACKAGE).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".py") or entry.name.startswith("_"):
            continue
        try:
            seed = read_seed(entry.name, entry.read_text(encoding="utf-8"))
        except SeedError as exc:
            log.error("%s: skipped", exc)
            continue
        groups.setdefault(seed.workflow, []).append(seed)
    return {name: sorted(group, key=lambda s: (s.order, s.origin)) for name, group in groups.items()}


async def seed_library(workflows: Workflows) -> list[str]:
    """Seed every bundled workflow not seeded before; returns the names seeded now."""
    repo = workflows.kernel.repo
    library = Library(repo)
    done = await library.seeded_names()
    seeded = []
    for name, group in seed_files().items():
        if name in done:
            continue
        if await repo.workflow_sid_by_name(name) is not None:
            log.info("seed %s: a workflow with that name exists; leaving it alone", name)
            await repo.commit(library.mark_seeded(name, "skipped: the name was taken"))
            continue
        try:
            writes = _seed_writes(workflows, name, group)
        except (HeroLogicError, ValueError, TypeError, KeyError) as exc:
            log.error("seed %s (%s) skipped: %s", name, ", ".join(s.origin for s in group), exc)
            continue
        await repo.commit(writes)
        seeded.append(name)
    if seeded:
        log.info("seeded %d flows: %s", len(seeded), ", ".join(seeded))
    return seeded


def _seed_writes(workflows: Workflows, name: str, group: list[SeedFile]) -> list[Write]:
    """Every write of one seeded workflow: the workflow, its versions, its presets, the mark."""
    repo = workflows.kernel.repo
    now = now_ms()
    wf_sid = new_sid("wf")
    versions = [
        workflows.new_version(wf_sid, s.source, label=s.version_label, notes=f"seeded from {s.origin}", context=f"seed {s.origin}")
        for s in group
    ]
    chosen = [i for i, s in enumerate(group) if s.current]
    current_index = chosen[-1] if chosen else len(group) - 1
    current = versions[current_index]
    description = next((s.description for s in reversed(group) if s.description), "")
    tags = list(dict.fromkeys(t for s in group for t in s.tags))
    wf = Workflow(
        sid=wf_sid,
        name=name,
        description=description,
        tags=tags,
        current_version_sid=current.sid,
        inputs=current.inputs,
        outputs=current.outputs,
        created_at=now,
        updated_at=now,
    )
    writes: list[Write] = []
    for version in versions:
        writes += repo.put_version(version)
    writes += repo.put_workflow(wf)
    names: set[str] = set()
    for seed in group:
        for preset in seed.presets:
            example = Example(
                sid=new_sid("ex"),
                workflow_sid=wf_sid,
                name=str(preset["name"]),
                description=str(preset.get("description", "")),
                input_values=dict(preset.get("input_values", {})),
                expected_output=preset.get("expected_output"),
                prefill_resumes=dict(preset.get("prefill_resumes", {})),
                created_at=now,
                updated_at=now,
            )
            if example.name in names:
                msg = f"two presets are named {example.name!r}"
                raise ValueError(msg)
            names.add(example.name)
            for version in versions:
                check_preset(version, example.input_values, example.expected_output, flow_name=version.entry_flow)
            writes += Library.put_example(example)
    writes += Library.mark_seeded(name, ", ".join(s.origin for s in group))
    return writes
