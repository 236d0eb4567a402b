"""Starting the admin in front of a test's service, on a free loopback port."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs

from hero_logic.admin import serve_admin

if TYPE_CHECKING:
    import trio

    from .conftest import Service

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


async def start_admin(service: Service, nursery: trio.Nursery) -> str:
    """Serve the admin for ``service`` (admin.sock and 127.0.0.1:<free port>); its "host:port"."""
    config = attrs.evolve(service.config, admin_bind="127.0.0.1:0")
    binds: list[str] = await nursery.start(serve_admin, config)
    return next(b for b in binds if not b.startswith("http://unix:")).removeprefix("http://")


def csrf_of(page: str) -> str:
    """The CSRF token a page embeds."""
    match = CSRF_META.search(page)
    assert match is not None, "the page carries no CSRF token"
    return match.group(1)
