"""The ``hero_logic`` argument parser: every subcommand's options reach that subcommand.

These tests walk the whole argparse tree, so an option added later that collides with a global
flag (as ``plays --status`` once collided with the service's ``--status``) fails here.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.cli import build_parser, main

if TYPE_CHECKING:
    from collections.abc import Iterator

# A value each option accepts, for options whose type rejects the plain sample "7".
SAMPLES = {
    "--since": "10m",
    "--prefill": 'q="yes"',
    "--input": "who=Ada",
    "-i": "who=Ada",
}


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = (), ancestors: tuple[argparse.Action, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, tuple[argparse.Action, ...]]]:
    """Every (sub)parser with the words that reach it and the options of the parsers above it."""
    yield path, parser, ancestors
    own = tuple(a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # an alias names the same parser
                    seen.add(id(sub))
                    yield from _walk(sub, (*path, name), ancestors + own)


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    return [
        "x" for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction) and a.nargs not in ("*", "?")
    ]


def _sample(action: argparse.Action) -> tuple[list[str], Any]:
    """Words that give ``action`` a value, and the value it should then hold."""
    flag = max(action.option_strings, key=len)
    if action.nargs == 0:
        return [flag], action.const
    text = SAMPLES.get(flag, "7")
    if action.choices:
        text = str(next(iter(action.choices)))
    value = action.type(text) if callable(action.type) else text  # type: ignore[arg-type]
    if isinstance(action, argparse._AppendAction):
        value = [value]
    return [flag, text], value


def _commands() -> list[Any]:
    return [pytest.param(*entry, id=" ".join(entry[0])) for entry in _walk(build_parser()) if entry[0]]


@pytest.mark.parametrize(("path", "sub", "ancestors"), _commands())
def test_every_subcommand_option_parses_into_its_own_value(
    path: tuple[str, ...], sub: argparse.ArgumentParser, ancestors: tuple[argparse.Action, ...]
) -> None:
    """Each option of each subcommand lands in its own attribute and leaves every global flag
    (``--status``, ``--socket``, the settings, ...) at its default."""
    parser = build_parser()
    taken = {a.dest: max(a.option_strings, key=len) for a in ancestors}
    for action in sub._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flag = max(action.option_strings, key=len)
        assert action.dest not in taken, (
            f"'hero_logic {' '.join(path)} {flag}' stores into {action.dest!r}, as the global "
            f"{taken[action.dest]} does: give one of them another dest"
        )
        words, expected = _sample(action)
        required = [w for other in sub._actions if other.required and other.option_strings and other is not action for w in _sample(other)[0]]
        args = parser.parse_args([*path, *_positionals(sub), *required, *words])
        assert getattr(args, action.dest) == expected, f"hero_logic {' '.join(path)} {' '.join(words)}"
        for outer in ancestors:
            assert getattr(args, outer.dest, outer.default) == outer.default, (
                f"'hero_logic {' '.join(path)} {' '.join(words)}' changed the global {max(outer.option_strings, key=len)}"
            )


def test_plays_status_filters_plays_and_does_not_ask_about_the_service() -> None:
    args = build_parser().parse_args(["plays", "--status", "failed"])
    assert args.status == "failed"
    assert args.func.__name__ == "_cmd_plays"
    assert not args.service_status


def test_a_service_flag_with_a_subcommand_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--status", "plays"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--status" in err
    assert "plays" in err
