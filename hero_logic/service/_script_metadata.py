"""Reading and checking a flow source's PEP 723 ``script`` block (no uv, no I/O).

Moved out of :mod:`._environments`, which re-exports every public name here:
:func:`read_script_metadata` parses the block into :class:`ScriptMetadata` (its
``dependencies`` and ``requires-python``); :func:`requirement_problem` says why one requirement
is refused (plain names and version specifiers only, unless direct references are allowed);
:func:`requires_python_problem` says why the flow interpreter does not satisfy
``requires-python``.
"""

from __future__ import annotations

import re
import tomllib

import attrs

__all__ = [
    "MAX_DEPENDENCIES",
    "ScriptMetadata",
    "read_script_metadata",
    "requirement_problem",
    "requires_python_problem",
]

_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")
"""The reference regular expression of PEP 723."""
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PLAIN_REQ = re.compile(
    rf"\s*{_NAME}\s*(\[\s*{_NAME}(\s*,\s*{_NAME})*\s*\])?\s*"
    r"(\(?\s*(===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*(,\s*(===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*)*\)?)?"
    r"\s*(;[^\n\r]*)?"
)
_DIRECT_REQ = re.compile(rf"\s*{_NAME}\s*(\[[^\]]*\])?\s*@\s*\S+\s*(;[^\n\r]*)?")
MAX_DEPENDENCIES = 200


@attrs.frozen
class ScriptMetadata:
    """The ``script`` block of a flow source (PEP 723)."""

    dependencies: tuple[str, ...] = ()
    requires_python: str = ""


def read_script_metadata(source: str) -> ScriptMetadata | None:
    """The PEP 723 ``script`` block of ``source``, or None; ValueError says what is wrong."""
    blocks = [m for m in _BLOCK.finditer(source) if m.group("type") == "script"]
    if not blocks:
        return None
    if len(blocks) > 1:
        msg = "the source has more than one '# /// script' block: PEP 723 allows one"
        raise ValueError(msg)
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in blocks[0].group("content").splitlines(keepends=True)
    )
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        msg = f"the '# /// script' block is not valid TOML: {exc}"
        raise ValueError(msg) from None
    deps = data.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        msg = 'the script block\'s dependencies must be a list of strings, e.g. dependencies = ["httpx>=0.27"]'
        raise ValueError(msg)
    if len(deps) > MAX_DEPENDENCIES:
        msg = f"the script block lists {len(deps)} dependencies; at most {MAX_DEPENDENCIES} are accepted"
        raise ValueError(msg)
    requires = data.get("requires-python", "")
    if not isinstance(requires, str):
        msg = f'the script block\'s requires-python must be a string such as ">=3.11", got {requires!r}'
        raise ValueError(msg)
    return ScriptMetadata(dependencies=tuple(d.strip() for d in deps), requires_python=requires.strip())


def requirement_problem(requirement: str, *, allow_direct: bool) -> str:
    """Why ``requirement`` is refused, or "" (names and version specifiers only, unless the
    operator allows direct references: a local path, a VCS or file URL)."""
    if not requirement or "\n" in requirement or "\r" in requirement or requirement.startswith("-"):
        return f"{requirement!r} is not a requirement: write a package name and an optional version, e.g. 'httpx>=0.27'"
    if _PLAIN_REQ.fullmatch(requirement):
        return ""
    if _DIRECT_REQ.fullmatch(requirement) or requirement.startswith((".", "/", "~")) or "://" in requirement:
        if allow_direct:
            return ""
        return (
            f"{requirement!r} is a direct reference (a local path or a URL), which this service "
            "refuses: name a package from the index (e.g. 'name>=1.0'), or start the service with "
            "--allow-direct-deps on"
        )
    return f"{requirement!r} is not a requirement hero_logic accepts: write 'name', 'name>=1.2' or 'name[extra]==1.2; python_version>=\"3.11\"'"


def _version_tuple(text: str) -> tuple[int, ...] | None:
    parts = []
    for piece in text.strip().split("."):
        if not piece.isdigit():
            return None
        parts.append(int(piece))
    return tuple(parts)


def requires_python_problem(spec: str, version: tuple[int, int, int]) -> str:
    """Why the interpreter ``version`` does not satisfy ``spec`` (``">=3.11,<3.13"``), or ""."""
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(===|==|!=|~=|<=|>=|<|>)\s*([0-9.]+)(\.\*)?", clause)
        if match is None:
            return f"requires-python {spec!r}: cannot read the clause {clause!r}; write e.g. '>=3.11'"
        op, raw, star = match.groups()
        want = _version_tuple(raw)
        if want is None:
            return f"requires-python {spec!r}: {raw!r} is not a version"
        have = version[: len(want)] if star or op == "~=" else version
        padded = want + (0,) * (len(have) - len(want))
        ok = {
            "==": have == padded, "===": have == padded, "!=": have != padded,
            ">=": have >= padded, "<=": have <= padded, ">": have > padded, "<": have < padded,
            "~=": version >= want + (0,) * (3 - len(want)) and version[: len(want) - 1] == want[:-1],
        }[op]  # fmt: skip
        if not ok:
            running = ".".join(map(str, version))
            return (
                f"requires-python {spec!r} excludes the flow interpreter, Python {running}: "
                f"widen requires-python, or run the service with a matching --python"
            )
    return ""
