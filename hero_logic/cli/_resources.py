"""CLI commands for what flows use beyond their source: secrets, and a pushed version's
environment (PEP 723 dependencies).

``hero_logic secrets set NAME`` reads the value from standard input (piped) or a hidden
prompt, never from the command line, where it would sit in the shell history and ``ps``.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["add_secret_commands", "report_environment"]

_POLL_S = 0.25


def report_environment(client: Any, version_sid: str, *, out: Any = None) -> int:
    """Print the version's dependencies and follow its environment build; 1 if it failed."""
    out = out or sys.stdout
    version = client.call("workflow_version_fetch", {"version_sid": version_sid})
    if not version.get("dependencies"):
        return 0
    pinned = [line.split(" ")[0] for line in version.get("lock", "").splitlines() if "==" in line]
    print(f"dependencies: {', '.join(version['dependencies'])}", file=out)
    print(f"resolved: {', '.join(pinned)} (lock {version['lock_hash'][:12]})", file=out)
    started = time.monotonic()
    if version["env_status"] == "building":
        print("building the environment ...", file=out, flush=True)
    while version["env_status"] == "building":
        time.sleep(_POLL_S)
        version = client.call("workflow_version_fetch", {"version_sid": version_sid})
    if version["env_status"] == "failed":
        print(f"error: the environment failed to build: {version['env_error']}", file=sys.stderr)
        return 1
    print(f"environment ready ({time.monotonic() - started:.1f} s)", file=out)
    return 0


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"value of secret {name} (hidden): ")
    return sys.stdin.read().rstrip("\n")


def _cmd_secrets(client_of: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with client_of(args) as client:
            if args.secrets_command == "set":
                value = _read_value(args.name)
                if not value:
                    print("error: the secret's value is empty: pipe it in or type it at the prompt", file=sys.stderr)
                    return 1
                client.call("secret_set", {"name": args.name, "value": value})
                print(f"secret {args.name} stored (encrypted)")
            elif args.secrets_command == "delete":
                client.call("secret_delete", {"name": args.name})
                print(f"secret {args.name} deleted")
            else:
                for item in client.call("secret_list", {}):
                    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(item["updated_at"] / 1000))
                    print(f"{item['name']}\tupdated {stamp}")
        return 0

    return run


def add_secret_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    client_of: Callable[[argparse.Namespace], Any],
) -> None:
    """``secrets set NAME`` (value from stdin or a hidden prompt), ``secrets list``, ``secrets delete NAME``."""
    secrets = sub.add_parser("secrets", help="manage secrets flows read with flow.secret (values never on the command line)")
    secrets_sub = secrets.add_subparsers(dest="secrets_command", metavar="SECRETS_COMMAND", required=True)
    setting = secrets_sub.add_parser("set", help="store or replace a secret; the value is read from stdin or a hidden prompt")
    setting.add_argument("name", help="secret name, e.g. OPENAI_API_KEY")
    secrets_sub.add_parser("list", help="list secret names and dates (never values)")
    deleting = secrets_sub.add_parser("delete", help="delete a secret")
    deleting.add_argument("name")
    secrets.set_defaults(func=_cmd_secrets(client_of))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``secrets``."""
    from ._common import client

    add_secret_commands(sub, client)
