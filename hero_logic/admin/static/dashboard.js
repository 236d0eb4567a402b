// Dashboard: counts of running / waiting plays, recent plays (live), workflows with search,
// and the inbound webhooks (unsigned ones warned about).
import { ago, clear, duration, explain, h, has, openStream, pill, rpc, shortSid, showHealth, toast, when } from "./common.js";
import { webhooksCard } from "./webhooks.js";

const app = document.getElementById("app");
const state = { workflows: [], plays: new Map(), names: new Map(), query: "", ranked: null };

const TEMPLATE = (name) => `from hero_tracing import flow


@flow
def greet(who: str):
    flow.current_span.tag(who=who)
    return f"hello {who}"


@flow(name=${JSON.stringify(name)}, inputs={"who": {"type": "string", "default": "world"}})
def main(who):
    return {"greeting": greet(who=who)}
`;

const els = {
  stats: h("div", { class: "stats" }),
  plays: h("div"),
  workflows: h("div", { class: "wf-list" }),
  live: h("span", { class: "live-dot" }, "connecting"),
  webhooks: h("div"),
};

async function load() {
  clear(app,
    h("div", { class: "page-head" },
      h("div", { class: "titles" }, h("h1", {}, "Dashboard"), h("div", { class: "sub" }, "Flows, their plays, and what is running right now.")),
      h("div", { class: "actions" }, newWorkflowForm())),
    els.stats,
    h("div", { class: "grid cols-2" },
      h("section", { class: "card", id: "recent-plays" },
        h("div", { class: "card-head" }, h("h2", {}, "Recent plays"), h("span", { class: "spacer" }), els.live, h("a", { class: "btn small", href: "/plays", id: "all-plays" }, "All plays →")),
        els.plays),
      h("section", { class: "card", id: "workflows" },
        h("div", { class: "card-head" }, h("h2", {}, "Workflows"), h("span", { class: "spacer" }),
          h("div", { class: "search" }, h("input", { type: "search", id: "workflow-search", placeholder: "Search the flow library", "aria-label": "Search workflows", oninput: onSearch }))),
        els.workflows)),
    h("section", { class: "card", id: "webhooks", style: { marginTop: "16px" } },
      h("div", { class: "card-head" }, h("h2", {}, "Webhooks")),
      els.webhooks));
  try {
    state.workflows = await rpc("workflow_list", { limit: 1000 });
  } catch (error) {
    clear(els.workflows, h("div", { class: "error-box" }, explain(error)));
    return;
  }
  for (const wf of state.workflows) state.names.set(wf.sid, wf.name);
  renderWorkflows();
  refreshCounts();
  webhooksCard(els.webhooks, (sid) => state.names.get(sid) || shortSid(sid));
  openStream("/api/plays/events", {
    onMessage(message) {
      if (message.type === "snapshot") {
        state.plays = new Map(message.plays.map((p) => [p.sid, p]));
      } else if (message.type === "status") {
        state.plays.delete(message.play.sid);
        state.plays = new Map([[message.play.sid, message.play], ...state.plays]);
        scheduleCounts();
      }
      renderPlays();
    },
    onState(s) {
      els.live.className = `live-dot ${s === "live" ? "on" : ""}`;
      els.live.textContent = s === "live" ? "live" : s;
    },
  });
}

function newWorkflowForm() {
  const name = h("input", { type: "text", placeholder: "new_flow_name", "aria-label": "New workflow name", style: { width: "200px" } });
  const create = async (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (!value) { name.focus(); return; }
    try {
      const wf = await rpc("workflow_create", { name: value, description: "", python_source: TEMPLATE(value) });
      location.href = `/workflows/${wf.sid}`;
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  return h("form", { class: "inline", onsubmit: create }, name, h("button", { class: "btn primary", type: "submit" }, "New workflow"));
}

let countsTimer = null;
function scheduleCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(refreshCounts, 300);
}

async function refreshCounts() {
  const limit = 1000;
  const kinds = [["running", "Running"], ["awaiting_resume", "Awaiting answer"], ["pending", "Pending"]];
  const counts = await Promise.all(kinds.map(([status]) => rpc("play_list", { status, limit }).then((p) => p.length, () => null)));
  clear(els.stats,
    ...kinds.map(([status, label], i) => h("div", { class: `stat ${status}`, dataset: { count: status } },
      h("a", { class: "stat-link", href: `/plays?status=${status}`, title: `the ${label.toLowerCase()} plays` },
        h("div", { class: "label" }, label),
        h("div", { class: "value" }, counts[i] === null ? "–" : counts[i] >= limit ? `${limit}+` : String(counts[i]))))),
    h("div", { class: "stat" }, h("div", { class: "label" }, "Workflows"), h("div", { class: "value" }, String(state.workflows.length))));
}

function renderPlays() {
  const plays = [...state.plays.values()].slice(0, 50);
  if (!plays.length) {
    clear(els.plays, h("div", { class: "empty" }, "No plays yet. Open a workflow and run it."));
    return;
  }
  clear(els.plays, h("table", { class: "table plays" },
    h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Play"), h("th", {}, "Workflow"), h("th", {}, "Started"), h("th", { class: "num" }, "Duration"))),
    h("tbody", {}, plays.map((p) => h("tr", { class: "link", dataset: { sid: p.sid, status: p.status }, onclick: () => { location.href = `/plays/${p.sid}`; } },
      h("td", {}, pill(p.status)),
      h("td", {}, h("a", { href: `/plays/${p.sid}` }, p.name || shortSid(p.sid)), p.parent_play_sid ? h("span", { class: "badge", style: { marginLeft: "6px" } }, "child") : null),
      h("td", {}, state.names.get(p.workflow_sid) || h("span", { class: "sid" }, shortSid(p.workflow_sid))),
      h("td", {}, when(p.started_at || p.created_at)),
      h("td", { class: "num" }, p.duration_ms !== null && p.duration_ms !== undefined ? duration(p.duration_ms) : p.status === "running" && p.started_at ? duration(Date.now() - p.started_at) : "–"))))));
}

let searchTimer = null;
function onSearch(event) {
  state.query = event.target.value.trim();
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, 180);
}

async function search() {
  const query = state.query;
  state.ranked = null;
  if (query && (await has("flow_library_search"))) {
    try {
      state.ranked = await rpc("flow_library_search", { query, limit: 50 });
    } catch {
      state.ranked = null;
    }
  }
  if (query === state.query) renderWorkflows();
}

function renderWorkflows() {
  let shown = state.workflows;
  const query = state.query.toLowerCase();
  if (query && state.ranked) {
    const bySid = new Map(state.workflows.map((w) => [w.sid, w]));
    shown = state.ranked.map((sid) => bySid.get(sid)).filter(Boolean);
  } else if (query) {
    shown = shown.filter((w) => `${w.name} ${w.description} ${(w.tags || []).join(" ")}`.toLowerCase().includes(query));
  }
  if (!shown.length) {
    clear(els.workflows, h("div", { class: "empty" }, query ? `No workflow matches “${state.query}”.` : "No workflows yet: create one above, or push a file with `hero_logic flow push`."));
    return;
  }
  clear(els.workflows, shown.map((wf) => h("a", { class: "wf-item", href: `/workflows/${wf.sid}`, dataset: { sid: wf.sid, name: wf.name } },
    h("div", { class: "inline" }, h("span", { class: "name" }, wf.name), h("span", { class: "spacer", style: { flex: 1 } }), h("span", { class: "muted small" }, `updated ${ago(wf.updated_at)}`)),
    wf.description ? h("div", { class: "desc" }, wf.description) : null,
    h("div", { class: "chips" },
      (wf.inputs || []).map((f) => h("span", { class: "badge" }, `${f.name}: ${f.field_type}`)),
      (wf.tags || []).map((t) => h("span", { class: "badge accent" }, t))))));
}

showHealth();
load();
