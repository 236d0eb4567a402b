"""Flows with packages (CONTRACT.md §12): PEP 723 dependencies are locked at save with uv,
built once per lock into an environment the sandbox binds read-only, and imported in the play.
Every test serves tiny wheels it builds itself (``--find-links``, no index): none needs the
registry."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.kernel import open_kernel
from hero_logic.rpc import RpcError
from hero_logic.service import open_service as open_domain
from hero_logic.service._environments import (
    read_script_metadata,
    requirement_problem,
    requires_python_problem,
)

from ._sandbox_helpers import ALL_TIERS, HAVE, open_service, run_flow
from ._wheels import extension_wheel, tiny_index
from .conftest import make_config

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Service

FLOW = """
# /// script
# requires-python = ">=3.11"
# dependencies = [{deps}]
# ///
from hero_tracing import flow

@flow
def main():
    import tinypkg
    return {{"value": tinypkg.VALUE, "file": tinypkg.__file__}}
"""


@pytest.fixture(params=ALL_TIERS)
def tier(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _options(root: Path) -> dict[str, Any]:
    return {"index_url": "none", "find_links": str(tiny_index(root / "wheels"))}


async def _ready(svc: Service, version_sid: str) -> dict[str, Any]:
    with trio.fail_after(60):
        while True:
            version: dict[str, Any] = await svc.call("workflow_version_fetch", version_sid=version_sid)
            if version["env_status"] != "building":
                return version
            await trio.sleep(0.05)


# -- the PEP 723 block, read and checked without uv ----------------------------------------------


def test_script_block_is_read_as_pep_723_says() -> None:
    source = '# /// script\n# requires-python = ">=3.11"\n# dependencies = ["a>=1", "b[x]==2; python_version>=\'3\'"]\n# ///\nprint(1)\n'
    meta = read_script_metadata(source)
    assert meta is not None
    assert meta.dependencies == ("a>=1", "b[x]==2; python_version>='3'")
    assert meta.requires_python == ">=3.11"
    assert read_script_metadata("print(1)\n") is None
    with pytest.raises(ValueError, match="not valid TOML"):
        read_script_metadata("# /// script\n# dependencies = [\n# ///\n")
    with pytest.raises(ValueError, match="list of strings"):
        read_script_metadata("# /// script\n# dependencies = 'a'\n# ///\n")


def test_requirements_are_names_and_versions_unless_direct_references_are_allowed() -> None:
    assert requirement_problem("httpx>=0.27,<1", allow_direct=False) == ""
    assert requirement_problem("pydantic[email]==2.9", allow_direct=False) == ""
    for direct in ("pkg @ git+https://example.org/pkg.git", "./local/pkg", "/abs/pkg.whl", "https://x/y.whl"):
        assert "--allow-direct-deps on" in requirement_problem(direct, allow_direct=False), direct
        assert requirement_problem(direct, allow_direct=True) == "", direct
    for bad in ("--index-url http://evil", "-e .", "a\nb", ""):
        assert "not a requirement" in requirement_problem(bad, allow_direct=True), bad


def test_requires_python_is_checked_against_the_interpreter() -> None:
    assert requires_python_problem(">=3.11", (3, 11, 7)) == ""
    assert requires_python_problem(">=3.10,<3.13", (3, 11, 7)) == ""
    assert requires_python_problem("==3.11.*", (3, 11, 7)) == ""
    assert requires_python_problem("~=3.11", (3, 12, 1)) == ""
    assert "excludes the flow interpreter, Python 3.11.7" in requires_python_problem(">=3.12", (3, 11, 7))
    assert "excludes" in requires_python_problem("<3.11", (3, 11, 7))
    assert "excludes" in requires_python_problem("~=3.12.1", (3, 11, 7))
    assert "cannot read" in requires_python_problem("3.11", (3, 11, 7))


# -- end to end, in each tier --------------------------------------------------------------------


async def test_dependencies_are_locked_at_save_and_imported_in_the_play(root: Path, tier: str) -> None:
    async with open_service(root, tier, **_options(root)) as svc:
        wf = await svc.push(FLOW.format(deps='"tinypkg>=1"'))
        version = await _ready(svc, wf["current_version_sid"])
        assert version["dependencies"] == ["tinypkg>=1"]
        assert "tinypkg==1.1" in version["lock"]
        assert "tinydep==1.0" in version["lock"]
        assert "--hash=sha256:" in version["lock"]
        assert version["env_status"] == "ready", version["env_error"]
        play = await svc.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"]["value"] == 44
    if tier != "env_scrub":  # bound read-only into the sandbox
        assert play["output_data"]["file"].startswith("/hero/packages/")


async def test_a_requirement_that_cannot_be_resolved_is_refused_at_save(root: Path) -> None:
    async with open_service(root, "env_scrub", **_options(root)) as svc:
        with pytest.raises(RpcError) as caught:
            await svc.push(FLOW.format(deps='"nosuchpkg>=1"'))
        assert caught.value.code == -32602
        assert "nosuchpkg" in caught.value.message
        assert "cannot be resolved" in caught.value.message
        with pytest.raises(RpcError) as too_new:
            await svc.push(FLOW.format(deps='"tinypkg>=9"'))
        assert too_new.value.code == -32602
        assert "tinypkg" in too_new.value.message
        with pytest.raises(RpcError) as python:
            await svc.push(FLOW.format(deps='"tinypkg"').replace(">=3.11", ">=3.99"))
        assert python.value.code == -32602
        assert "requires-python '>=3.99'" in python.value.message
        with pytest.raises(RpcError) as direct:
            await svc.push(FLOW.format(deps='"tinypkg @ file:///tmp/x.whl"'))
        assert direct.value.code == -32602
        assert "--allow-direct-deps on" in direct.value.message
        assert await svc.call("workflow_list") == []


async def test_versions_with_the_same_lock_share_one_environment(root: Path) -> None:
    async with open_service(root, "env_scrub", **_options(root)) as svc:
        first = await svc.push(FLOW.format(deps='"tinypkg>=1"'))
        second = await svc.push(FLOW.format(deps='"tinypkg>=1.0"') + "\n# another version\n")
        one = await _ready(svc, first["current_version_sid"])
        two = await _ready(svc, second["current_version_sid"])
        assert one["lock_hash"] == two["lock_hash"]
        assert one["env_status"] == two["env_status"] == "ready"
        envs = [p.name for p in svc.config.envs_dir.iterdir() if not p.name.startswith(".")]
        assert envs == [one["lock_hash"]]
        other = await svc.push(FLOW.format(deps='"tinypkg==1.0"'))
        three = await _ready(svc, other["current_version_sid"])
        assert three["lock_hash"] != one["lock_hash"]
        play = await svc.run(other)
        assert play["output_data"]["value"] == 42
        # Shared files are hardlinks into uv's cache: one copy on disk.
        init = svc.config.envs_dir / one["lock_hash"] / "site" / "tinypkg" / "__init__.py"
        assert init.stat().st_nlink >= 2
        # Deleting the last workflow of a lock removes its environment; the shared one stays.
        await svc.call("workflow_delete", sid=other["sid"])
        assert not (svc.config.envs_dir / three["lock_hash"]).exists()
        await svc.call("workflow_delete", sid=first["sid"])
        assert (svc.config.envs_dir / one["lock_hash"]).is_dir()
        await svc.call("workflow_delete", sid=second["sid"])
        assert not (svc.config.envs_dir / one["lock_hash"]).exists()


async def test_a_missing_module_without_dependencies_names_the_pep_723_block(root: Path) -> None:
    async with open_service(root, "env_scrub") as svc:
        play = await run_flow(
            svc,
            """
            from hero_tracing import flow

            @flow
            def main():
                import pydantic_not_here
            """,
        )
    assert play["status"] == "failed"
    assert "No module named 'pydantic_not_here'" in play["error_message"]
    assert "declares no dependencies" in play["error_message"]
    assert "# /// script" in play["error_message"]


@pytest.mark.skipif(not HAVE["bwrap"], reason="bwrap is not installed here")
async def test_the_environment_is_read_only_in_the_sandbox(root: Path) -> None:
    source = FLOW.format(deps='"tinypkg>=1"').replace(
        '    return {"value": tinypkg.VALUE, "file": tinypkg.__file__}',
        textwrap.indent(
            textwrap.dedent(
                """
                try:
                    open(tinypkg.__file__, "a").write("x = 1")
                    return "wrote"
                except OSError as exc:
                    return type(exc).__name__
                """
            ),
            "    ",
        ),
    )
    async with open_service(root, "bwrap", **_options(root)) as svc:
        wf = await svc.push(source)
        await _ready(svc, wf["current_version_sid"])
        play = await svc.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] in ("OSError", "PermissionError"), play["output_data"]


# -- building: a play waits pending, a failed build fails its plays --------------------------------


def _slow_or_failing_uv(folder: Path, real_uv: str, *, install: str) -> str:
    """A uv that resolves as uv does but, on ``pip install``, waits for ``go`` or fails."""
    script = folder / "uv"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = install ]; then\n'
        + (
            f"  while [ ! -e {folder}/go ]; do sleep 0.05; done\n"
            if install == "wait"
            else "  echo 'error: the disk is on fire' >&2; exit 2\n"
        )
        + "fi\n"
        f'exec {real_uv} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


async def test_a_play_waits_pending_while_its_environment_builds(root: Path) -> None:
    config = make_config(root, **_options(root))
    async with open_kernel(config) as kernel, open_domain(kernel, seed=False) as service:
        service.environments.uv = _slow_or_failing_uv(root, service.environments.uv, install="wait")
        wf = await service.workflows.workflow_create("pkg", python_source=FLOW.format(deps='"tinypkg"'))
        version = await service.workflows.workflow_version_fetch(wf.current_version_sid)
        assert version.env_status == "building"
        sid = await service.plays.play_start(wf.sid)
        await trio.sleep(0.5)
        assert (await service.plays.play_status(sid)).status.value == "pending"
        (root / "go").touch()
        play = await service.plays.play_wait(sid, 30000)
        assert play.status.value == "success", play.error_message
        version = await service.workflows.workflow_version_fetch(wf.current_version_sid)
        assert version.env_status == "ready"


async def test_a_failed_build_marks_the_version_and_fails_its_plays_naming_it(root: Path) -> None:
    config = make_config(root, **_options(root))
    async with open_kernel(config) as kernel, open_domain(kernel, seed=False) as service:
        service.environments.uv = _slow_or_failing_uv(root, service.environments.uv, install="fail")
        wf = await service.workflows.workflow_create("pkg", python_source=FLOW.format(deps='"tinypkg"'))
        sid = await service.plays.play_start(wf.sid)
        play = await service.plays.play_wait(sid, 30000)
        version = await service.workflows.workflow_version_fetch(wf.current_version_sid)
    assert version.env_status == "failed"
    assert "the disk is on fire" in version.env_error
    assert play.status.value == "failed"
    assert "failed to build" in play.error_message
    assert "the disk is on fire" in play.error_message


async def test_a_compiled_extension_is_resolved_built_and_imported_in_each_tier(root: Path, tier: str) -> None:
    options = _options(root)
    if extension_wheel(root / "wheels", make_config(root).python) is None:
        pytest.skip("no C compiler or Python headers here to build the test's extension wheel")
    source = """
# /// script
# dependencies = ["tinyext==1.0", "tinypkg==1.0"]
# ///
from hero_tracing import flow

@flow
def main(n: int):
    import tinyext, tinypkg
    return [tinyext.square(n), tinypkg.VALUE]
"""
    async with open_service(root, tier, **options) as svc:
        wf = await svc.push(source)
        version = await _ready(svc, wf["current_version_sid"])
        assert version["env_status"] == "ready", version["env_error"]
        play = await svc.run(wf, n=12)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == [144, 42]


async def test_a_build_cut_short_by_a_restart_is_resumed_at_start_up(root: Path) -> None:
    config = make_config(root, **_options(root))
    async with open_kernel(config) as kernel, open_domain(kernel, seed=False) as service:
        service.environments.uv = _slow_or_failing_uv(root, service.environments.uv, install="wait")
        wf = await service.workflows.workflow_create("pkg", python_source=FLOW.format(deps='"tinypkg"'))
        with trio.fail_after(10):
            while not any(p.name.startswith(".build-") for p in config.envs_dir.iterdir()):
                await trio.sleep(0.02)
    # The service stopped mid-build: its scratch directory and a "building" version remain.
    async with open_kernel(config) as kernel, open_domain(kernel, seed=False) as service:
        with trio.fail_after(30):
            while (await service.workflows.workflow_version_fetch(wf.current_version_sid)).env_status == "building":
                await trio.sleep(0.05)
        version = await service.workflows.workflow_version_fetch(wf.current_version_sid)
        assert version.env_status == "ready", version.env_error
        assert not any(p.name.startswith(".build-") for p in config.envs_dir.iterdir())
