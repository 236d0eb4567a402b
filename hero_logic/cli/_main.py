"""The ``hero_logic``, ``hero_logic_server`` and ``hero_logic_admin`` commands.

``hero_logic`` manages the service (``--start``, ``--stop``, ``--status``, ``--info``, ``serve``)
and talks to it over its RPC socket. argparse (stdlib) builds the parser from the one settings
table, so every setting has the same flag everywhere.

The user commands live in one module per group, each with a ``register(subparsers)`` that
adds its subcommands (and sets ``func``, the function that runs one):

- ``_flows``: ``flow push|list``, ``search``;
- ``_plays``: ``run``, ``retry``, ``plays``, ``tree``, ``watch``, ``wait``, ``cancel``;
- ``_answers``: ``resume``;
- ``_presets``: ``presets list|save|delete``, ``bench run|show|list``, ``pick``.

A new group (say, schedules) is a new module with its ``register``, listed in
:data:`COMMAND_GROUPS`; ``tests/test_cli_parser.py`` then checks that its options parse.
A command raises :class:`~hero_logic.cli._common.CliError` for a mistake the user can fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from hero_logic.kernel import HeroLogicError

from . import _answers, _events, _flows, _fork, _plays, _presets, _resources, _schedules, _webhooks
from ._common import CliError, add_settings, config

__all__ = ["COMMAND_GROUPS", "admin_main", "build_parser", "main", "server_main"]

COMMAND_GROUPS = (_flows, _plays, _answers, _fork, _events, _schedules, _presets, _resources, _webhooks)
"""The modules whose ``register`` adds the user commands, in the order ``--help`` lists them."""

_SERVICE_FLAGS = ("start", "stop", "status", "info")


def _cmd_serve(args: argparse.Namespace) -> int:
    from ._daemon import run_foreground

    return run_foreground(config(args), admin=True)


def _cmd_info(args: argparse.Namespace) -> int:
    from hero_logic._service_toml import service_toml_text

    print(service_toml_text(), end="")
    return 0


def _setup_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per RPC call is noise here


def build_parser() -> argparse.ArgumentParser:
    """The ``hero_logic`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hero_logic",
        description="Runnable, observable, resumable Python flows. Start the service with "
        "'hero_logic serve' (foreground) or 'hero_logic --start' (background).",
    )
    lifecycle = parser.add_mutually_exclusive_group()
    # Their own dests: a subcommand option such as 'plays --status' must not set them.
    lifecycle.add_argument("--start", dest="service_start", action="store_true", help="start the service in the background (pid file)")
    lifecycle.add_argument("--stop", dest="service_stop", action="store_true", help="stop the background service")
    lifecycle.add_argument("--status", dest="service_status", action="store_true", help="is the service running? (exit 0 if so)")
    lifecycle.add_argument("--info", dest="service_info", action="store_true", help="print service.toml")
    parser.add_argument("--socket", help="RPC socket to talk to (default: derived from PATH_ROOT/PATH_SOCKET)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    add_settings(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run kernel + RPC server + web admin in the foreground").set_defaults(func=_cmd_serve)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hero_logic``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    service_flag = next((f"--{w}" for w in _SERVICE_FLAGS if getattr(args, f"service_{w}")), "")
    if service_flag and args.command:
        parser.error(
            f"{service_flag} manages the service and takes no command, got {service_flag} {args.command!r}: "
            f"run 'hero_logic {service_flag}' and 'hero_logic {args.command} ...' separately"
        )
    _setup_logging(args)
    try:
        from hero_logic._service_toml import load_service_toml

        load_service_toml()
        if args.service_info:
            return _cmd_info(args)
        if service_flag:
            from ._daemon import start, status, stop

            settings = config(args)
            if args.service_start:
                return start(settings, sys.argv[1:])
            return stop(settings) if args.service_stop else status(settings)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args))
    except CliError as exc:
        print(f"{exc.prefix}{exc.message}", file=sys.stderr)
        return exc.exit_code
    except HeroLogicError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if getattr(exc, "data", None) and args.verbose:
            print(json.dumps(exc.data, indent=2), file=sys.stderr)
        return 1
    except ConnectionError as exc:  # the client's ServiceUnavailable says where and how to start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def server_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hero_logic_server``: kernel + RPC in the foreground."""
    parser = argparse.ArgumentParser(prog="hero_logic_server", description="hero_logic kernel + JSON-RPC server (foreground)")
    parser.add_argument("--info", action="store_true", help="print service.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    add_settings(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.info:
        return _cmd_info(args)
    try:
        from ._daemon import run_foreground

        return run_foreground(config(args))
    except HeroLogicError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def admin_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hero_logic_admin``: the web admin in the foreground, talking to a
    running service over its RPC socket."""
    parser = argparse.ArgumentParser(
        prog="hero_logic_admin",
        description="hero_logic web admin (foreground): serves admin.sock and --admin-bind, "
        "and talks to the service over its RPC socket",
    )
    parser.add_argument("--info", action="store_true", help="print service.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    add_settings(parser)
    args = parser.parse_args(argv)
    _setup_logging(args)  # the admin's every RPC call is noise at INFO
    if args.info:
        return _cmd_info(args)
    try:
        from ._daemon import run_admin

        return run_admin(config(args))
    except HeroLogicError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
