"""Strict replay: a re-run must make the calls its recorded run made, where it made them.

A play re-runs its source on every resume and recovery. The service sends, in the replay
file's ``recorded``, what the play's earlier runs did: every ``@flow`` call and pause, in the
order they were first made, each with the step key of the call it was made in (its
*parent*), and the parents some of whose calls came from other branches (threads, asyncio
tasks) than the one the parent's body runs in. This module holds a run to that record:

- **At each call and pause, before its body runs**: under a parent whose calls all came from
  the branch its body runs in, in the recorded run and so far in this one, the call at position *n* (counting the
  calls and pauses under that parent) must be the one recorded at position *n*: the same
  step key (name, arguments, ordinal) or resume id. Parallel branches reach their calls in
  any order, so their positions are not compared.
- **When the run ends** (the entry flow returns, raises or pauses): every step the record
  holds as finished and every pause it holds as answered was reached again, unless it sits
  inside a step this run replayed (whose body, and so whose children, did not run).

The first difference raises :class:`~hero_tracing._spans.Nondeterministic` (a
``BaseException``), and every later call raises it again: the play fails as
``nondeterministic``, naming the recorded call, its position, and what this run did instead.
An entry flow declared ``@flow(strict_replay=False)`` is not held to its record.

The branch detection also runs on a first run, so that the record says which parents ran
their calls in parallel: :func:`place` marks the first call made from another branch (thread,
asyncio task) than the one its parent's body runs in. A parent's calls made from its own body
come in program order; calls from branches it started may come in any order.
"""

from __future__ import annotations

import sys
from _thread import get_ident as _get_ident

from ._spans import Nondeterministic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["PARALLEL", "Strict", "place"]

_modules = sys.modules
_POSITION = object()
"""Key, in a parent's ``counts``, of the next position under it in this run."""
_HOME = object()
"""Key, in a call's ``counts``, of the branch its body runs in."""
PARALLEL = object()
"""Key, in a parent's ``counts``, set once a call under it came from another branch than the
one the parent's body runs in (a thread, an asyncio task of a ``gather``)."""

_MAX_SHOWN = 120
"""Characters of a call's arguments a message shows."""

FIX = (
    "keep what varies between runs (the time, random numbers, reads of data that changes, "
    "the order of a set) inside a @flow step, whose value is recorded, so that every run takes "
    "the same path; or mark the entry flow @flow(strict_replay=False) to let a re-run depart "
    "(a step whose key changed then runs again, and a pause whose id changed asks again, its "
    "earlier answer unused)"
)


def place(counts: dict[object, Any], own: dict[object, Any] | None = None) -> tuple[int, bool]:
    """The position of the next call or pause under the parent whose ``counts`` these are,
    and whether it is the first made from another branch than the parent's body runs in.

    ``own``: the call's own counts, where the branch its body runs in (this one) is noted.
    """
    position: int = counts.get(_POSITION, 0)
    counts[_POSITION] = position + 1
    # The branch running now: the thread and, inside an event loop, the asyncio task.
    here: object = _get_ident()
    aio = _modules.get("asyncio")
    if aio is not None:
        loop = aio._get_running_loop()
        if loop is not None:
            here = (here, id(aio.current_task(loop)))
    if own is not None:
        own[_HOME] = here
    if counts.setdefault(_HOME, here) != here and PARALLEL not in counts:
        counts[PARALLEL] = True
        return position, True
    return position, False


def _shown(name: str, kind: str, args: str) -> str:
    """A call as a message names it: ``enrich(row=5)``, or ``pause 'Ship it?'``."""
    if kind in ("pause", "asked", "answered"):
        return f"pause {name!r}"
    text = args
    if args.startswith("{"):
        from ._jsoncodec import loads

        try:
            value = loads(args)
        except ValueError:  # cut short by the trace bound: show it as it is
            value = None
        if isinstance(value, dict):
            from ._wire import canonical_json

            text = ", ".join(f"{k}={canonical_json(v)}" for k, v in value.items())
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return f"{name}({text})"


class Strict:
    """One run's check against the play's recorded run (see the module docstring)."""

    __slots__ = ("by_id", "by_parent", "departure", "enabled", "entries", "parallel", "reached", "replayed")

    def __init__(self, recorded: Mapping[str, Any]) -> None:
        self.enabled = True
        """False when the entry flow is ``@flow(strict_replay=False)``."""
        self.departure = ""
        """The first difference found (every later call raises it again)."""
        calls = recorded.get("calls")
        self.entries: list[list[Any]] = [
            entry
            for entry in (calls if isinstance(calls, list) else ())
            if isinstance(entry, list)
            and len(entry) >= 4
            and all(isinstance(part, str) for part in entry[:4])
        ]
        self.by_parent: dict[str, list[list[Any]]] = {}
        self.by_id: dict[str, list[Any]] = {}
        for entry in self.entries:
            self.by_parent.setdefault(entry[0], []).append(entry)
            self.by_id.setdefault(entry[1], entry)
        parallel = recorded.get("parallel")
        self.parallel = {p for p in (parallel if isinstance(parallel, list) else ()) if isinstance(p, str)}
        self.reached: set[str] = set()
        self.replayed: set[str] = set()

    def check(
        self,
        parent: str,
        position: int,
        parallel: bool,
        ident: str,
        kind: str,
        name: str,
        args: str,
        replayed: bool,
    ) -> None:
        """Note a call (``kind`` ``"call"``) or pause (``"pause"``) this run makes at
        ``position`` under ``parent``; raise Nondeterministic if it departs from the record."""
        if not self.enabled:
            return
        if self.departure:
            raise Nondeterministic(self.departure)
        self.reached.add(ident)
        if replayed:
            self.replayed.add(ident)
        if parallel or parent in self.parallel:
            return
        recorded = self.by_parent.get(parent)
        if recorded is None or position >= len(recorded):
            return  # past what the recorded run did here: new ground
        entry = recorded[position]
        if entry[1] == ident:
            return
        was = _shown(entry[2], entry[3], entry[4] if len(entry) > 4 and isinstance(entry[4], str) else "")
        now = _shown(name, kind, args)
        did = "asked" if entry[3] in ("asked", "answered") else "called"
        does = "asked" if kind == "pause" else "called"
        self.departure = (
            f"nondeterministic: this run departed from the play's recorded run at "
            f"{self._where(entry, position)}: the recorded run {did} {was} there (span "
            f"{entry[1][:20]}), this run {does} {now} instead: {FIX}"
        )
        raise Nondeterministic(self.departure)

    def _where(self, entry: list[Any], position: int) -> str:
        parent = self.by_id.get(entry[0])
        inside = f"{parent[2]!r}" if parent is not None else "the play"
        return f"call {position + 1} inside {inside}"

    def finish(self, instead: str) -> str:
        """The departure of a run that ended as ``instead`` says (``"returned"``, ``"paused
        at pause 'x'"``, ``"failed: ..."``), or ``""``: the first finished step or answered
        pause of the record this run did not reach, unless a step it replayed holds it."""
        if not self.enabled:
            return ""
        if self.departure:
            return self.departure
        for entry in self.entries:
            if entry[3] not in ("finished", "answered") or entry[1] in self.reached or self._covered(entry):
                continue
            position = self.by_parent[entry[0]].index(entry)
            what = (
                f"the answer to pause {entry[2]!r}"
                if entry[3] == "answered"
                else f"the step {_shown(entry[2], entry[3], entry[4] if len(entry) > 4 and isinstance(entry[4], str) else '')}"
            )
            self.departure = (
                f"nondeterministic: this run {instead} without reaching {what} (span "
                f"{entry[1][:20]}, {self._where(entry, position)}), which the recorded run "
                f"{'received' if entry[3] == 'answered' else 'finished'}: {FIX}"
            )
            return self.departure
        return ""

    def _covered(self, entry: list[Any]) -> bool:
        """True if a step this run replayed holds ``entry`` (its body did not run this time)."""
        parent = entry[0]
        for _ in range(10_000):  # a bound, should the record hold a cycle
            if not parent:
                return False
            if parent in self.replayed:
                return True
            above = self.by_id.get(parent)
            parent = above[0] if above is not None else ""
        return False
