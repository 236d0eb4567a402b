"""What every command module shares: the settings flags, the client, JSON output, lookups, errors."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from hero_logic.kernel import SETTINGS, Config

__all__ = [
    "MAX_LIST",
    "CliError",
    "Since",
    "add_settings",
    "client",
    "config",
    "parse_inputs",
    "parse_json_value",
    "parse_prefill",
    "parse_since",
    "print_json",
    "resolve_preset",
    "resolve_version",
    "resolve_workflow",
    "socket",
]

MAX_LIST = 10_000
"""The most records one list call returns (the service's cap): what client-side filters search."""


class CliError(Exception):
    """A mistake the user can fix: printed as ``error: <message>``, exit ``exit_code``.

    Its message says what happened, the offending value and the fix, like every error here.
    """

    def __init__(self, message: str, *, exit_code: int = 1, prefix: str = "error: ") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.prefix = prefix


def add_settings(parser: argparse.ArgumentParser) -> None:
    """The settings table as flags (flag > environment > default)."""
    group = parser.add_argument_group("settings (flag > environment > default)")
    for setting in SETTINGS:
        group.add_argument(
            setting.flag,
            dest=setting.attr,
            default=None,
            action="append" if setting.repeat else "store",
            metavar=setting.env,
            help=f"{setting.help} [env {setting.env}, default {setting.default or 'derived'}]",
        )


def config(args: argparse.Namespace) -> Config:
    """The service's settings from flags, environment and defaults."""
    flags = {s.attr: getattr(args, s.attr, None) for s in SETTINGS}
    return Config.load(flags)


def socket(args: argparse.Namespace) -> Path:
    """The RPC socket to talk to: ``--socket``, else the one the settings derive."""
    if getattr(args, "socket", None):
        return Path(args.socket)
    return config(args).rpc_socket


def client(args: argparse.Namespace) -> Any:
    """A JSON-RPC client on the service's socket (a context manager)."""
    from hero_logic.rpc import Client

    return Client(socket(args))


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def resolve_workflow(rpc: Any, name_or_sid: str) -> dict[str, Any]:
    """The workflow with that name or sid."""
    for wf in rpc.call("workflow_list", {"limit": MAX_LIST}):
        if name_or_sid in (wf["name"], wf["sid"]):
            return dict(wf)
    msg = f"no workflow named or with sid {name_or_sid!r}: push one with 'hero_logic flow push FILE', or see 'hero_logic flow list'"
    raise CliError(msg)


def resolve_version(rpc: Any, wf: dict[str, Any], sid_or_label: str) -> dict[str, Any]:
    """The version of ``wf`` with that sid or label (``v2``)."""
    versions = rpc.call("workflow_version_list", {"workflow_sid": wf["sid"]})
    for version in versions:
        if sid_or_label in (version["sid"], version["version_label"]):
            return dict(version)
    known = ", ".join(f"{v['version_label']} ({v['sid']})" for v in versions) or "none"
    msg = f"no version {sid_or_label!r} of workflow {wf['name']!r}; its versions: {known}"
    raise CliError(msg)


def resolve_preset(rpc: Any, wf: dict[str, Any], name_or_sid: str) -> dict[str, Any]:
    """The preset of ``wf`` with that name or sid."""
    presets = rpc.call("example_list", {"workflow_sid": wf["sid"]})
    for preset in presets:
        if name_or_sid in (preset["name"], preset["sid"]):
            return dict(preset)
    known = ", ".join(p["name"] for p in presets)
    there = f"its presets: {known}" if known else "it has none"
    msg = (
        f"no preset {name_or_sid!r} for workflow {wf['name']!r} ({there}): save one with "
        f"'hero_logic presets save {wf['name']} NAME -i INPUT=VALUE ...'"
    )
    raise CliError(msg)


def parse_prefill(text: str) -> tuple[str, Any]:
    """``--prefill NAME=JSON``: a pause name (or resume id) and its answer (argparse type)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        msg = f"expected NAME=JSON (a pause name or resume id, '=', the answer as JSON), got {text!r}: e.g. --prefill 'Approve?=true'"
        raise argparse.ArgumentTypeError(msg)
    try:
        return name, json.loads(value)
    except json.JSONDecodeError as exc:
        msg = (
            f"{text!r}: the answer after '=' is not JSON ({exc.msg}); "
            f"give a string in quotes: --prefill '{name}=\"{value}\"'"
        )
        raise argparse.ArgumentTypeError(msg) from None


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@attrs.frozen
class Since:
    """``--since``: an age (``10m`` ago) or a moment (an ISO date or time)."""

    text: str
    age_ms: int | None = None
    at_ms: int | None = None

    def cutoff_ms(self, now_ms: int) -> int:
        """The earliest ``created_at`` that passes, in ms since the epoch."""
        return self.at_ms if self.at_ms is not None else now_ms - (self.age_ms or 0)


def parse_since(text: str) -> Since:
    """``10m``, ``2h``, ``1d``, ``30s``, ``1w``, or an ISO date or date-time (local time unless
    it carries an offset) (argparse type)."""
    stripped = text.strip()
    age = _AGE.fullmatch(stripped.lower())
    if age:
        return Since(text, age_ms=int(float(age.group(1)) * _UNIT_MS[age.group(2)]))
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00") if stripped.endswith("Z") else stripped)
    except ValueError:
        msg = (
            f"{text!r} is neither an age nor a date: give an age such as 10m, 2h, 1d (also 30s, 1w), "
            "or an ISO date or time such as 2024-05-01 or 2024-05-01T09:30"
        )
        raise argparse.ArgumentTypeError(msg) from None
    return Since(text, at_ms=int(moment.astimezone().timestamp() * 1000))


def parse_json_value(text: str, *, what: str) -> Any:
    """``text`` as JSON, or the JSON in the file ``text[1:]`` when it starts with ``@``."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            msg = f"{what}: cannot read {str(path)!r}: {exc.strerror}; give an existing file after '@'"
            raise CliError(msg) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        msg = f"{what}: {shown!r} is not JSON ({exc.msg}); quote strings, e.g. '\"text\"'"
        raise CliError(msg) from None


def parse_inputs(pairs: list[str], fields: list[dict[str, Any]], raw_json: str | None) -> dict[str, Any]:
    """Input values from ``-i NAME=VALUE`` pairs over ``--input-json``; a string field takes
    VALUE as it is, any other field takes it as JSON."""
    values: dict[str, Any] = {}
    if raw_json:
        loaded = parse_json_value(raw_json, what="--input-json")
        if not isinstance(loaded, dict):
            msg = f"--input-json must be a JSON object of input values, got {json.dumps(loaded)[:60]}: e.g. '{{\"who\": \"Ada\"}}'"
            raise CliError(msg)
        values.update(loaded)
    types = {f["name"]: f["field_type"] for f in fields}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"-i expects NAME=VALUE, got {pair!r}: e.g. -i who=Ada"
            raise CliError(msg)
        if types.get(key, "string") == "string":
            values[key] = value
        else:
            try:
                values[key] = json.loads(value)
            except json.JSONDecodeError:
                msg = f"input {key!r} is declared {types[key]}; {value!r} is not valid JSON: e.g. -i {key}=3"
                raise CliError(msg) from None
    return values
