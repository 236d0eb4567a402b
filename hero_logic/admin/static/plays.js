// Plays page: every play, newest first, filtered by status (one or several), workflow, name,
// time range and a search by sid or name, with benchmark and schedule runs hidden on demand,
// a page at a time (play_list's ``before`` cursor). The filters and the page live in the
// address, so a filtered list can be linked to (the dashboard's counters do) and Back works.
import { clear, duration, explain, h, openStream, pill, rpc, shortSid, showHealth, when } from "./common.js";

const app = document.getElementById("app");
const STATUSES = [
  ["running", "running"], ["awaiting_resume", "awaiting answer"], ["pending", "pending"],
  ["success", "success"], ["failed", "failed"], ["timed_out", "timed out"], ["cancelled", "cancelled"],
];
const RANGES = [["", "any time"], ["1h", "last hour"], ["24h", "last 24 hours"], ["7d", "last 7 days"], ["custom", "between…"]];
const RANGE_MS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const PAGE_SIZES = [25, 50, 100, 200];
const DEFAULT_LIMIT = 50;

const state = { filters: null, cursors: [""], plays: [], more: false, names: new Map(), request: 0 };

/** The filters and the page, read from the address (and the history entry's cursors). */
function readAddress() {
  const q = new URLSearchParams(location.search);
  const limit = Number(q.get("limit"));
  const filters = {
    status: (q.get("status") || "").split(",").filter(Boolean),
    workflow: q.get("workflow") || "",
    name: q.get("name") || "",
    q: q.get("q") || "",
    range: q.get("range") || "",
    since: Number(q.get("since")) || 0,
    until: Number(q.get("until")) || 0,
    hide: (q.get("hide") || "").split(",").filter(Boolean),
    limit: Number.isInteger(limit) && limit > 0 && limit <= 1000 ? limit : DEFAULT_LIMIT,
  };
  if (filters.since || filters.until) filters.range = "custom";
  const before = q.get("before") || "";
  const cursors = history.state?.cursors;
  state.cursors = Array.isArray(cursors) && cursors.at(-1) === before ? cursors : before ? ["", before] : [""];
  state.filters = filters;
}

function address(filters, before) {
  const q = new URLSearchParams();
  if (filters.status.length) q.set("status", filters.status.join(","));
  if (filters.workflow) q.set("workflow", filters.workflow);
  if (filters.name) q.set("name", filters.name);
  if (filters.q) q.set("q", filters.q);
  if (filters.range && filters.range !== "custom") q.set("range", filters.range);
  if (filters.range === "custom" && filters.since) q.set("since", String(filters.since));
  if (filters.range === "custom" && filters.until) q.set("until", String(filters.until));
  if (filters.hide.length) q.set("hide", filters.hide.join(","));
  if (filters.limit !== DEFAULT_LIMIT) q.set("limit", String(filters.limit));
  if (before) q.set("before", before);
  const text = q.toString();
  return `/plays${text ? `?${text}` : ""}`;
}

/** Show another page (push: a new history entry) or new filters (replace, back to page one). */
function go({ push = false } = {}) {
  const url = address(state.filters, state.cursors.at(-1));
  const entry = { cursors: state.cursors };
  if (push) history.pushState(entry, "", url);
  else history.replaceState(entry, "", url);
  load();
}

function params() {
  const f = state.filters;
  const out = { limit: f.limit + 1 }; // one more: is there a next page?
  if (f.status.length) out.status = f.status.join(",");
  if (f.workflow) out.workflow_sid = f.workflow;
  if (f.name) out.name = f.name;
  if (f.q) out.query = f.q;
  if (RANGE_MS[f.range]) out.since_ms = Date.now() - RANGE_MS[f.range];
  if (f.range === "custom") {
    if (f.since) out.since_ms = f.since;
    if (f.until) out.until_ms = f.until;
  }
  if (f.hide.includes("benchmarks")) out.hide_benchmarks = true;
  if (f.hide.includes("schedules")) out.hide_schedules = true;
  const before = state.cursors.at(-1);
  if (before) out.before = before;
  return out;
}

async function load() {
  const request = ++state.request;
  els.table.setAttribute("aria-busy", "true");
  let plays;
  try {
    plays = await rpc("play_list", params());
  } catch (error) {
    if (request !== state.request) return;
    clear(els.table, h("div", { class: "error-box", id: "plays-error" }, explain(error)));
    els.table.removeAttribute("aria-busy");
    return;
  }
  if (request !== state.request) return; // a newer filter is on its way
  state.more = plays.length > state.filters.limit;
  state.plays = plays.slice(0, state.filters.limit);
  renderTable();
  renderPager();
  els.table.removeAttribute("aria-busy");
}

// -- the page -----------------------------------------------------------------------------------

const els = {
  filters: h("form", { id: "play-filters", class: "filters", onsubmit: (e) => e.preventDefault() }),
  table: h("div", { id: "plays-body" }),
  pager: h("div", { class: "pager", id: "plays-pager" }),
  live: h("span", { class: "live-dot" }, "connecting"),
};

function layout() {
  clear(app,
    h("div", { class: "page-head" },
      h("div", { class: "titles" }, h("h1", {}, "Plays"), h("div", { class: "sub" }, "Every play, newest first: filter, search, and page through them."))),
    h("section", { class: "card" }, els.filters),
    h("section", { class: "card", id: "plays-list" },
      h("div", { class: "card-head" }, h("h2", {}, "Plays"), h("span", { class: "spacer" }), els.live,
        h("button", { class: "btn small", type: "button", id: "plays-refresh", onclick: () => load() }, "Refresh")),
      els.table,
      els.pager));
}

let typing = null;
function onText(key) {
  return (event) => {
    clearTimeout(typing);
    const value = event.target.value.trim();
    typing = setTimeout(() => {
      if (state.filters[key] === value) return;
      state.filters[key] = value;
      state.cursors = [""];
      go();
    }, 250);
  };
}

function change(mutate) {
  mutate(state.filters);
  state.cursors = [""];
  renderFilters();
  go();
}

/** ms since the epoch → the value of a datetime-local input (local time), and back. */
function localInput(ms) {
  if (!ms) return "";
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function fromLocalInput(value) {
  const ms = value ? new Date(value).getTime() : 0;
  return Number.isFinite(ms) ? ms : 0;
}

function renderFilters() {
  const f = state.filters;
  const search = h("input", { type: "search", id: "filter-query", placeholder: "sid or name", value: f.q, "aria-label": "Search by sid or name", oninput: onText("q") });
  const name = h("input", { type: "text", id: "filter-name", placeholder: "name contains", value: f.name, "aria-label": "Name contains", oninput: onText("name") });
  const workflow = h("select", { id: "filter-workflow", "aria-label": "Workflow", onchange: (e) => change((x) => { x.workflow = e.target.value; }) },
    h("option", { value: "" }, "all workflows"),
    [...state.names].sort((a, b) => a[1].localeCompare(b[1])).map(([sid, label]) => h("option", { value: sid, selected: sid === f.workflow }, label)));
  if (f.workflow && !state.names.has(f.workflow)) workflow.append(h("option", { value: f.workflow, selected: true }, shortSid(f.workflow)));
  const range = h("select", { id: "filter-range", "aria-label": "Time range", onchange: (e) => change((x) => { x.range = e.target.value; if (x.range !== "custom") { x.since = 0; x.until = 0; } }) },
    RANGES.map(([value, label]) => h("option", { value, selected: value === f.range }, label)));
  const since = h("input", { type: "datetime-local", id: "filter-since", "aria-label": "Created from", value: localInput(f.since), onchange: (e) => change((x) => { x.since = fromLocalInput(e.target.value); }) });
  const until = h("input", { type: "datetime-local", id: "filter-until", "aria-label": "Created before", value: localInput(f.until), onchange: (e) => change((x) => { x.until = fromLocalInput(e.target.value); }) });
  const hide = (key, id, label) => h("label", { class: "inline small" },
    h("input", { type: "checkbox", id, checked: f.hide.includes(key), onchange: (e) => change((x) => { x.hide = e.target.checked ? [...new Set([...x.hide, key])] : x.hide.filter((k) => k !== key); }) }), label);
  const size = h("select", { id: "page-size", "aria-label": "Plays per page", onchange: (e) => change((x) => { x.limit = Number(e.target.value); }) },
    [...new Set([...PAGE_SIZES, f.limit])].sort((a, b) => a - b).map((n) => h("option", { value: String(n), selected: n === f.limit }, `${n} per page`)));
  const statuses = STATUSES.map(([value, label]) => h("label", { class: `chip ${value}` },
    h("input", { type: "checkbox", name: "status", value, checked: f.status.includes(value), onchange: (e) => change((x) => { x.status = e.target.checked ? [...x.status, value] : x.status.filter((s) => s !== value); }) }),
    label));
  const anything = f.status.length || f.workflow || f.name || f.q || f.range || f.hide.length;
  clear(els.filters,
    h("div", { class: "filter-row" },
      h("div", { class: "search grow" }, search),
      name, workflow, range,
      f.range === "custom" ? h("span", { class: "inline" }, since, h("span", { class: "muted small" }, "to"), until) : null),
    h("div", { class: "filter-row" },
      h("span", { class: "muted small" }, "Status"), h("div", { class: "chips" }, statuses),
      h("span", { class: "spacer" }),
      hide("benchmarks", "hide-benchmarks", "hide benchmark runs"),
      hide("schedules", "hide-schedules", "hide schedule runs"),
      size,
      anything ? h("a", { class: "btn small ghost", id: "filters-clear", href: "/plays" }, "Clear filters") : null));
}

function renderTable() {
  if (!state.plays.length) {
    const filtered = state.filters.status.length || state.filters.workflow || state.filters.name || state.filters.q || state.filters.range;
    clear(els.table, h("div", { class: "empty", id: "plays-empty" }, filtered ? "No plays match these filters." : state.cursors.length > 1 ? "No older plays." : "No plays yet."));
    return;
  }
  clear(els.table, h("table", { class: "table plays", id: "plays-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Play"), h("th", {}, "Workflow"), h("th", {}, "Created"), h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Cost"))),
    h("tbody", {}, state.plays.map((p) => h("tr", { class: "link", dataset: { sid: p.sid, status: p.status }, onclick: (event) => { if (!event.target.closest("a")) location.href = `/plays/${p.sid}`; } },
      h("td", {}, pill(p.status)),
      h("td", { class: "play-cell" },
        h("a", { href: `/plays/${p.sid}` }, p.name || shortSid(p.sid)),
        p.parent_play_sid ? h("span", { class: "badge" }, "child") : null,
        h("div", { class: "sid" }, p.sid),
        (p.pending_resumes || []).length ? h("div", { class: "small", style: { color: "var(--waiting)" } }, `asks: ${p.pending_resumes.map((r) => r.name).join(", ")}`) : null,
        p.status === "failed" && p.error_message ? h("div", { class: "small error-line", title: p.error_message }, p.error_message) : null),
      h("td", {}, h("a", { href: `/workflows/${p.workflow_sid}` }, state.names.get(p.workflow_sid) || shortSid(p.workflow_sid))),
      h("td", {}, when(p.created_at)),
      h("td", { class: "num" }, p.duration_ms !== null && p.duration_ms !== undefined ? duration(p.duration_ms) : p.status === "running" && p.started_at ? duration(Date.now() - p.started_at) : "–"),
      h("td", { class: "num" }, p.total_cost_usd ? `$${Number(p.total_cost_usd).toFixed(4)}` : "–"))))));
}

function renderPager() {
  const page = state.cursors.length;
  const first = (page - 1) * state.filters.limit + 1;
  const shown = state.plays.length;
  const older = () => {
    state.cursors = [...state.cursors, state.plays.at(-1).sid];
    go({ push: true });
    window.scrollTo(0, 0);
  };
  const newer = () => {
    state.cursors = state.cursors.slice(0, -1);
    go({ push: true });
  };
  const newest = () => {
    state.cursors = [""];
    go({ push: true });
  };
  clear(els.pager,
    h("button", { class: "btn small", type: "button", id: "page-first", disabled: page === 1, onclick: newest }, "⇤ Newest"),
    h("button", { class: "btn small", type: "button", id: "page-prev", disabled: page === 1, onclick: newer }, "← Newer"),
    h("span", { class: "muted small", id: "page-info" }, shown ? `plays ${first}–${first + shown - 1}${state.more ? "" : " (the oldest)"}` : ""),
    h("button", { class: "btn small", type: "button", id: "page-next", disabled: !state.more, onclick: older }, "Older →"));
}

// A change of any play's status refreshes the first page (the newest), at most once a second.
let refreshTimer = null;
function onEvent(message) {
  if (message.type !== "status" || state.cursors.length > 1) return;
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; load(); }, 1000);
}

async function start() {
  readAddress();
  history.replaceState({ cursors: state.cursors }, "", location.href);
  layout();
  try {
    const workflows = await rpc("workflow_list", { limit: 1000 });
    state.names = new Map(workflows.map((w) => [w.sid, w.name]));
  } catch {
    // names are a nicety: sids show instead
  }
  renderFilters();
  load();
  openStream("/api/plays/events", {
    onMessage: onEvent,
    onState(s) {
      els.live.className = `live-dot ${s === "live" ? "on" : ""}`;
      els.live.textContent = s === "live" ? "live" : s;
    },
  });
}

window.addEventListener("popstate", () => {
  readAddress();
  renderFilters();
  load();
});

showHealth();
start();
