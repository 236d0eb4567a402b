"""``hero_logic presets|bench|pick``: presets, benchmarks of versions, and picking a version."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._common import (
    CliError,
    client,
    parse_inputs,
    parse_json_value,
    parse_prefill,
    print_json,
    resolve_preset,
    resolve_version,
    resolve_workflow,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]

_BENCH_POLL_MS = 1000


def _compact(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= width else text[: width - 3] + "..."


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


# -- presets -------------------------------------------------------------------------------------


def _cmd_presets_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import SID_WIDTH, console

    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        presets = rpc.call("example_list", {"workflow_sid": wf["sid"]})
    if args.json:
        print_json(presets)
        return 0
    if not presets:
        print(f"no presets for workflow {wf['name']!r}: save one with 'hero_logic presets save {wf['name']} NAME -i INPUT=VALUE ...'")
        return 0
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "sid", "inputs", "answers", "expected", "version", "description"):
        table.add_column(column, no_wrap=column == "sid", min_width=SID_WIDTH if column == "sid" else None)
    for preset in presets:
        table.add_row(
            preset["name"],
            preset["sid"],
            _compact(preset["input_values"]),
            _compact(preset["prefill_resumes"]) if preset.get("prefill_resumes") else "",
            "" if preset["expected_output"] is None else _compact(preset["expected_output"]),
            preset["version_sid"] or "current",
            preset["description"],
        )
    console().print(table)
    return 0


def _cmd_presets_save(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        version = resolve_version(rpc, wf, args.version) if args.version else None
        fields = version["inputs"] if version else wf["inputs"]
        params: dict[str, Any] = {
            "workflow_sid": wf["sid"],
            "name": args.name,
            "input_values": parse_inputs(args.input, fields, args.input_json),
            "description": args.description,
            "version_sid": version["sid"] if version else "",
            "prefill_resumes": dict(args.prefill),
        }
        if args.expect is not None:
            params["expected_output"] = parse_json_value(args.expect, what="--expect")
        preset = rpc.call("example_upsert", params)
    print(
        f"saved preset {preset['name']!r} ({preset['sid']}) of workflow {wf['name']!r}: "
        f"run it with 'hero_logic run {wf['name']} --preset {preset['name']}'"
    )
    return 0


def _cmd_presets_delete(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        preset = resolve_preset(rpc, wf, args.name)
        rpc.call("example_delete", {"sid": preset["sid"]})
    print(f"deleted preset {preset['name']!r} ({preset['sid']}) of workflow {wf['name']!r}")
    return 0


# -- benchmarks ----------------------------------------------------------------------------------


def _describe_benchmark(bench: dict[str, Any], labels: dict[str, str]) -> str:
    label = labels.get(bench["version_sid"], "")
    lines = [
        f"benchmark {bench['sid']} {bench['status']}: version {label + ' ' if label else ''}({bench['version_sid']})",
        f"  {bench['completed_runs']}/{bench['num_runs']} runs, success {_percent(bench['success_rate'])}, "
        f"accuracy {_percent(bench['accuracy'])}" + (f" (from {bench['accuracy_basis']})" if bench.get("accuracy_basis") else ""),
    ]
    if bench["completed_runs"]:
        from ._render import format_duration

        lines.append(
            f"  duration avg {format_duration(round(bench['avg_duration_ms']))}, p50 {format_duration(bench['p50_duration_ms'])}, "
            f"min {format_duration(bench['min_duration_ms'])}, max {format_duration(bench['max_duration_ms'])}; "
            f"avg cost ${bench['avg_cost_usd']:.4f}"
        )
    if bench["runs"]:
        lines.append(f"  plays: {', '.join(bench['runs'])}")
    lines += [f"  note: {note}" for note in bench.get("run_notes") or []]
    if bench.get("error_message"):
        lines.append(f"  error: {bench['error_message']}")
    return "\n".join(lines)


def _labels(rpc: Any, workflow_sid: str) -> dict[str, str]:
    return {v["sid"]: v["version_label"] for v in rpc.call("workflow_version_list", {"workflow_sid": workflow_sid})}


def _cmd_bench_run(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        version_sid = resolve_version(rpc, wf, args.version)["sid"] if args.version else wf["current_version_sid"]
        if not version_sid:
            msg = f"workflow {wf['name']!r} has no version to benchmark: push one with 'hero_logic flow push FILE'"
            raise CliError(msg)
        example_sids = [resolve_preset(rpc, wf, name)["sid"] for name in args.preset]
        sid = rpc.call("benchmark_run", {"version_sid": version_sid, "example_sids": example_sids, "repeats": args.repeats})
        if args.no_wait:
            print(sid)
            return 0
        bench = rpc.call("benchmark_fetch", {"sid": sid})
        if not args.json:
            print(f"benchmark {sid}: {bench['num_runs']} runs of workflow {wf['name']!r} (version {version_sid})", flush=True)
        done = -1
        while bench["status"] == "running":
            if not args.json and bench["completed_runs"] != done:
                done = bench["completed_runs"]
                print(f"  {done}/{bench['num_runs']} runs", flush=True)
            bench = rpc.call("benchmark_wait", {"sid": sid, "timeout_ms": _BENCH_POLL_MS})
        if args.json:
            print_json(bench)
        else:
            print(_describe_benchmark(bench, _labels(rpc, wf["sid"])))
    return 0 if bench["status"] == "done" else 1


def _cmd_bench_show(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        bench = rpc.call("benchmark_fetch", {"sid": args.benchmark})
        if args.json:
            print_json(bench)
            return 0
        print(_describe_benchmark(bench, _labels(rpc, bench["workflow_sid"])))
    return 0


def _cmd_bench_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import SID_WIDTH, console, format_duration, format_time

    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        if args.version:
            version_sid = resolve_version(rpc, wf, args.version)["sid"]
            benches = rpc.call("benchmark_list_for_version", {"version_sid": version_sid})
        else:
            benches = rpc.call("benchmark_list_for_workflow", {"workflow_sid": wf["sid"]})
        labels = _labels(rpc, wf["sid"])
    if args.json:
        print_json(benches)
        return 0
    if not benches:
        print(f"no benchmarks of workflow {wf['name']!r} yet: start one with 'hero_logic bench run {wf['name']}'")
        return 0
    table = Table(show_edge=False, header_style="bold")
    for column in ("benchmark", "version", "status", "runs", "success", "accuracy", "p50", "created"):
        table.add_column(column, no_wrap=column == "benchmark", min_width=SID_WIDTH if column == "benchmark" else None)
    for bench in benches:
        table.add_row(
            bench["sid"],
            labels.get(bench["version_sid"], bench["version_sid"]),
            bench["status"],
            f"{bench['completed_runs']}/{bench['num_runs']}",
            _percent(bench["success_rate"]),
            _percent(bench["accuracy"]),
            format_duration(bench["p50_duration_ms"]) if bench["completed_runs"] else "-",
            format_time(bench["created_at"]),
        )
    console().print(table)
    return 0


# -- picking -------------------------------------------------------------------------------------


def _cmd_pick(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import console, format_duration

    weights = {"cost_weight": args.cost, "speed_weight": args.speed, "accuracy_weight": args.accuracy}
    if all(w is None for w in weights.values()):
        weights["accuracy_weight"] = 1.0
    params = {k: v or 0.0 for k, v in weights.items()}
    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        result = rpc.call("pick_version", {"workflow_sid": wf["sid"], **params, "min_accuracy": args.min_accuracy})
    if args.json:
        print_json(result)
        return 0
    labels = {s["version_sid"]: s["version_label"] for s in result["scores"]}
    label = labels.get(result["version_sid"], "")
    print(f"picked {result['version_sid']}{f' ({label})' if label else ''} with confidence {result['confidence']:.2f}")
    print("  " + result["reasoning"].strip().replace("\n", "\n  "))
    table = Table(show_edge=False, header_style="bold")
    for column in ("version", "label", "standing", "score", "accuracy", "avg duration", "avg cost", "note"):
        table.add_column(column, no_wrap=column == "version")
    for score in result["scores"]:
        table.add_row(
            score["version_sid"],
            score["version_label"],
            score["status"],
            "-" if score["score"] is None else f"{score['score']:.2f}",
            _percent(score["accuracy"]),
            "-" if score["avg_duration_ms"] is None else format_duration(round(score["avg_duration_ms"])),
            "-" if score["avg_cost_usd"] is None else f"${score['avg_cost_usd']:.4f}",
            score.get("note") or "",
        )
    console().print(table)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``presets``, ``bench`` and ``pick``."""
    presets = sub.add_parser("presets", help="named inputs (and answers) of a workflow, to run or benchmark")
    presets_sub = presets.add_subparsers(dest="presets_command", metavar="PRESETS_COMMAND", required=True)
    listing = presets_sub.add_parser("list", help="list a workflow's presets")
    listing.add_argument("workflow", help="workflow name or sid")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_presets_list)
    save = presets_sub.add_parser("save", help="create or replace a preset (by workflow and name)")
    save.add_argument("workflow", help="workflow name or sid")
    save.add_argument("name", help="preset name")
    save.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE", help="an input value (repeatable)")
    save.add_argument("--input-json", help="all input values as a JSON object, or @file.json")
    save.add_argument(
        "--prefill", action="append", default=[], type=parse_prefill, metavar="NAME=JSON",
        help="the answer to the pause NAME (or resume id), so the preset runs unattended (repeatable)",
    )
    save.add_argument("--expect", metavar="JSON", help="the output a good run returns (JSON or @file.json); benchmarks measure accuracy by it")
    save.add_argument("--description", default="", help="what this preset is for")
    save.add_argument("--version", default="", help="pin the preset to this version (sid or label; default: the current one at each run)")
    save.set_defaults(func=_cmd_presets_save)
    delete = presets_sub.add_parser("delete", help="delete a preset (benchmarks that ran it keep their numbers)")
    delete.add_argument("workflow", help="workflow name or sid")
    delete.add_argument("name", help="preset name or sid")
    delete.set_defaults(func=_cmd_presets_delete)

    bench = sub.add_parser("bench", help="benchmark a version on presets; list and show benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND", required=True)
    run = bench_sub.add_parser("run", help="run presets against a version and show the numbers")
    run.add_argument("workflow", help="workflow name or sid")
    run.add_argument("--version", default="", help="version sid or label (default: the current one)")
    run.add_argument("--preset", action="append", default=[], metavar="NAME", help="a preset to run (repeatable; default: all)")
    run.add_argument("--repeats", type=int, default=1, help="runs of each preset (default 1)")
    run.add_argument("--no-wait", action="store_true", help="print the benchmark sid and return at once")
    run.add_argument("--json", action="store_true", help="print the finished benchmark as JSON")
    run.set_defaults(func=_cmd_bench_run)
    show = bench_sub.add_parser("show", help="one benchmark's numbers")
    show.add_argument("benchmark", help="benchmark sid")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_cmd_bench_show)
    blist = bench_sub.add_parser("list", help="a workflow's benchmarks, newest first")
    blist.add_argument("workflow", help="workflow name or sid")
    blist.add_argument("--version", default="", help="only this version's (sid or label)")
    blist.add_argument("--json", action="store_true", help="print JSON")
    blist.set_defaults(func=_cmd_bench_list)

    pick = sub.add_parser("pick", help="which version to run, from each version's latest benchmark")
    pick.add_argument("workflow", help="workflow name or sid")
    pick.add_argument("--accuracy", type=float, default=None, metavar="W", help="weight of accuracy (default 1 when no weight is given, else 0)")
    pick.add_argument("--speed", type=float, default=None, metavar="W", help="weight of speed (default 0)")
    pick.add_argument("--cost", type=float, default=None, metavar="W", help="weight of cost (default 0)")
    pick.add_argument("--min-accuracy", type=float, default=0.0, metavar="X", help="leave out versions below this accuracy (0..1)")
    pick.add_argument("--json", action="store_true", help="print the pick as JSON")
    pick.set_defaults(func=_cmd_pick)
