"""The web admin over HTTP (no browser): pages, the RPC proxy, the relayed stream, and the
"only the owner gets in" checks (RELIABILITY.md promise 7): Host, Origin, CSRF, no CORS, 0600.
"""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest
import trio

from hero_logic.admin import parse_admin_bind, serve_admin
from hero_logic.kernel import ConfigError
from hero_logic.rpc import open_stream
from hero_logic.server import serve

from ._admin_kit import csrf_of, start_admin
from ._ws import raw_handshake
from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from .conftest import Service

FLOW = """
from hero_tracing import flow

@flow(name="double", inputs={"n": {"type": "integer", "default": 2}})
def main(n):
    flow.current_span.tag(n=n)
    return {"value": n * 2}
"""


@attrs.define
class Admin:
    """A running admin in front of a running service, and an HTTP client of its TCP address."""

    service: Service
    host: str
    http: httpx.AsyncClient
    csrf: str

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    async def rpc(self, method: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        base = {"x-csrf-token": self.csrf, "origin": self.origin}
        return await self.http.post(
            "/api/rpc", json={"method": method, "params": params}, headers={**base, **(headers or {})}
        )


@pytest.fixture
async def admin(service: Service, nursery: trio.Nursery) -> AsyncIterator[Admin]:
    host = await start_admin(service, nursery)
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        yield Admin(service, host, http, csrf_of((await http.get("/")).text))


async def test_pages_are_served_with_a_strict_content_security_policy(admin: Admin) -> None:
    wf = await admin.service.push(FLOW)
    play = await admin.service.run(wf)
    for path, script in [("/", "dashboard"), ("/plays", "plays"), (f"/workflows/{wf['sid']}", "workflow"), (f"/plays/{play['sid']}", "play")]:
        response = await admin.http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert f'src="/static/{script}.js"' in response.text
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in response.headers
    css = await admin.http.get("/static/app.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    again = await admin.http.get("/static/app.css", headers={"if-none-match": css.headers["etag"]})
    assert again.status_code == 304
    for path in ("/static/../_app.py", "/static/%2e%2e/_app.py", "/static/nope.js", "/nope", "/plays/a/b"):
        assert (await admin.http.get(path)).status_code == 404, path


async def test_a_foreign_host_header_is_refused(admin: Admin) -> None:
    port = admin.host.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{int(port) + 1}", "127.0.0.1"):
        response = await admin.http.get("/", headers={"host": host})
        assert response.status_code == 403, host
        assert "not an address of this admin" in response.json()["error"]["message"]
        assert "csrf-token" not in response.text
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert (await admin.http.get("/", headers={"host": host})).status_code == 200


async def test_state_changing_requests_need_the_csrf_token_and_change_nothing_without_it(admin: Admin) -> None:
    before = await admin.service.call("workflow_list")
    create = {"method": "workflow_create", "params": {"name": "sneaky", "python_source": FLOW}}
    refused = [
        await admin.http.post("/api/rpc", json=create),  # no token
        await admin.http.post("/api/rpc", json=create, headers={"x-csrf-token": "guess"}),
        await admin.http.post("/api/rpc", json=create, headers={"x-csrf-token": admin.csrf, "origin": "http://evil.example"}),
        await admin.http.post("/api/rpc", json=create, headers={"x-csrf-token": admin.csrf, "sec-fetch-site": "cross-site"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert "X-CSRF-Token" in refused[0].json()["error"]["message"]
    form = await admin.http.post(
        "/api/rpc", content=json.dumps(create), headers={"x-csrf-token": admin.csrf, "content-type": "text/plain"}
    )
    assert form.status_code == 415
    assert await admin.service.call("workflow_list") == before
    accepted = await admin.rpc("workflow_create", name="welcome", python_source=FLOW)
    assert accepted.status_code == 200
    assert accepted.json()["result"]["name"] == "welcome"


async def test_no_cors_for_foreign_origins(admin: Admin) -> None:
    preflight = await admin.http.request(
        "OPTIONS", "/api/rpc",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "x-csrf-token, content-type"},
    )
    assert preflight.status_code == 405
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    answer = await admin.rpc("workflow_list")
    assert not [h for h in answer.headers if h.startswith("access-control-")]


async def test_the_rpc_proxy_forwards_allowed_methods_and_their_errors(admin: Admin) -> None:
    wf = await admin.service.push(FLOW)
    started = await admin.rpc("play_start", workflow_sid=wf["sid"], input_data={"n": 21})
    play_sid = started.json()["result"]
    play = await admin.service.call("play_wait", play_sid=play_sid, timeout_ms=20000)
    assert play["output_data"] == {"value": 42}
    missing = (await admin.rpc("workflow_get", sid="wf_nope")).json()
    assert missing["error"]["code"] == -32001
    bad = (await admin.rpc("play_start", workflow_sid=wf["sid"], input_data={"n": "x"})).json()
    assert bad["error"]["code"] == -32602
    for method in ("span_push", "play_wait", "play_run_async", "system.listMethods"):
        assert (await admin.rpc(method, play_sid=play_sid)).status_code == 403, method
    assert (await admin.http.get("/api/rpc")).status_code == 405
    headers = {"x-csrf-token": admin.csrf, "origin": admin.origin, "content-type": "application/json"}
    hostile = [
        b'{"method":"workflow_list","params":{"limit":NaN}}',
        b'{"method":"workflow_list","params":{"limit":1e999}}',
        b'{"method":"workflow_get","params":{"sid":"\\ud800"}}',
        b"[" * 100000 + b"]" * 100000,
        b'{"method":"workflow_get","params":{"sid":' + b"[" * 5000 + b"]" * 5000 + b"}}",
        b'{"method":"workflow_list","params":"x"}',
    ]
    for body in hostile:
        answer = await admin.http.post("/api/rpc", content=body, headers=headers)
        assert answer.status_code == 400, (body[:60], answer.status_code, answer.text[:200])


async def test_the_play_stream_is_relayed_and_checks_host_and_origin(admin: Admin) -> None:
    wf = await admin.service.push(FLOW)
    play = await admin.service.run(wf)
    host, port = admin.host.rsplit(":", 1)
    target = f"/api/plays/{play['sid']}/spans?csrf={admin.csrf}"
    cases = [
        (admin.host, "http://evil.example", 403),
        ("evil.example", None, 403),
        (admin.host, None, 101),
        (admin.host, admin.origin, 101),
        (f"localhost:{port}", f"http://localhost:{port}", 101),
        (admin.host, admin.origin.replace(port, str(int(port) + 1)), 403),
        (admin.host, admin.origin.replace("http://", "https://"), 403),  # another scheme is another origin
    ]
    for host_header, origin, expected in cases:
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            status, _ = await raw_handshake(stream, target, host=host_header, origin=origin)
        assert status == expected, (host_header, origin)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        status, body = await raw_handshake(stream, f"/api/plays/play_nope/spans?csrf={admin.csrf}", host=admin.host, origin=admin.origin)
    assert status == 404
    assert "play_nope" in json.loads(body)["error"]["message"]


async def test_the_admin_socket_relays_the_stream_to_its_end(admin: Admin) -> None:
    wf = await admin.service.push(FLOW)
    play = await admin.service.run(wf)
    sock = admin.service.config.admin_socket
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    messages = []
    async with open_stream(sock, f"/api/plays/{play['sid']}/spans?csrf={admin.csrf}") as stream:
        while (message := await stream.receive()) is not None:
            messages.append(message)
    assert [m["type"] for m in messages] == ["snapshot", "status"]
    assert messages[1]["status"] == "success"
    assert stream.close_code == 1000
    async with open_stream(sock, f"/api/plays/events?csrf={admin.csrf}") as stream:
        snapshot = await stream.receive()
    assert snapshot is not None
    assert [p["sid"] for p in snapshot["plays"]] == [play["sid"]]


async def test_over_its_unix_socket_any_host_is_accepted(admin: Admin) -> None:
    transport = httpx.AsyncHTTPTransport(uds=str(admin.service.config.admin_socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://hero_logic_admin") as http:
        assert (await http.get("/")).status_code == 200
        health = (await http.get("/api/health")).json()
    assert health["status"] == "ok"
    assert health["service"]["status"] == "ok"


async def test_admin_bind_none_serves_the_socket_only(root: Path, nursery: trio.Nursery) -> None:
    config = make_config(root, admin_bind="none")
    binds = await nursery.start(serve_admin, config)
    assert binds == [f"http://unix:{config.admin_socket}"]
    transport = httpx.AsyncHTTPTransport(uds=str(config.admin_socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as http:
        health = (await http.get("/api/health")).json()  # no service behind it yet
        assert health["status"] == "degraded"
        answer = await http.post("/api/rpc", json={"method": "workflow_list"}, headers={"x-csrf-token": csrf_of((await http.get("/")).text)})
    assert answer.status_code == 502
    assert "hero_logic is not running" in answer.json()["error"]["message"]


async def test_hero_logic_serve_runs_the_admin_beside_the_rpc_socket(root: Path, nursery: trio.Nursery) -> None:
    config = make_config(root, admin_bind="127.0.0.1:0")
    await nursery.start(lambda task_status: serve(config, admin=True, task_status=task_status))
    transport = httpx.AsyncHTTPTransport(uds=str(config.admin_socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as http:
        assert (await http.get("/api/health")).json()["service"]["status"] == "ok"


def test_admin_bind_is_checked() -> None:
    assert parse_admin_bind("127.0.0.1:9820") == "127.0.0.1:9820"
    assert parse_admin_bind("none") is None
    assert parse_admin_bind("") is None
    for bad in ("9820", "localhost", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_admin_bind(bad)



async def test_a_page_of_a_record_that_does_not_exist_is_a_404_page(admin: Admin) -> None:
    for path, text in [("/plays/play_nope", "There is no play play_nope."), ("/workflows/wf_nope", "There is no workflow wf_nope.")]:
        answer = await admin.http.get(path, headers={"accept": "text/html"})
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert text in answer.text
        assert 'href="/"' in answer.text
    answer = await admin.http.get("/workflows/wf_<img>", headers={"accept": "text/html"})
    assert answer.status_code == 404
    assert "<img>" not in answer.text  # escaped
    wf = await admin.service.push(FLOW)
    assert (await admin.http.get(f"/workflows/{wf['sid']}")).status_code == 200
