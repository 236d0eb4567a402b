"""A play as it stood when the harness looked: its record, span tree and open waits, with the
assertions a flow's test makes on them."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from ._waits import Answered, FlowAssertionError, Wait

if TYPE_CHECKING:
    from ._tree import SpanTree

__all__ = ["PlayResult"]

_MISSING = object()


@attrs.frozen
class PlayResult:
    """One look at a play: ``play`` is its record (the service's Play JSON), ``tree`` its
    spans, ``waits`` what it waits on (when ``awaiting_resume``), ``answered`` the answers the
    harness gave it on the way here."""

    play: Mapping[str, Any] = attrs.field(repr=False)
    tree: SpanTree = attrs.field(repr=False)
    waits: tuple[Wait, ...] = ()
    answered: tuple[Answered, ...] = ()
    flow_name: str = ""

    @property
    def sid(self) -> str:
        return str(self.play["sid"])

    @property
    def status(self) -> str:
        """``success``, ``failed``, ``cancelled``, ``timed_out``, ``awaiting_resume``, ..."""
        return str(self.play["status"])

    @property
    def output(self) -> Any:
        """The flow's return value (``output_data``)."""
        return self.play.get("output_data")

    @property
    def error(self) -> str:
        """The play's ``error_message`` ("" unless it failed)."""
        return str(self.play.get("error_message") or "")

    @property
    def pauses(self) -> tuple[Wait, ...]:
        """The open waits that are questions (pauses), in the order they were asked."""
        return tuple(w for w in self.waits if w.is_pause)

    def __repr__(self) -> str:
        return f"<PlayResult {self.sid} {self.flow_name or self.play.get('workflow_sid')} {self.status}>"

    # -- messages -------------------------------------------------------------------------------

    def describe(self) -> str:
        """The play's state for a failure message: status, error, open waits and span tree."""
        lines = [f"play {self.sid} of {self.flow_name or self.play.get('workflow_sid')!r} is {self.status}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for wait in self.waits:
            lines.append(f"  waits on {wait.describe()}")
        for answer in self.answered:
            lines.append(f"  answered {answer.wait.name!r} with {answer.payload!r}")
        lines.append("  span tree:")
        lines.append(textwrap.indent(self.tree.render(), "    "))
        return "\n".join(lines)

    def fail(self, message: str) -> NoReturn:
        """Raise a FlowAssertionError: ``message``, then the play's state."""
        __tracebackhide__ = True
        msg = f"{message}\n{self.describe()}"
        raise FlowAssertionError(msg)

    # -- assertions -----------------------------------------------------------------------------

    def assert_status(self, status: str) -> None:
        """The play ended (or stopped) with ``status``."""
        __tracebackhide__ = True
        if self.status != status:
            self.fail(f"expected the play to be {status}, it is {self.status}")

    def assert_succeeded(self, expected: Mapping[str, Any] | None = None, *, partial: bool = False) -> Any:
        """The play succeeded (and, given ``expected``, returned it: see :meth:`assert_output`);
        returns the output."""
        __tracebackhide__ = True
        if self.status != "success":
            why = ""
            if self.status == "awaiting_resume" and self.pauses:
                pause = self.pauses[0]
                why = f": it waits on {pause.describe()} and no answer was given for it"
            self.fail(f"expected the play to succeed, it is {self.status}{why}")
        if expected is not None:
            self.assert_output(expected, partial=partial)
        return self.output

    def assert_output(self, expected: Any, *, partial: bool = False) -> None:
        """The output equals ``expected``; with ``partial=True`` only the keys of ``expected``
        are compared. Values are compared with ``==``, so ``pytest.approx`` works."""
        __tracebackhide__ = True
        got = self.output
        if not (isinstance(expected, Mapping) and isinstance(got, Mapping)):
            if expected != got:
                self.fail(f"output of play {self.sid}: expected {expected!r}, got {got!r}")
            return
        problems = []
        for key, want in expected.items():
            have = got.get(key, _MISSING)
            if have is _MISSING:
                problems.append(f"  missing {key!r} (expected {want!r})")
            elif want != have:
                problems.append(f"  {key!r}: expected {want!r}, got {have!r}")
        if not partial:
            problems += [f"  unexpected {key!r}: {value!r}" for key, value in got.items() if key not in expected]
        if problems:
            raise FlowAssertionError(
                f"output of play {self.sid} ({self.flow_name}) differs from the expected:\n"
                + "\n".join(problems)
                + f"\n  output: {dict(got)!r}"
            )

    def assert_failed(self, match: str | None = None) -> str:
        """The play failed, with an error message containing ``match`` (plain text, not a
        pattern); returns the message."""
        __tracebackhide__ = True
        if self.status != "failed":
            self.fail(f"expected the play to fail{f' with {match!r}' if match else ''}, it is {self.status}")
        if match is not None and match not in self.error:
            self.fail(f"expected the play's error to contain {match!r}")
        return self.error

    def assert_waiting(self, pause: str | None = None) -> Wait:
        """The play is ``awaiting_resume`` on the pause named ``pause`` (or on any pause);
        returns it."""
        __tracebackhide__ = True
        what = f"pause {pause!r}" if pause else "a pause"
        if self.status != "awaiting_resume":
            self.fail(f"expected the play to wait on {what}, it is {self.status}")
        for wait in self.pauses:
            if pause is None or pause in (wait.name, wait.id):
                return wait
        self.fail(f"expected the play to wait on {what}")
