// Play page: the span tree as a live graph (fed by the websocket stream; virtualised in
// tree.js), a span inspector, the play's input and output, its cost with its child plays',
// the decisions taken on it, cancel / retry / fork, and a card for each open wait (a question, a sleep, an event).
import { clear, duration, explain, h, json, openStream, pauseForm, pill, rpc, shortSid, showHealth, toast, when } from "./common.js";
import { answererField, decisionsTable } from "./decisions.js";
import { foldEvent } from "./fold.js";
import { costLine, inputBody, ioSections, money, restOfSpans, rolledUpCost } from "./playdata.js";
import { SpanTree } from "./tree.js";
import { waitCards } from "./waits.js";

const app = document.getElementById("app");
const sid = app.dataset.sid;
const TERMINAL = new Set(["success", "failed", "cancelled", "timed_out"]);
const FIRST_PAGE = 300; // spans drawn before a slow snapshot arrives

const state = {
  play: null,
  spans: new Map(),
  seq: -1,
  events: 0,
  selected: null,
  pending: [],
  pendingFor: "",
  output: undefined,
  source: null,
  workflow: null,
  version: null,
  snapshots: 0,
  drawnSnapshot: 0,
  spansTotal: 0,
  cost: null,
  costFor: "",
  fork: null,
  forkOpen: "",
};

const spanTree = new SpanTree({
  spans: state.spans,
  onSelect: selectSpan,
  extraBadge: (span) => {
    const cost = span.child_play_sid && state.cost?.byChild.get(span.child_play_sid);
    return cost ? money(cost) : "";
  },
});

const els = {
  head: h("div", { class: "page-head" }),
  resumes: h("div", { id: "resumes" }),
  graph: spanTree.el,
  graphEmpty: h("div", { class: "empty", hidden: true }),
  graphInfo: h("span", { class: "muted small", id: "graph-info" }),
  jump: h("button", { class: "btn small danger", id: "jump-to-error", type: "button", hidden: true, onclick: jumpToFailure }, "Jump to the failed step"),
  input: h("div", { id: "input-body" }),
  decisions: h("section", { class: "card", id: "decisions", hidden: true }),
  decisionsBody: h("div"),
  live: h("span", { class: "live-dot", id: "live-state" }, "connecting"),
  inspector: h("div", { id: "inspector-body" }),
  input: h("div", { id: "input-body" }),
  output: h("div", { id: "output-body" }),
};

function layout() {
  clear(app,
    els.head,
    els.resumes,
    h("div", { class: "play-layout" },
      h("div", { class: "stack" },
        h("section", { class: "card", id: "graph-card" },
          h("div", { class: "card-head" }, h("h2", {}, "Span tree"), h("span", { class: "spacer" }), legend(), els.live),
          h("div", { class: "graph-tools" }, els.graphInfo, els.jump, h("span", { class: "spacer" }), spanTree.followControl),
          h("div", { class: "graph-head" }, h("div", {}, "span"), h("div", {}, "timeline")),
          els.graph, els.graphEmpty),
        els.decisions,
        h("div", { class: "grid cols-io" },
          h("section", { class: "card", id: "input" }, h("div", { class: "card-head" }, h("h2", {}, "Input")), els.input),
          h("section", { class: "card", id: "output" }, h("div", { class: "card-head" }, h("h2", {}, "Output")), els.output))),
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
    state.spans = new Map(message.spans.map((s) => [s.span_id, s]));
    spanTree.reset(state.spans);
    state.seq = message.seq;
    state.snapshots += 1;
    state.spansTotal = message.spans_truncated ? message.spans_total : 0;
    if (message.spans_truncated) loadRestOfSpans(message.spans.length, message.spans_total);
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
  renderDecisions();
  loadCost();
}

/** The spans a big play's snapshot left out, a page at a time (the newest snapshot's only). */
function loadRestOfSpans(from, total) {
  const snapshot = state.snapshots;
  const spans = state.spans;
  restOfSpans(sid, from, total, (page) => {
    for (const span of page) if (!spans.has(span.span_id)) spans.set(span.span_id, { ...span });
    schedule();
  }, () => snapshot === state.snapshots).then(() => {
    if (snapshot === state.snapshots) { state.spansTotal = 0; schedule(); }
  }, (error) => toast(`Could not load all the spans: ${explain(error)}`, "error"));
}

/** The play's cost with its child plays', read again when its children or status change. */
function loadCost() {
  const play = state.play;
  const key = `${play.status}:${(play.child_play_sids || []).join(",")}:${play.total_cost_usd}`;
  if (key === state.costFor) return;
  state.costFor = key;
  if (!(play.child_play_sids || []).length) { state.cost = null; return; }
  rolledUpCost(play).then((cost) => { if (key === state.costFor) { state.cost = cost; spanTree.shape = ""; schedule(); } }, () => {});
}

function renderDecisions() {
  const play = state.play;
  const shown = (play.received_resumes || []).length || play.status === "awaiting_resume";
  els.decisions.hidden = !shown;
  if (!shown) return;
  if (!els.decisions.childElementCount) {
    els.answerAs = answererField();
    els.decisions.append(h("div", { class: "card-head" }, h("h2", {}, "Decisions"), h("span", { class: "spacer" }), els.answerAs), els.decisionsBody);
  }
  els.answerAs.hidden = play.status !== "awaiting_resume"; // the label matters while answers are asked for
  clear(els.decisionsBody, decisionsTable(play));
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
  renderInput();
  renderOutput();
}

let inputShown = null;
function renderInput() {
  if (inputShown === state.play.input_data) return;
  inputShown = state.play.input_data;
  clear(els.input, inputBody(state.play));
}

function selectSpan(id) {
  state.selected = id;
  spanTree.selected = id;
  spanTree.draw();
  renderInspector();
}

function jumpToFailure() {
  const span = spanTree.jumpToFailure();
  if (!span) return;
  state.selected = span.span_id;
  renderInspector();
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
        costLine(play, state.cost),
        play.parent_play_sid ? h("span", {}, "child of ", h("a", { href: `/plays/${play.parent_play_sid}` }, shortSid(play.parent_play_sid))) : null,
        (play.child_play_sids || []).length ? h("span", {}, "children ", play.child_play_sids.map((c, i) => [i ? ", " : "", h("a", { href: `/plays/${c}`, class: "child-play" }, shortSid(c))])) : null,
        h("span", { class: "sid" }, play.sid))),
    h("div", { class: "actions" },
      terminal ? h("button", { class: "btn", id: "retry-play", onclick: retry(false) }, "Retry") : cancel,
      terminal && play.status !== "success" ? h("button", { class: "btn", id: "retry-from-failed", onclick: retry(true), title: "replay the steps that finished, run the rest" }, "Retry from failed step") : null,
      terminal && play.status !== "success" && state.workflow?.current_version_sid
        ? h("button", { class: "btn", id: "retry-current-version", onclick: retryOnCurrentVersion, title: "fork from the failed step onto the workflow's current version: the steps that finished before it are reused" }, "Retry on the current version")
        : null));
}

/** The step that failed the play: down from the root, along the last failed span at each level. */
function failedStep() {
  let at = spanTree.firstFailure();
  while (at && !at.step_key) at = spanTree.spans.get(at.parent_id);
  return at || null;
}

async function fork(spanId, params) {
  try {
    const next = await rpc("play_fork", { play_sid: sid, from_span_id: spanId, ...params });
    location.href = `/plays/${next}`;
  } catch (error) {
    toast(explain(error), "error");
  }
}

function retryOnCurrentVersion() {
  const step = failedStep();
  if (!step) {
    toast("No failed step in this play's tree to fork from: use Fork from here on a step.", "error");
    return;
  }
  fork(step.span_id, { version_sid: state.workflow.current_version_sid });
}

/** "Fork from here": which version, which input; kept while the same span stays selected. */
function forkForm(span) {
  if (state.fork?.spanId === span.span_id) return state.fork.el;
  const versions = h("select", { id: "fork-version" }, h("option", { value: state.play.workflow_version_sid }, "this play's version"));
  rpc("workflow_version_list", { workflow_sid: state.play.workflow_sid }).then((list) => {
    for (const v of list) {
      if (v.sid === state.play.workflow_version_sid) continue;
      const current = v.sid === state.workflow?.current_version_sid ? " (current)" : "";
      versions.append(h("option", { value: v.sid }, `${v.version_label || shortSid(v.sid)}${current}`));
    }
  }, () => {});
  const input = h("textarea", { id: "fork-input", class: "mono", rows: "4", spellcheck: "false" }, json(state.play.input_data || {}));
  const submit = h("button", { class: "btn primary", id: "fork-submit", type: "button" }, "Fork");
  submit.addEventListener("click", () => {
    let inputData;
    try {
      inputData = JSON.parse(input.value);
    } catch (error) {
      toast(`The input is not JSON: ${error.message}`, "error");
      return;
    }
    fork(span.span_id, { version_sid: versions.value, input_data: inputData });
  });
  const el = h("div", { class: "section", id: "fork-form" },
    h("h3", {}, "Fork from here"),
    h("p", { class: "muted small" }, "A new play that reuses every step finished, and every answer received, before this step, and runs this step and everything after it afresh."),
    h("label", { class: "small" }, "version ", versions),
    h("label", { class: "small", style: { display: "block", marginTop: "6px" } }, "input", input),
    h("div", { style: { marginTop: "6px" } }, submit));
  state.fork = { spanId: span.span_id, el };
  return el;
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

function renderGraph() {
  const empty = !state.spans.size;
  els.graph.hidden = empty;
  els.graphEmpty.hidden = !empty;
  if (empty) {
    els.graphEmpty.textContent = state.play.status === "pending" ? "Waiting to start…" : "No spans yet.";
    els.graphInfo.textContent = "";
    els.jump.hidden = true;
    return;
  }
  spanTree.flatten();
  if (!state.selected || !state.spans.has(state.selected)) state.selected = spanTree.flat[0]?.span.span_id || null;
  spanTree.selected = state.selected;
  const running = state.play.status === "running";
  spanTree.followBox.disabled = TERMINAL.has(state.play.status);
  spanTree.draw({ live: running });
  let busy = 0;
  for (const span of state.spans.values()) if (span.status === "running") busy++;
  const loading = state.spansTotal > state.spans.size ? ` of ${state.spansTotal} (loading the rest…)` : "";
  els.graphInfo.textContent = `${state.spans.size}${loading} spans${busy ? ` · ${busy} running` : ""}`;
  // User Timing marks (the browser tests read them): a snapshot drawn, and every span drawn.
  if (state.snapshots !== state.drawnSnapshot) { state.drawnSnapshot = state.snapshots; performance.mark("hero:snapshot-drawn"); }
  if (!loading && state.snapshots && !performance.getEntriesByName("hero:tree-complete").length) performance.mark("hero:tree-complete");
  els.jump.hidden = !spanTree.firstFailure();
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
    h("h3", { id: "inspected-name", style: { fontSize: "16px" }, dataset: { spanId: span.span_id } }, span.name),
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
    span.step_key && TERMINAL.has(state.play.status)
      ? h("div", { class: "section" }, h("button", { class: "btn", id: "fork-from-here", type: "button", onclick: () => { state.forkOpen = span.span_id; schedule(); } }, "Fork from here"))
      : null,
    span.step_key && state.forkOpen === span.span_id && TERMINAL.has(state.play.status) ? forkForm(span) : null,
    span.error ? h("div", { class: "section" }, h("h3", {}, "Error"), h("div", { class: "error-box" }, h("pre", { id: "span-error" }, span.error))) : null,
    ioSections(span),
    h("div", { class: "section" }, h("h3", {}, `Tags (${tags.length})`),
      tags.length
        ? h("table", { class: "table", id: "span-tags" }, h("tbody", {}, tags.map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", {}, h("pre", {}, typeof v === "string" ? v : json(v)))))))
        : h("p", { class: "muted small" }, "No tags.")),
    h("div", { class: "section" }, h("h3", {}, `Logs (${span.logs?.length || 0})`),
      span.logs?.length ? h("div", { class: "logs", id: "span-logs" }, span.logs.slice(-500).map((line) => h("div", {}, line))) : h("p", { class: "muted small" }, "No logs.")),
    sourceSnippet(span));
}

/** A step's arguments or output (a string when the service cut it to 4 KiB). */
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
rpc("play_status", { play_sid: sid }).then((play) => {
  if (state.play) return;
  state.play = play; // the stream's snapshot (on its way) replaces it
  loadContext();
  schedule();
}, (error) => {
  stream.close();
  clear(app, h("div", { class: "error-box" }, explain(error)));
});
// A big play's snapshot takes a while to come (10,000 spans are megabytes): draw the top of
// its tree from a first page of spans meanwhile.
setTimeout(() => {
  if (state.snapshots) return;
  rpc("play_spans_page", { play_sid: sid, offset: 0, limit: FIRST_PAGE }).then((page) => {
    if (state.snapshots || !page.spans.length) return;
    for (const span of page.spans) if (!state.spans.has(span.span_id)) state.spans.set(span.span_id, { ...span });
    state.spansTotal = page.total;
    schedule();
  }, () => {});
}, 100);
