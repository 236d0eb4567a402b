"""What every command module shares: the settings flags, the client, JSON output, lookups, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hero_logic.kernel import SETTINGS, Config

if TYPE_CHECKING:
    import argparse

__all__ = [
    "MAX_LIST",
    "CliError",
    "add_settings",
    "client",
    "config",
    "parse_inputs",
    "parse_json_value",
    "print_json",
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
