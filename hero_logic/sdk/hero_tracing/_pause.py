"""``flow.pause`` and the ``ask_user`` helpers built on it.

A pause's resume id is ``sha1(version_sid|parent_path|pause:name|ordinal)``, so the same
pause in a re-run of the same version has the same id. Its answer comes from the replay
file's ``resumes`` (answered before), else its ``prefill`` (by id, then by name); a play
started with prefills fails fast at a pause that has none; otherwise the play pauses.
"""

from __future__ import annotations

from . import _state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TypeVar

    _T = TypeVar("_T")

__all__ = ["AskUser", "ask_user", "pause"]


def pause(name: str, schema: Any = None, ui: Any = None) -> Any:
    """The payload answering pause ``name``; pauses the play when there is none yet."""
    if not isinstance(name, str) or not name:
        msg = f"a pause needs a non-empty string name, got {name!r}"
        raise TypeError(msg)
    runtime = _state.get()
    if runtime is None:
        msg = (
            f"flow.pause({name!r}) needs a play: a pause waits for an answer given through the "
            "hero_logic service, and this process is not running one (HERO_FLOW_SPAN_SOCK is "
            "unset). Run the flow with hero_logic, or give the value directly when running locally."
        )
        raise RuntimeError(msg)
    return runtime.pause(name, schema, ui)


def _choices(options: Sequence[Any], helper: str) -> list[Any]:
    if isinstance(options, str | bytes) or not options:
        msg = f"ask_user.{helper} needs a non-empty list of options, got {options!r}"
        raise ValueError(msg)
    return list(options)


class AskUser:
    """Ask a person for a value: each helper pauses the play with a form hint and returns the answer.

    The prompt is also the pause's name unless ``name=`` is given; give a name when the
    prompt text may change between versions, so answers keep their resume id.
    """

    def text(
        self,
        prompt: str,
        *,
        name: str | None = None,
        default: str | None = None,
        multiline: bool = False,
    ) -> str:
        """A string."""
        schema: dict[str, Any] = {"type": "string"}
        ui: dict[str, Any] = {"kind": "text", "prompt": prompt, "multiline": multiline}
        if default is not None:
            schema["default"] = ui["default"] = default
        answer: str = pause(name or prompt, schema, ui)
        return answer

    def number(
        self,
        prompt: str,
        *,
        name: str | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float:
        """A number (an integer when ``integer=True``), optionally bounded."""
        schema: dict[str, Any] = {"type": "integer" if integer else "number"}
        ui: dict[str, Any] = {"kind": "number", "prompt": prompt, "integer": integer}
        if minimum is not None:
            schema["minimum"] = ui["minimum"] = minimum
        if maximum is not None:
            schema["maximum"] = ui["maximum"] = maximum
        answer: float = pause(name or prompt, schema, ui)
        return answer

    def choice(self, prompt: str, options: Sequence[_T], *, name: str | None = None) -> _T:
        """One of ``options``."""
        choices = _choices(options, "choice")
        answer: _T = pause(
            name or prompt,
            {"enum": choices},
            {"kind": "choice", "prompt": prompt, "options": choices},
        )
        return answer

    def multi_choice(
        self, prompt: str, options: Sequence[_T], *, name: str | None = None
    ) -> list[_T]:
        """A list of distinct ``options`` (possibly empty)."""
        choices = _choices(options, "multi_choice")
        answer: list[_T] = pause(
            name or prompt,
            {"type": "array", "items": {"enum": choices}, "uniqueItems": True},
            {"kind": "multi_choice", "prompt": prompt, "options": choices},
        )
        return answer

    def confirm(self, prompt: str, *, name: str | None = None) -> bool:
        """Yes (``True``) or no (``False``)."""
        answer: bool = pause(
            name or prompt, {"type": "boolean"}, {"kind": "confirm", "prompt": prompt}
        )
        return answer

    def __repr__(self) -> str:
        return "<hero_tracing.ask_user>"


ask_user = AskUser()
