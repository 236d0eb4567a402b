"""The approval page: a question and a form built from its JSON schema and ui hint, and the
reading of that form back into the answer the schema asks for. Pure functions (no I/O)."""

from __future__ import annotations

import html
import json
import math
from typing import Any

from hero_logic.kernel import loads_strict

__all__ = ["approval_page", "message_page", "read_form"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.3rem} .muted{color:#616e7c;font-size:.9rem} label{display:block;margin:.6rem 0}
input[type=text],input[type=number],textarea,select{width:100%;padding:.4rem;font:inherit}
button{padding:.5rem 1.2rem;margin:.8rem .5rem 0 0;font:inherit;cursor:pointer}
.error{background:#fde8e8;border:1px solid #f8b4b4;padding:.6rem;border-radius:4px}
"""


def _page(title: str, body: str, *, status_note: str = "") -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"{status_note}{body}</body></html>"
    )


def message_page(title: str, text: str, *, error: bool = False) -> str:
    """A page saying one thing (the answer was taken, the link expired...)."""
    note = f'<p class="error">{html.escape(text)}</p>' if error else f"<p>{html.escape(text)}</p>"
    return _page(title, f"<h1>{html.escape(title)}</h1>{note}")


def _options(schema: dict[str, Any]) -> list[Any] | None:
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _field(name: str, schema: dict[str, Any], label: str) -> str:
    esc = html.escape
    kind = schema.get("type")
    options = _options(schema)
    if options is not None:
        choices = "".join(f'<option value="{esc(json.dumps(o))}">{esc(str(o))}</option>' for o in options)
        return f'<label>{esc(label)}<select name="{esc(name)}" data-json=1>{choices}</select></label>'
    if kind == "array" and isinstance(schema.get("items"), dict) and _options(schema["items"]) is not None:
        boxes = "".join(
            f'<label><input type=checkbox name="{esc(name)}" value="{esc(json.dumps(o))}"> {esc(str(o))}</label>'
            for o in _options(schema["items"]) or []
        )
        return f"<fieldset><legend>{esc(label)}</legend>{boxes}</fieldset>"
    if kind == "boolean":
        return (
            f'<input type=hidden name="{esc(name)}" value="">'
            f'<button type=submit name="{esc(name)}" value="true">Yes</button>'
            f'<button type=submit name="{esc(name)}" value="false">No</button>'
        )
    if kind in ("integer", "number"):
        step = "1" if kind == "integer" else "any"
        return f'<label>{esc(label)}<input type=number step={step} name="{esc(name)}" required></label>'
    return f'<label>{esc(label)}<textarea name="{esc(name)}" rows=3 required></textarea></label>'


def _is_plain_object(schema: Any) -> bool:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return (
        isinstance(schema, dict) and schema.get("type") == "object" and isinstance(props, dict) and bool(props)
        and all(isinstance(p, dict) and (p.get("type") in ("string", "integer", "number", "boolean") or _options(p) is not None) for p in props.values())
    )


def approval_page(*, flow_name: str, play_name: str, question: str, schema: Any, ui: Any, action: str) -> str:
    """The page that asks ``question``: a form whose fields follow ``schema`` (text, number,
    choice, multi-choice, confirm, an object of plain fields; any other schema: a JSON box)."""
    esc = html.escape
    hint = ui.get("prompt") if isinstance(ui, dict) else None
    prompt = hint if isinstance(hint, str) and hint else question
    head = (
        f"<h1>{esc(prompt)}</h1><p class=muted>Flow <b>{esc(flow_name)}</b>"
        + (f", play <b>{esc(play_name)}</b>" if play_name else "")
        + "</p>"
    )
    if isinstance(schema, dict) and _is_plain_object(schema):
        fields = "".join(_field(f"field.{k}", v, k) for k, v in schema["properties"].items())
    elif isinstance(schema, dict) and (schema.get("type") in ("string", "integer", "number", "boolean", "array") or _options(schema) is not None):
        fields = _field("value", schema, "Your answer")
    else:
        fields = '<label>Your answer (JSON)<textarea name="json" rows=6 required></textarea></label>'
    submit = "" if isinstance(schema, dict) and schema.get("type") == "boolean" else "<button type=submit>Send</button>"
    form = f'<form method=post action="{esc(action)}">{fields}<label>Your name (optional)<input type=text name="answered_by" maxlength=200></label>{submit}</form>'
    return _page(prompt, head + form)


def _typed(raw: str, schema: Any) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema, dict) and _options(schema) is not None:
        try:
            return loads_strict(raw)
        except ValueError:
            return raw
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "number":
        try:
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            return raw
        return number if math.isfinite(number) else raw  # 1e999: the schema check refuses the text
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


def read_form(fields: list[tuple[str, str]], schema: Any) -> tuple[Any, str]:
    """The answer a posted form gives for ``schema``, and the ``answered_by`` it names.

    ValueError names what is missing or malformed."""
    answered_by = next((v for k, v in fields if k == "answered_by"), "").strip()
    values = [(k, v) for k, v in fields if k != "answered_by" and v != ""]
    if any(k == "json" for k, _ in values):
        try:
            return json.loads(next(v for k, v in values if k == "json")), answered_by
        except ValueError as exc:
            msg = f"the answer is not JSON: {exc}"
            raise ValueError(msg) from None
    if isinstance(schema, dict) and _is_plain_object(schema):
        props = schema["properties"]
        out = {k[len("field."):]: _typed(v, props.get(k[len("field."):], {})) for k, v in values if k.startswith("field.")}
        return out, answered_by
    picked = [v for k, v in values if k == "value"]
    if isinstance(schema, dict) and schema.get("type") == "array":
        return [_typed(v, schema.get("items", {})) for v in picked], answered_by
    if not picked:
        msg = "the form has no answer: fill it in"
        raise ValueError(msg)
    return _typed(picked[-1], schema), answered_by
