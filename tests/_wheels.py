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
    folder: Path,
    name: str,
    version: str,
    files: Mapping[str, str | bytes],
    requires: Iterable[str] = (),
    tag: str = "py3-none-any",
) -> Path:
    """A wheel ``name-version-<tag>.whl`` in ``folder`` holding ``files`` (pure Python by default)."""
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents = dict(files)
    contents[f"{dist}/METADATA"] = meta
    purelib = "true" if tag.endswith("-none-any") else "false"
    contents[f"{dist}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: hero-logic-tests\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    record = []
    for path, text in contents.items():
        data = text.encode() if isinstance(text, str) else text
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    contents[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{tag}.whl"
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


EXTENSION_C = """
#include <Python.h>
static PyObject *square(PyObject *self, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(n * n);
}
static PyMethodDef methods[] = {{"square", square, METH_O, "n * n, in C"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tinyext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_tinyext(void) { return PyModule_Create(&module); }
"""


def extension_wheel(folder: Path, python: str) -> Path | None:
    """``tinyext`` 1.0, a C extension compiled here for ``python`` (None without a C compiler
    or the interpreter's headers)."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    query = (
        "import sys, sysconfig; print(sysconfig.get_paths()['include']); "
        "print(sysconfig.get_config_var('EXT_SUFFIX')); "
        "print(f'cp{sys.version_info[0]}{sys.version_info[1]}'); "
        "print(sysconfig.get_platform().replace('-', '_').replace('.', '_'))"
    )
    include, suffix, abi, platform = subprocess.run(
        [python, "-c", query], capture_output=True, text=True, check=True
    ).stdout.split()
    if not (Path(include) / "Python.h").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "tinyext.c"
        source.write_text(EXTENSION_C)
        built = Path(tmp) / f"tinyext{suffix}"
        result = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O1", f"-I{include}", str(source), "-o", str(built)],
            capture_output=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return None
        binary = built.read_bytes()
    return build_wheel(folder, "tinyext", "1.0", {f"tinyext{suffix}": binary}, tag=f"{abi}-{abi}-{platform}")
