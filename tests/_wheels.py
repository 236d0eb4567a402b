"""Tiny wheels built in the test, so package tests never need the registry."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path


def build_wheel(
    folder: Path, name: str, version: str, files: Mapping[str, str], requires: Iterable[str] = ()
) -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl`` in ``folder`` holding ``files``."""
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents = dict(files)
    contents[f"{dist}/METADATA"] = meta
    contents[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: hero-logic-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    contents[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in contents.items():
            zf.writestr(member, text)
    return path


def tiny_index(folder: Path) -> Path:
    """``tinypkg`` 1.0 and 1.1 (1.1 needs ``tinydep``), and ``tinydep`` 1.0."""
    build_wheel(folder, "tinypkg", "1.0", {"tinypkg/__init__.py": "VALUE = 42\n"})
    build_wheel(
        folder, "tinypkg", "1.1",
        {"tinypkg/__init__.py": "from tinydep import X\nVALUE = 43 + X\n"},
        requires=["tinydep>=1"],
    )  # fmt: skip
    build_wheel(folder, "tinydep", "1.0", {"tinydep/__init__.py": "X = 1\n"})
    return folder
