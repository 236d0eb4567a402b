// Play page: the span tree as a live graph (fed by the websocket stream), a span inspector,
// the output, cancel / retry, and a card for each open wait (a question, a sleep, an event).
import { clear, duration, explain, h, json, openStream, pauseForm, pill, rpc, shortSid, showHealth, toast, when } from "./common.js";
import { foldEvent } from "./fold.js";
import { waitCards } from "./waits.js";

const app = document.getElementById("app");
const sid = app.dataset.sid;
const TERMINAL = new Set(["success", "failed", "cancelled", "timed_out"]);
const KIND_LABEL = { flow_root: "flow", subflow: "sub-flow", rpc: "rpc", other: "other" };

const state = {
  play: null,
  spans: new Map(),
  seq: -1,
  events: 0,
  collapsed: new Set(),
  selected: null,
  pending: [],
  pendingFor: "",
  output: undefined,
  source: null,
  workflow: null,
  version: null,
  rows: new Map(),
};

const els = {
  head: h("div", { class: "page-head" }),
  resumes: h("div", { id: "resumes" }),
  graph: h("div", { class: "graph", id: "span-graph", role: "tree" }),
  graphInfo: h("span", { class: "muted small", id: "graph-info" }),
  live: h("span", { class: "live-dot", id: "live-state" }, "connecting"),
  inspector: h("div", { id: "inspector-body" }),
  output: h("div", { id: "output-body" }),
};

function layout() {
  clear(app,
    els.head,
    els.resumes,
    h("div", { class: "play-layout" },
      h("div", { class: "stack" },
        h("section", { class: "card", id: "graph-card" },
          h("div", { class: "card-head" }, h("h2", {}, "Span tree"), els.graphInfo, h("span", { class: "spacer" }), legend(), els.live),
          h("div", { class: "graph-head" }, h("div", {}, "span"), h("div", {}, "timeline")),
          els.graph),
        h("section", { class: "card", id: "output" }, h("div", { class: "card-head" }, h("h2", {}, "Output")), els.output)),
      h("aside", { class: "card inspector", id: "inspector" }, h("div", { class: "card-head" }, h("h2", {}, "Span inspector")), els.inspector)));
}

function legend() {
  const item = (color, label) => h("span", {}, h("i", { style: { background: `var(--${color})` } }), label);
  return h("div", { class: "legend", style: { marginRight: "12px" } }, item("ok", "ok"), item("running", "running"), item("replayed", "replayed"), item("failed", "failed"), item("waiting", "waiting"));
}

// -- the stream ---------------------------------------------------------------------------------

function onMessage(message) {
  if (message.type === "snapshot") {
    state.play = message.play;
    state.spans = new Map(message.spans.map((s) => [s.span_id, { ...s }]));
    state.seq = message.seq;
    afterStatus();
    loadContext();
  } else if (message.type === "status") {
    state.play = message.play;
    afterStatus();
  } else {
    if (typeof message.seq === "number") {
      if (message.seq <= state.seq) return;
      state.seq = message.seq;
    }
    state.events += 1;
    fold(message);
  }
  schedule();
}

/** Fold one wire event into the page's state (the spans with the service's rules). */
function fold(event) {
  if (event.type === "output") {
    state.output = event.output;
    return;
  }
  foldEvent(state.spans, event);
}

function afterStatus() {
  const play = state.play;
  if (play.status === "awaiting_resume") {
    const key = `${play.status}:${(play.pending_resumes || []).map((r) => r.id).join(",")}:${play.received_resumes?.length || 0}`;
    if (key !== state.pendingFor) {
      state.pendingFor = key;
      rpc("play_pending_resumes", { play_sid: sid }).then((pending) => { state.pending = pending; renderResumes(); }, () => {});
    }
  } else {
    state.pendingFor = "";
    state.pending = [];
  }
  if (TERMINAL.has(play.status)) state.output = undefined;
  renderResumes();
}

async function loadContext() {
  if (state.workflow) return;
  const play = state.play;
  try {
    [state.workflow, state.version] = await Promise.all([
      rpc("workflow_get", { sid: play.workflow_sid }).catch(() => null),
      rpc("workflow_version_fetch", { version_sid: play.workflow_version_sid }).catch(() => null),
    ]);
    state.source = state.version ? state.version.python_source.split("\n") : null;
  } finally {
    schedule();
  }
}

// -- rendering ----------------------------------------------------------------------------------

let frame = 0;
function schedule() {
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); });
}

function render() {
  if (!state.play) return;
  renderHead();
  renderGraph();
  renderInspector();
  renderOutput();
}

function renderHead() {
  const play = state.play;
  const terminal = TERMINAL.has(play.status);
  const cancel = cancelButton();
  const retry = (reuse) => async () => {
    try {
      const next = await rpc("play_retry", { play_sid: sid, reuse_steps: reuse });
      location.href = `/plays/${next}`;
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  const workflowName = state.workflow ? state.workflow.name : shortSid(play.workflow_sid);
  const versionName = state.version ? state.version.version_label || shortSid(state.version.sid) : shortSid(play.workflow_version_sid);
  clear(els.head,
    h("div", { class: "titles" },
      h("div", { class: "inline", style: { gap: "12px" } }, h("h1", {}, play.name || (state.workflow ? `${state.workflow.name} play` : "Play")), h("span", { id: "play-status" }, pill(play.status))),
      h("div", { class: "sub" },
        h("span", {}, "workflow ", h("a", { href: `/workflows/${play.workflow_sid}`, id: "workflow-link" }, workflowName), " · version ", versionName),
        h("span", {}, "started ", when(play.started_at || play.created_at)),
        h("span", {}, "duration ", h("strong", {}, play.duration_ms !== null && play.duration_ms !== undefined ? duration(play.duration_ms) : play.started_at && play.status === "running" ? duration(Date.now() - play.started_at) : "–")),
        play.total_cost_usd ? h("span", {}, `cost $${Number(play.total_cost_usd).toFixed(4)}`) : null,
        play.parent_play_sid ? h("span", {}, "child of ", h("a", { href: `/plays/${play.parent_play_sid}` }, shortSid(play.parent_play_sid))) : null,
        (play.child_play_sids || []).length ? h("span", {}, "children ", play.child_play_sids.map((c, i) => [i ? ", " : "", h("a", { href: `/plays/${c}`, class: "child-play" }, shortSid(c))])) : null,
        h("span", { class: "sid" }, play.sid))),
    h("div", { class: "actions" },
      terminal ? h("button", { class: "btn", id: "retry-play", onclick: retry(false) }, "Retry") : cancel,
      terminal && play.status !== "success" ? h("button", { class: "btn", id: "retry-from-failed", onclick: retry(true), title: "replay the steps that finished, run the rest" }, "Retry from failed step") : null));
}

let cancelEl = null;
/** One button for the play's life, so a re-render between its two clicks keeps it armed. */
function cancelButton() {
  if (cancelEl) return cancelEl;
  const cancel = h("button", { class: "btn danger", id: "cancel-play", type: "button" }, "Cancel play");
  let disarm = null;
  cancel.addEventListener("click", async () => {
    if (cancel.dataset.armed !== "yes") {
      cancel.dataset.armed = "yes";
      cancel.textContent = "Confirm cancel";
      disarm = setTimeout(() => { cancel.dataset.armed = ""; cancel.textContent = "Cancel play"; }, 4000);
      return;
    }
    clearTimeout(disarm);
    cancel.disabled = true;
    try {
      await rpc("play_cancel", { play_sid: sid });
      toast("Play cancelled.");
    } catch (error) {
      toast(explain(error), "error");
      cancel.disabled = false;
    }
  });
  cancelEl = cancel;
  return cancel;
}

function renderResumes() {
  if (!state.play || state.play.status !== "awaiting_resume" || !state.pending.length) {
    clear(els.resumes);
    return;
  }
  if (els.resumes.dataset.key === state.pendingFor && els.resumes.childElementCount) return; // keep what is being typed
  els.resumes.dataset.key = state.pendingFor;
  const done = (wait) => {
    state.pending = state.pending.filter((p) => p.id !== wait.id && !(wait.group && p.group === wait.group));
    els.resumes.dataset.key = "";
    renderResumes();
  };
  const question = (pause) => pauseForm(pause, async (payload) => {
    try {
      await rpc("play_resume", { play_sid: pause.play_sid || sid, resume_id: pause.id, payload });
      toast("Answer sent: the play continues.");
      done(pause);
    } catch (error) {
      toast(explain(error), "error");
    }
  });
  clear(els.resumes, waitCards(state.pending, sid, question, done));
}

function tree() {
  const children = new Map();
  const roots = [];
  for (const span of state.spans.values()) {
    if (span.parent_id && state.spans.has(span.parent_id)) {
      if (!children.has(span.parent_id)) children.set(span.parent_id, []);
      children.get(span.parent_id).push(span);
    } else {
      roots.push(span);
    }
  }
  return { children, roots };
}

function timeScale() {
  let start = Infinity;
  let end = 0;
  for (const span of state.spans.values()) {
    if (span.start_ms) start = Math.min(start, span.start_ms);
    end = Math.max(end, span.end_ms || (span.status === "running" ? Date.now() : span.start_ms || 0));
  }
  if (!Number.isFinite(start)) return null;
  return { start, width: Math.max(1, end - start) };
}

function renderGraph() {
  const { children, roots } = tree();
  if (!state.spans.size) {
    clear(els.graph, h("div", { class: "empty" }, state.play.status === "pending" ? "Waiting to start…" : "No spans yet."));
    els.graphInfo.textContent = "";
    return;
  }
  if (!state.selected || !state.spans.has(state.selected)) state.selected = roots[0]?.span_id || null;
  const scale = timeScale();
  const ordered = [];
  const walk = (span, depth, guides, last) => {
    ordered.push(row(span, depth, guides, last, children.get(span.span_id) || [], scale));
    if (state.collapsed.has(span.span_id)) return;
    const kids = children.get(span.span_id) || [];
    kids.forEach((kid, i) => walk(kid, depth + 1, [...guides, !last], i === kids.length - 1));
  };
  roots.forEach((root, i) => walk(root, 0, [], i === roots.length - 1));
  els.graph.replaceChildren(...ordered);
  const running = [...state.spans.values()].filter((s) => s.status === "running").length;
  els.graphInfo.textContent = `${state.spans.size} spans${running ? ` · ${running} running` : ""}`;
}

function row(span, depth, guides, last, kids, scale) {
  let el = state.rows.get(span.span_id);
  if (!el) {
    el = h("div", { class: "span-row", role: "treeitem" });
    el.addEventListener("click", () => { state.selected = span.span_id; schedule(); });
    state.rows.set(span.span_id, el);
  } else {
    el.style.animation = "none";
  }
  el.className = `span-row${state.selected === span.span_id ? " selected" : ""}`;
  Object.assign(el.dataset, { spanId: span.span_id, status: span.status, kind: span.kind, depth: String(depth) });
  const collapsed = state.collapsed.has(span.span_id);
  const toggle = h("button", { class: `toggle${kids.length ? "" : " leaf"}`, type: "button", "aria-label": collapsed ? "expand" : "collapse", "aria-expanded": kids.length ? String(!collapsed) : null },
    collapsed ? "▸" : "▾");
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    if (collapsed) state.collapsed.delete(span.span_id);
    else state.collapsed.add(span.span_id);
    schedule();
  });
  const guideEls = depth ? [...guides.slice(1).map((pipe) => h("span", { class: `guide${pipe ? "" : " none"}` })), h("span", { class: `guide ${last ? "elbow" : "tee"}` })] : [];
  const elapsed = span.end_ms ? span.end_ms - span.start_ms : span.status === "running" ? Date.now() - span.start_ms : null;
  const badges = [];
  if (KIND_LABEL[span.kind]) badges.push(h("span", { class: "badge" }, KIND_LABEL[span.kind]));
  if (span.status === "replayed") badges.push(h("span", { class: "badge replayed", title: "finished in an earlier run: its output came from the cache" }, "replayed"));
  if (span.status === "pending") badges.push(h("span", { class: "badge", style: { color: "var(--waiting)" } }, "waiting"));
  if (span.error) badges.push(h("span", { class: "badge", style: { color: "var(--failed)" } }, "error"));
  if (collapsed) badges.push(h("span", { class: "badge accent" }, `+${countBelow(span.span_id)}`));
  if (span.child_play_sid) badges.push(h("a", { class: "badge accent child-link", href: `/plays/${span.child_play_sid}`, onclick: (e) => e.stopPropagation() }, `child play ${shortSid(span.child_play_sid)} →`));
  const bar = scale && span.start_ms
    ? h("div", { class: `bar ${span.status}`, style: {
      left: `${((span.start_ms - scale.start) / scale.width) * 100}%`,
      width: `${Math.max(0.4, (((span.end_ms || (span.status === "running" ? Date.now() : span.start_ms)) - span.start_ms) / scale.width) * 100)}%`,
    } })
    : null;
  el.replaceChildren(
    h("div", { class: "span-node" }, guideEls, toggle, h("span", { class: `node-dot ${span.status}` }), h("span", { class: "span-name", title: span.name }, span.name), h("span", { class: "span-meta" }, badges), tagSummary(span), h("span", { class: "span-dur" }, elapsed === null ? "" : duration(elapsed))),
    h("div", { class: "timeline" }, bar));
  return el;
}

/** A few of a span's tags, inline, so that siblings of the same name tell apart. */
function tagSummary(span) {
  const shown = Object.entries(span.tags || {}).filter(([k]) => !["sandbox", "child_play_sid", "invoked_version_sid"].includes(k)).slice(0, 2);
  if (!shown.length) return null;
  const text = shown.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("  ");
  return h("span", { class: "span-tags", title: text }, text);
}

function countBelow(spanId) {
  let n = 0;
  for (const span of state.spans.values()) {
    let parent = span.parent_id;
    while (parent) {
      if (parent === spanId) { n++; break; }
      parent = state.spans.get(parent)?.parent_id;
    }
  }
  return n;
}

function renderInspector() {
  const span = state.spans.get(state.selected);
  if (!span) {
    clear(els.inspector, h("p", { class: "muted" }, "Select a span in the tree."));
    return;
  }
  const tags = Object.entries(span.tags || {});
  const kv = (key, value) => (value === null || value === undefined || value === "" ? null : [h("dt", {}, key), h("dd", {}, value)]);
  clear(els.inspector,
    h("h3", { id: "inspected-name", style: { fontSize: "16px" } }, span.name),
    h("dl", { class: "kv" },
      kv("status", span.status === "pending" ? h("span", { class: "pill awaiting_resume" }, "waiting for an answer") : pill(span.status)),
      kv("kind", span.kind),
      kv("duration", span.end_ms ? duration(span.end_ms - span.start_ms) : span.status === "running" ? `${duration(Date.now() - span.start_ms)} so far` : null),
      kv("started", span.start_ms ? new Date(span.start_ms).toLocaleTimeString() : null),
      kv("ended", span.end_ms ? new Date(span.end_ms).toLocaleTimeString() : null),
      kv("source", span.source_line ? h("span", { title: span.source_file }, `${(span.source_file || "flow.py").split("/").pop()}:${span.source_line}`) : null),
      kv("child play", span.child_play_sid ? h("a", { href: `/plays/${span.child_play_sid}` }, span.child_play_sid) : null),
      kv("step key", span.step_key ? h("code", { class: "small" }, span.step_key.slice(0, 16)) : null),
      kv("span id", h("code", { class: "small" }, span.span_id))),
    span.error ? h("div", { class: "section" }, h("h3", {}, "Error"), h("div", { class: "error-box" }, h("pre", { id: "span-error" }, span.error))) : null,
    h("div", { class: "section" }, h("h3", {}, `Tags (${tags.length})`),
      tags.length
        ? h("table", { class: "table", id: "span-tags" }, h("tbody", {}, tags.map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", {}, h("pre", {}, typeof v === "string" ? v : json(v)))))))
        : h("p", { class: "muted small" }, "No tags.")),
    h("div", { class: "section" }, h("h3", {}, `Logs (${span.logs?.length || 0})`),
      span.logs?.length ? h("div", { class: "logs", id: "span-logs" }, span.logs.slice(-500).map((line) => h("div", {}, line))) : h("p", { class: "muted small" }, "No logs.")),
    sourceSnippet(span));
}

function sourceSnippet(span) {
  if (!state.source || !span.source_line || span.source_line > state.source.length) return null;
  // Only the play's own flow file is at hand; a library flow run in process (its source_file
  // reads "<flow name@version>") or a module of the flow's has other lines.
  const file = span.source_file || "";
  if (file && !file.endsWith("/flow.py") && file !== "flow.py") return null;
  const at = span.source_line;
  const lines = [];
  for (let n = Math.max(1, at - 3); n <= Math.min(state.source.length, at + 3); n++) {
    lines.push(h("div", { class: n === at ? "hl" : "" }, h("span", { class: "ln" }, String(n)), state.source[n - 1]));
  }
  return h("div", { class: "section" }, h("h3", {}, "Source"), h("div", { class: "source mono" }, lines));
}

function renderOutput() {
  const play = state.play;
  if (play.status === "success") {
    clear(els.output, h("pre", { class: "output", id: "play-output" }, json(play.output_data)));
  } else if (TERMINAL.has(play.status)) {
    clear(els.output, h("div", { class: "error-box", id: "play-error" }, h("strong", {}, play.status.replace("_", " ")), play.error_message ? h("pre", { style: { marginTop: "6px" } }, play.error_message) : null));
  } else if (state.output !== undefined) {
    clear(els.output, h("p", { class: "muted small" }, "Output sent; the play is finishing…"), h("pre", { class: "output" }, json(state.output)));
  } else {
    clear(els.output, h("p", { class: "muted" }, play.status === "awaiting_resume" ? "Waiting: the card above says for what (an answer, a time, an event)." : "Not finished yet."));
  }
}

// While something runs, let the clocks and bars move.
setInterval(() => {
  if (state.play && !TERMINAL.has(state.play.status) && state.play.status !== "awaiting_resume") schedule();
}, 500);

layout();
showHealth();
const stream = openStream(`/api/plays/${sid}/spans`, {
  onMessage,
  onState(s) {
    els.live.className = `live-dot ${s === "live" ? "on" : ""}`;
    els.live.textContent = s === "live" ? "live" : s === "closed" ? "ended" : s;
  },
});
rpc("play_status", { play_sid: sid }).catch((error) => {
  stream.close();
  clear(app, h("div", { class: "error-box" }, explain(error)));
});
