"""The HTML shells of the admin's pages; each page's script renders it from the API.

A shell carries no data but the page's subject (a sid) and the CSRF token, and loads no
inline script (the Content-Security-Policy forbids it): ``/static/<page>.js`` does the rest.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

__all__ = ["EDITOR_BUNDLE", "STATIC_DIR", "not_found_page", "page"]

STATIC_DIR = Path(__file__).parent / "static"
EDITOR_BUNDLE = STATIC_DIR / "vendor" / "editor.js"
"""CodeMirror 6, bundled by ``make admin-assets``; without it the editor is a plain textarea."""

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>{title} · hero_logic</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
{editor}<script type="module" src="/static/{script}.js"></script>
</head>
<body>
<header class="topbar">
  <a class="brand" href="/"><span class="brand-mark" aria-hidden="true"></span>hero_logic</a>
  <nav class="topnav"><a href="/"{dashboard_current}>Dashboard</a><a href="/plays"{plays_current}>Plays</a></nav>
  <span id="service-health" class="health" aria-live="polite"></span>
</header>
<main id="app" data-page="{script}" data-sid="{sid}">
  <p class="loading">Loading…</p>
</main>
</body>
</html>
"""


def page(script: str, *, title: str, csrf: str, sid: str = "") -> bytes:
    """The shell of page ``script`` (``dashboard``, ``plays``, ``workflow`` or ``play``)."""
    editor = '<script src="/static/vendor/editor.js"></script>\n' if script == "workflow" and EDITOR_BUNDLE.is_file() else ""
    return _TEMPLATE.format(
        csrf=escape(csrf),
        title=escape(title),
        editor=editor,
        script=escape(script),
        sid=escape(sid),
        dashboard_current=' aria-current="page"' if script == "dashboard" else "",
        plays_current=' aria-current="page"' if script in ("plays", "play") else "",
    ).encode()


def not_found_page(message: str) -> bytes:
    """A plain 404 page saying what is missing, with a way back to the dashboard."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found · hero_logic</title>'
        '<link rel="stylesheet" href="/static/app.css"></head><body><main class="container">'
        f'<div class="card"><h1>Not found</h1><p id="not-found">{escape(message)}</p>'
        '<p><a href="/">← Back to the dashboard</a></p></div></main></body></html>'
    ).encode()
