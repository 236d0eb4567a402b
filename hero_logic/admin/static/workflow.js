// Workflow page: source in CodeMirror, versions (diff, make current), save as a new version,
// a run form generated from the typed inputs (fill from a preset), benchmarks, version picking.
import { clear, duration, explain, h, has, inputsForm, pill, rpc, shortSid, showHealth, toast, when } from "./common.js";
import { benchNotes, presetList, workflowActions } from "./manage.js";
import { schedulesPanel } from "./schedules.js";

const app = document.getElementById("app");
const sid = app.dataset.sid;
const Editor = window.HeroEditor || null;
const state = { wf: null, versions: [], viewing: null, editor: null, form: null, presets: [], diff: null };

const els = {
  title: h("div", { class: "titles" }),
  versionSelect: h("select", { id: "version-select", "aria-label": "Version shown", onchange: (e) => view(e.target.value) }),
  editorWrap: h("div", { class: "editor-wrap", id: "editor" }),
  saveError: h("div"),
  versions: h("div"),
  diff: h("div"),
  runForm: h("div"),
  presets: h("div"),
  presetList: h("div"),
  benchmarks: h("div"),
  picker: h("div"),
  plays: h("div"),
  schedules: h("div"),
};

async function load() {
  try {
    state.wf = await rpc("workflow_get", { sid });
    state.versions = await rpc("workflow_version_list", { workflow_sid: sid });
  } catch (error) {
    clear(app, h("div", { class: "error-box" }, explain(error)));
    return;
  }
  document.title = `${state.wf.name} · hero_logic`;
  const label = h("input", { type: "text", id: "version-label", placeholder: "label (default vN)", style: { width: "160px" } });
  const notes = h("input", { type: "text", id: "version-notes", placeholder: "what changed", style: { width: "260px" } });
  const makeCurrent = h("input", { type: "checkbox", id: "make-current", checked: true });
  const saveButton = h("button", { class: "btn primary", id: "save-version", type: "button", onclick: () => save(label, notes, makeCurrent, saveButton) }, "Save as new version");
  clear(app,
    h("div", { class: "page-head" }, els.title,
      h("div", { class: "actions" }, workflowActions(state.wf, (wf) => { state.wf = wf; document.title = `${wf.name} · hero_logic`; renderTitle(); }),
        h("a", { class: "btn", href: "/" }, "← Dashboard"), h("a", { class: "btn primary", href: "#run" }, "Run…"))),
    h("div", { class: "grid cols-2 wf-grid" },
      h("div", { class: "stack" },
        h("section", { class: "card", id: "source" },
          h("div", { class: "card-head" }, h("h2", {}, "Source"), h("span", { class: "spacer" }), h("label", { class: "muted small", for: "version-select" }, "Version"), els.versionSelect),
          els.editorWrap,
          Editor ? null : h("div", { class: "notice", style: { marginTop: "8px" } }, "The code editor is not built on this machine (run `make admin-assets`): editing in a plain text area."),
          h("div", { class: "editor-bar" },
            h("div", { class: "field" }, h("label", { for: "version-label" }, "Label"), label),
            h("div", { class: "field" }, h("label", { for: "version-notes" }, "Notes"), notes),
            h("label", { class: "inline small", style: { paddingBottom: "8px" } }, makeCurrent, "make current"),
            h("span", { style: { flex: 1 } }),
            saveButton),
          els.saveError),
        h("section", { class: "card", id: "versions" }, h("div", { class: "card-head" }, h("h2", {}, "Versions")), els.versions, els.diff),
        h("section", { class: "card", id: "workflow-plays" }, h("div", { class: "card-head" }, h("h2", {}, "Recent plays")), els.plays)),
      h("div", { class: "stack" },
        h("section", { class: "card", id: "run" }, h("div", { class: "card-head" }, h("h2", {}, "Run")), els.presets, els.runForm),
        h("section", { class: "card", id: "schedules" }, h("div", { class: "card-head" }, h("h2", {}, "Schedules")), els.schedules),
        h("section", { class: "card", id: "presets" }, h("div", { class: "card-head" }, h("h2", {}, "Presets")), els.presetList),
        h("section", { class: "card", id: "benchmarks" }, h("div", { class: "card-head" }, h("h2", {}, "Benchmarks")), els.benchmarks),
        h("section", { class: "card", id: "pick-version" }, h("div", { class: "card-head" }, h("h2", {}, "Pick a version")), els.picker))));
  renderTitle();
  await view(state.wf.current_version_sid || state.versions.at(-1)?.sid || "");
  renderVersions();
  loadPresets();
  loadBenchmarks();
  renderPicker();
  loadPlays();
  schedulesPanel(els.schedules, sid);
}

function renderTitle() {
  const wf = state.wf;
  const current = state.versions.find((v) => v.sid === wf.current_version_sid);
  clear(els.title,
    h("h1", {}, wf.name),
    h("div", { class: "sub" },
      wf.description ? h("span", {}, wf.description) : h("span", { class: "muted" }, "No description."),
      current ? h("span", { class: "badge accent", id: "current-version" }, `current: ${versionName(current)}`) : null,
      (wf.tags || []).map((t) => h("span", { class: "badge" }, t)),
      h("span", { class: "sid" }, wf.sid)));
}

function versionName(version) {
  return version.version_label || shortSid(version.sid);
}

async function view(versionSid) {
  let version = state.versions.find((v) => v.sid === versionSid) || null;
  if (version && version.python_source === undefined) version = await rpc("workflow_version_fetch", { version_sid: versionSid });
  state.viewing = version;
  clear(els.versionSelect, state.versions.slice().reverse().map((v) =>
    h("option", { value: v.sid, selected: v.sid === versionSid }, `${versionName(v)}${v.sid === state.wf.current_version_sid ? " (current)" : ""}`)));
  const source = version ? version.python_source : "";
  if (!state.editor) {
    if (Editor) {
      state.editor = Editor.editor(els.editorWrap, { doc: source });
    } else {
      const area = h("textarea", { class: "plain-editor", spellcheck: "false", "aria-label": "Flow source" });
      area.value = source;
      els.editorWrap.append(area);
      state.editor = { getValue: () => area.value, setValue: (text) => { area.value = text; } };
    }
  } else {
    state.editor.setValue(source);
  }
  renderRunForm();
}

async function save(label, notes, makeCurrent, button) {
  button.disabled = true;
  clear(els.saveError);
  try {
    const version = await rpc("workflow_create_version", {
      workflow_sid: sid,
      python_source: state.editor.getValue(),
      version_label: label.value.trim(),
      notes: notes.value.trim(),
      make_current: makeCurrent.checked,
    });
    label.value = "";
    notes.value = "";
    state.wf = await rpc("workflow_get", { sid });
    state.versions = await rpc("workflow_version_list", { workflow_sid: sid });
    renderTitle();
    renderVersions();
    await view(version.sid);
    toast(`Saved ${versionName(version)}${makeCurrent.checked ? " as the current version" : ""}.`);
  } catch (error) {
    clear(els.saveError, h("div", { class: "error-box", style: { marginTop: "10px" }, id: "save-error" }, explain(error)));
  } finally {
    button.disabled = false;
  }
}

function renderVersions() {
  const versions = state.versions.slice().reverse();
  clear(els.versions, h("table", { class: "table versions" },
    h("thead", {}, h("tr", {}, h("th", {}, "Version"), h("th", {}, "Created"), h("th", {}, "Notes"), h("th", {}, ""))),
    h("tbody", {}, versions.map((v, i) => {
      const previous = versions[i + 1];
      const isCurrent = v.sid === state.wf.current_version_sid;
      return h("tr", { class: isCurrent ? "current" : "", dataset: { sid: v.sid } },
        h("td", {}, h("strong", {}, versionName(v)), isCurrent ? h("span", { class: "badge accent", style: { marginLeft: "6px" } }, "current") : null, envBadge(v)),
        h("td", {}, when(v.created_at)),
        h("td", { class: "muted" }, v.notes || ""),
        h("td", { class: "num" }, h("div", { class: "actions", style: { justifyContent: "flex-end" } },
          h("button", { class: "btn small", onclick: () => view(v.sid) }, "View"),
          previous ? h("button", { class: "btn small", onclick: () => showDiff(previous, v) }, "Diff") : null,
          isCurrent ? null : h("button", { class: "btn small", onclick: () => makeCurrent(v) }, "Make current"))));
    }))));
}

// A version's PEP 723 dependencies and its environment (docs/real-work.md): status, and the
// dependencies or the build's error on hover.
function envBadge(version) {
  if (!version.dependencies || !version.dependencies.length) return null;
  const title = version.env_status === "failed" ? version.env_error : version.dependencies.join(", ");
  return h("span", { class: "badge", title, style: { marginLeft: "6px" } }, `packages: ${version.env_status}`);
}

async function makeCurrent(version) {
  try {
    state.wf = await rpc("workflow_set_current_version", { workflow_sid: sid, version_sid: version.sid });
    renderTitle();
    renderVersions();
    await view(state.viewing?.sid || version.sid);
    toast(`${versionName(version)} is now the current version.`);
  } catch (error) {
    toast(explain(error), "error");
  }
}

async function showDiff(before, after) {
  const [a, b] = await Promise.all([before, after].map((v) => (v.python_source !== undefined ? v : rpc("workflow_version_fetch", { version_sid: v.sid }))));
  state.diff?.destroy?.();
  const close = h("button", { class: "btn small", onclick: () => { state.diff?.destroy?.(); state.diff = null; clear(els.diff); } }, "Close diff");
  const body = h("div", { class: "diff-wrap", id: "diff" });
  clear(els.diff,
    h("div", { class: "card-head", style: { marginTop: "14px", marginBottom: "0" } }, h("h3", {}, `${versionName(a)} → ${versionName(b)}`), h("span", { class: "spacer" }), close),
    body);
  if (Editor) {
    body.append(h("div", { class: "diff-head" }, h("div", {}, versionName(a)), h("div", {}, versionName(b))));
    state.diff = Editor.diff(body, a.python_source, b.python_source);
  } else {
    body.append(plainDiff(a.python_source, b.python_source));
    state.diff = null;
  }
}

/** A unified line diff (LCS), for when the editor bundle is missing. */
function plainDiff(before, after) {
  const x = before.split("\n").slice(0, 3000);
  const y = after.split("\n").slice(0, 3000);
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { rows.push(h("div", {}, `  ${x[i]}`)); i++; j++; }
    else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) { rows.push(h("div", { class: "add" }, `+ ${y[j]}`)); j++; }
    else { rows.push(h("div", { class: "del" }, `- ${x[i]}`)); i++; }
  }
  return h("pre", { class: "plain-diff" }, rows);
}

// -- run form and presets -------------------------------------------------------------------

function renderRunForm() {
  const version = state.viewing;
  if (!version) {
    clear(els.runForm, h("div", { class: "empty" }, "No version to run yet: save one first."));
    return;
  }
  state.form = inputsForm(version.inputs || []);
  state.prefillBox = h("span", { id: "prefill-choice" });
  const problem = h("div");
  const run = h("button", { class: "btn primary", id: "run-button", type: "submit" }, `Run ${versionName(version)}`);
  const submit = async (event) => {
    event.preventDefault();
    clear(problem);
    let inputData;
    try {
      inputData = state.form.read();
    } catch (error) {
      clear(problem, h("div", { class: "error-box" }, error.message));
      return;
    }
    run.disabled = true;
    try {
      const params = { workflow_sid: sid, input_data: inputData, version_sid: version.sid };
      const usePrefills = document.getElementById("use-prefills");
      if (usePrefills?.checked && state.filledFrom) params.prefill_resumes = state.filledFrom.prefill_resumes;
      const playSid = await rpc("play_start", params);
      location.href = `/plays/${playSid}`;
    } catch (error) {
      clear(problem, h("div", { class: "error-box", id: "run-error" }, explain(error)));
      run.disabled = false;
    }
  };
  clear(els.runForm, h("form", { id: "run-form", onsubmit: submit }, state.form.element, state.prefillBox, problem,
    h("div", { class: "actions" }, run, presetSaver())));
}

function presetSaver() {
  const name = h("input", { type: "text", placeholder: "preset name", "aria-label": "Preset name", style: { width: "140px" } });
  const saveIt = async () => {
    if (!name.value.trim()) { name.focus(); return; }
    try {
      await rpc("example_upsert", { workflow_sid: sid, name: name.value.trim(), input_values: state.form.read() });
      toast(`Saved preset “${name.value.trim()}”.`);
      name.value = "";
      loadPresets();
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  const box = h("span", { class: "inline", style: { marginLeft: "auto" } }, name, h("button", { class: "btn", type: "button", onclick: saveIt }, "Save as preset"));
  has("example_upsert").then((yes) => { if (!yes) box.remove(); });
  return box;
}

async function loadPresets() {
  if (!(await has("example_list"))) {
    clear(els.presetList, h("div", { class: "unavailable" }, "Presets are not available in this service version."));
    clear(els.presets, h("div", { class: "field" }, h("span", { class: "label" }, "Preset"), h("span", { class: "muted small" }, "Presets are not available in this service version.")));
    return;
  }
  try {
    state.presets = await rpc("example_list", { workflow_sid: sid });
  } catch (error) {
    clear(els.presets, h("div", { class: "error-box" }, explain(error)));
    return;
  }
  clear(els.presetList, presetList(sid, state.presets, loadPresets));
  if (!state.presets.length) {
    clear(els.presets, h("p", { class: "muted small" }, "No presets yet: fill the form and save it as one."));
    return;
  }
  const select = h("select", { id: "preset-select", "aria-label": "Fill from a preset", onchange: (e) => fillPreset(e.target.value) },
    h("option", { value: "" }, "— fill from a preset —"),
    state.presets.map((p) => h("option", { value: p.sid }, p.name)));
  clear(els.presets, h("div", { class: "field" }, h("label", { for: "preset-select" }, "Preset"), select));
}

async function fillPreset(presetSid) {
  const preset = state.presets.find((p) => p.sid === presetSid);
  if (!preset) return;
  let values = preset.input_values;
  try {
    values = await rpc("example_to_input_data", { sid: presetSid });
  } catch {
    // older services: the preset's own values
  }
  state.form.fill(values || {});
  const prefills = preset.prefill_resumes || {};
  const count = Object.keys(prefills).length;
  state.filledFrom = count ? preset : null;
  if (state.prefillBox) {
    clear(state.prefillBox, count
      ? h("label", { class: "check" }, h("input", { type: "checkbox", id: "use-prefills", checked: true }),
        `Answer its ${count} pause${count === 1 ? "" : "s"} from the preset (the play fails at a pause it has no answer for)`)
      : null);
  }
  toast(`Filled from preset “${preset.name}”.`);
}

// -- benchmarks and version picking -----------------------------------------------------------

let benchTimer = null;
async function loadBenchmarks() {
  if (!(await has("benchmark_list_for_workflow"))) {
    clear(els.benchmarks, h("div", { class: "unavailable" }, "Benchmarks are not available in this service version."));
    return;
  }
  let rows;
  try {
    rows = await rpc("benchmark_list_for_workflow", { workflow_sid: sid });
  } catch (error) {
    clear(els.benchmarks, h("div", { class: "error-box" }, explain(error)));
    return;
  }
  const labels = new Map(state.versions.map((v) => [v.sid, versionName(v)]));
  const start = async () => {
    try {
      await rpc("benchmark_run", { version_sid: state.viewing.sid });
      toast("Benchmark started.");
      loadBenchmarks();
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  const percent = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);
  clear(els.benchmarks,
    rows.length
      ? h("table", { class: "table compact" },
        h("thead", {}, h("tr", {}, h("th", {}, "Version"), h("th", {}, "Status"), h("th", { class: "num" }, "Runs"), h("th", { class: "num" }, "Success"), h("th", { class: "num" }, "Accuracy"), h("th", { class: "num" }, "p50"), h("th", { class: "num" }, "Cost"))),
        h("tbody", {}, rows.map((b) => [h("tr", { class: "bench", dataset: { sid: b.sid } },
          h("td", {}, labels.get(b.version_sid) || shortSid(b.version_sid)),
          h("td", {}, h("span", { class: `pill ${b.status === "done" ? "success" : b.status}`, dataset: { status: b.status } }, b.status)),
          h("td", { class: "num" }, String(b.num_runs ?? "–")),
          h("td", { class: "num" }, percent(b.success_rate)),
          h("td", { class: "num" }, percent(b.accuracy)),
          h("td", { class: "num" }, duration(b.p50_duration_ms)),
          h("td", { class: "num" }, b.avg_cost_usd ? `$${Number(b.avg_cost_usd).toFixed(4)}` : "–")),
        (b.run_notes || []).length ? h("tr", { class: "bench-notes-row" }, h("td", { colspan: "7" }, benchNotes(b.run_notes))) : null])))
      : h("p", { class: "muted small" }, "No benchmarks yet."),
    h("div", { class: "actions", style: { marginTop: "10px" } }, h("button", { class: "btn", id: "benchmark-run", onclick: start }, "Benchmark the shown version")));
  clearTimeout(benchTimer);
  if (rows.some((b) => b.status === "running")) benchTimer = setTimeout(loadBenchmarks, 2000);
}

async function renderPicker() {
  if (!(await has("pick_version"))) {
    clear(els.picker, h("div", { class: "unavailable" }, "Version picking is not available in this service version."));
    return;
  }
  const weight = (id, label, value) => {
    const input = h("input", { type: "range", id, min: "0", max: "1", step: "0.05", value: String(value) });
    const shown = h("span", { class: "mono small" }, String(value));
    input.addEventListener("input", () => { shown.textContent = input.value; });
    return [input, h("div", { class: "field" }, h("label", { for: id }, label, " ", shown), input)];
  };
  const [cost, costField] = weight("w-cost", "Cost weight", 0.2);
  const [speed, speedField] = weight("w-speed", "Speed weight", 0.3);
  const [accuracy, accuracyField] = weight("w-accuracy", "Accuracy weight", 0.5);
  const minAccuracy = h("input", { type: "number", id: "min-accuracy", min: "0", max: "1", step: "0.05", value: "0" });
  const result = h("div", { class: "result-box" });
  const pick = async () => {
    try {
      const answer = await rpc("pick_version", {
        workflow_sid: sid,
        cost_weight: Number(cost.value),
        speed_weight: Number(speed.value),
        accuracy_weight: Number(accuracy.value),
        min_accuracy: Number(minAccuracy.value || 0),
      });
      const version = state.versions.find((v) => v.sid === answer.version_sid);
      clear(result,
        h("div", {}, h("strong", {}, version ? versionName(version) : shortSid(answer.version_sid)), ` · confidence ${Math.round((answer.confidence || 0) * 100)}%`),
        h("p", { class: "muted small reasoning", id: "pick-reasoning" }, answer.reasoning || ""),
        version && version.sid !== state.wf.current_version_sid ? h("button", { class: "btn small", onclick: () => makeCurrent(version) }, "Make it current") : null);
    } catch (error) {
      clear(result, h("div", { class: "error-box" }, explain(error)));
    }
  };
  clear(els.picker, costField, speedField, accuracyField,
    h("div", { class: "field" }, h("label", { for: "min-accuracy" }, "Minimum accuracy"), minAccuracy),
    h("button", { class: "btn", id: "pick-button", onclick: pick }, "Pick"), result);
}

async function loadPlays() {
  try {
    const plays = await rpc("play_list", { workflow_sid: sid, limit: 10 });
    const labels = new Map(state.versions.map((v) => [v.sid, versionName(v)]));
    clear(els.plays, plays.length
      ? h("table", { class: "table" },
        h("tbody", {}, plays.map((p) => h("tr", { class: "link", onclick: () => { location.href = `/plays/${p.sid}`; } },
          h("td", {}, pill(p.status)),
          h("td", {}, h("a", { href: `/plays/${p.sid}` }, p.name || shortSid(p.sid))),
          h("td", { class: "muted" }, labels.get(p.workflow_version_sid) || ""),
          h("td", {}, when(p.created_at)),
          h("td", { class: "num" }, duration(p.duration_ms))))))
      : h("div", { class: "empty" }, "Not run yet."));
  } catch (error) {
    clear(els.plays, h("div", { class: "error-box" }, explain(error)));
  }
}

showHealth();
load().catch((error) => toast(explain(error), "error"));
