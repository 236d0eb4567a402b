"""A flow's network (CONTRACT.md §12): offline by default, with an error naming
``@flow(network=True)``; with it, a network namespace of its own (pasta) that reaches outside
addresses but not the host's loopback. And local service sockets: ``--service-socket NAME=PATH``
binds exactly the declared ones into the sandbox."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import trio

from hero_logic.kernel import ConfigError
from hero_logic.service._runs import parse_service_sockets

from ._sandbox_helpers import ALL_TIERS, HAVE, open_service, run_flow

CONNECT_FLOW = """
import socket
from hero_tracing import flow

@flow{decorator}
def main(host: str, port: int):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            return "connected: " + s.recv(20).decode()
    except OSError as exc:
        return f"{{type(exc).__name__}}: {{exc}}"
"""

needs_pasta = pytest.mark.skipif(
    not (HAVE["bwrap"] and shutil.which("pasta")), reason="bwrap and pasta (apt-get install passt) are needed"
)


@pytest.fixture(params=ALL_TIERS)
def tier(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _listener(nursery: trio.Nursery, host: str) -> tuple[int, list[int]]:
    listeners = await trio.open_tcp_listeners(0, host=host)
    port = listeners[0].socket.getsockname()[1]
    accepted: list[int] = []

    async def handle(stream: trio.SocketStream) -> None:
        accepted.append(1)
        await stream.send_all(b"hello")
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return port, accepted


async def test_an_offline_flow_s_first_connection_names_the_flag(root: Path, tier: str, nursery: trio.Nursery) -> None:
    port, accepted = await _listener(nursery, "127.0.0.1")
    async with open_service(root, tier) as svc:
        play = await run_flow(svc, CONNECT_FLOW.format(decorator=""), host="127.0.0.1", port=port)
        lookup = await run_flow(svc, CONNECT_FLOW.format(decorator=""), host="example.org", port=443)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"].startswith("NetworkOff: "), play["output_data"]
    assert "@flow(network=True)" in play["output_data"]
    assert "look up 'example.org'" in lookup["output_data"]
    assert accepted == []


@needs_pasta
async def test_a_network_flow_has_its_own_namespace_without_the_host_loopback(root: Path, nursery: trio.Nursery) -> None:
    port, accepted = await _listener(nursery, "127.0.0.1")
    async with open_service(root, "bwrap") as svc:
        loopback = await run_flow(svc, CONNECT_FLOW.format(decorator="(network=True)"), host="127.0.0.1", port=port)
        info = await run_flow(
            svc,
            """
            from hero_tracing import flow

            @flow(network=True)
            def main():
                return open("/proc/net/route").read()
            """,
        )
    assert loopback["status"] == "success", loopback["error_message"]
    assert not loopback["output_data"].startswith("connected"), loopback["output_data"]
    assert accepted == []
    assert "00000000" in info["output_data"], info["output_data"]  # a default route of its own


SOCKET_FLOW = """
import socket
from hero_tracing import flow

@flow(services=[{services}])
def main(name: str):
    path = flow.service_socket(name)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        return s.recv(20).decode()
"""


async def _unix_listener(nursery: trio.Nursery, path: Path, greeting: bytes) -> None:
    sock = trio.socket.socket(socket.AF_UNIX)
    await sock.bind(str(path))
    os.chmod(path, 0o666)  # a service for flows: a root service's env_scrub flows run as their own uid
    sock.listen()
    listener = trio.SocketListener(sock)

    async def handle(stream: trio.SocketStream) -> None:
        await stream.send_all(greeting)
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, handle, [listener])


async def test_a_declared_service_socket_answers_inside_and_an_undeclared_one_is_absent(
    root: Path, tier: str, nursery: trio.Nursery
) -> None:
    await _unix_listener(nursery, root / "broker.sock", b"broker")
    await _unix_listener(nursery, root / "db.sock", b"db")
    sockets = f"broker={root / 'broker.sock'},db={root / 'db.sock'}"
    async with open_service(root, tier, service_sockets=sockets) as svc:
        ok = await run_flow(svc, SOCKET_FLOW.format(services='"broker"'), name="broker")
        undeclared = await run_flow(svc, SOCKET_FLOW.format(services='"broker"'), name="db")
        unknown = await run_flow(svc, SOCKET_FLOW.format(services='"nosuch"'), name="nosuch")
        if tier != "env_scrub":
            probe = await run_flow(
                svc,
                f"""
                import os
                from hero_tracing import flow

                @flow(services=["broker"])
                def main():
                    return [os.path.exists({str(root / 'db.sock')!r}), sorted(os.listdir("/hero/services"))]
                """,
            )
            assert probe["output_data"] == [False, ["broker"]], probe
    assert ok["status"] == "success", ok["error_message"]
    assert ok["output_data"] == "broker"
    assert undeclared["status"] == "failed"
    assert "did not declare the service 'db'" in undeclared["error_message"]
    assert unknown["status"] == "failed"
    assert "--service-socket nosuch=PATH" in unknown["error_message"]


def test_service_socket_settings_are_checked_at_start_up() -> None:
    assert parse_service_sockets("a=/run/a.sock, b.x=/b") == {"a": Path("/run/a.sock"), "b.x": Path("/b")}
    for bad in ("noequals", "a=relative.sock", "a=/x,a=/y", "bad name=/x"):
        with pytest.raises(ConfigError):
            parse_service_sockets(bad)


@pytest.mark.registry
async def test_a_real_package_from_the_configured_index_and_the_internet_through_pasta(root: Path) -> None:
    """The one test that needs the registry: uv resolves a real package from the configured
    index (uv's own configuration: PyPI by default), and a network=True flow reaches it."""
    tier = "bwrap" if HAVE["bwrap"] and shutil.which("pasta") else "env_scrub"
    async with open_service(root, tier) as svc:
        wf = await svc.push(
            """
            # /// script
            # dependencies = ["six>=1.16"]
            # ///
            import socket
            from hero_tracing import flow

            @flow(network=True)
            def main():
                import six
                with socket.create_connection(("pypi.org", 443), timeout=10):
                    pass
                return six.__name__
            """
        )
        with trio.fail_after(120):
            while (v := await svc.call("workflow_version_fetch", version_sid=wf["current_version_sid"]))["env_status"] == "building":
                await trio.sleep(0.2)
        assert v["env_status"] == "ready", v["env_error"]
        assert "six==" in v["lock"]
        play = await svc.run(wf, timeout_ms=60000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == "six"
