// Managing a workflow from its page: rename it (and its description), delete it (typing its
// name to confirm), and the list of its presets, each edited in a dialog or deleted.
import { explain, h, json, rpc, toast } from "./common.js";
import { confirmDialog, formDialog } from "./dialogs.js";
import { brief } from "./tree.js";

/** The head's "Rename" and "Delete" buttons; ``renamed(workflow)`` gets the updated record. */
export function workflowActions(wf, renamed) {
  const rename = async () => {
    const name = h("input", { type: "text", id: "rename-name", value: wf.name, required: true, autocomplete: "off" });
    const description = h("textarea", { id: "rename-description", rows: 3 });
    description.value = wf.description || "";
    const updated = await formDialog({
      id: "rename-dialog",
      title: "Rename the workflow",
      saveId: "rename-save",
      fields: [
        h("div", { class: "field" }, h("label", { for: "rename-name" }, "Name"), name,
          h("span", { class: "hint" }, "Plays and presets keep pointing at it: they name it by sid.")),
        h("div", { class: "field" }, h("label", { for: "rename-description" }, "Description"), description),
      ],
      save: () => rpc("workflow_update", { sid: wf.sid, name: name.value.trim(), description: description.value.trim() }),
    });
    if (updated) {
      wf = updated;
      toast(`Renamed to “${updated.name}”.`);
      renamed(updated);
    }
  };
  const remove = async () => {
    const yes = await confirmDialog({
      title: "Delete the workflow?",
      message: [h("strong", {}, wf.name), " and all its versions and presets are deleted. A workflow with a play still pending, running or waiting cannot be: cancel those first."],
      typed: wf.name,
    });
    if (!yes) return;
    try {
      await rpc("workflow_delete", { sid: wf.sid });
      location.href = "/";
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  return [
    h("button", { class: "btn", type: "button", id: "rename-workflow", onclick: rename }, "Rename…"),
    h("button", { class: "btn danger", type: "button", id: "delete-workflow", onclick: remove }, "Delete…"),
  ];
}

function parseJson(label, text, { optional = false } = {}) {
  if (!text.trim()) {
    if (optional) return null;
    return {};
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`${label}: not valid JSON (${error.message})`);
  }
}

/** Edit a preset in a dialog; resolves true once saved. A new name saves it under that name
 * (presets are kept by workflow and name) and deletes the old one. */
async function editPreset(workflowSid, preset) {
  const area = (id, value, rows = 4) => {
    const box = h("textarea", { id, rows, spellcheck: "false" });
    box.value = value === undefined || value === null ? "" : json(value);
    return box;
  };
  const name = h("input", { type: "text", id: "preset-name", value: preset.name, required: true, autocomplete: "off" });
  const description = h("input", { type: "text", id: "preset-description", value: preset.description || "" });
  const inputs = area("preset-inputs", preset.input_values || {});
  const expected = area("preset-expected", preset.expected_output, 3);
  const prefills = area("preset-prefills", Object.keys(preset.prefill_resumes || {}).length ? preset.prefill_resumes : null, 3);
  const field = (id, label, control, hint = "") => h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("span", { class: "hint" }, hint) : null);
  const saved = await formDialog({
    id: "preset-dialog",
    title: `Edit the preset “${preset.name}”`,
    saveId: "preset-save",
    fields: [
      field("preset-name", "Name", name),
      field("preset-description", "Description", description),
      field("preset-inputs", "Input values", inputs, "a JSON object of the flow's inputs"),
      field("preset-expected", "Expected output", expected, "JSON; empty for none. Benchmarks compare the output with it, key by key"),
      field("preset-prefills", "Prefilled answers", prefills, "JSON object: pause name or resume id → answer; empty for none"),
    ],
    save: async () => {
      const params = {
        workflow_sid: workflowSid,
        name: name.value.trim(),
        description: description.value.trim(),
        input_values: parseJson("input values", inputs.value),
        expected_output: parseJson("expected output", expected.value, { optional: true }),
        prefill_resumes: parseJson("prefilled answers", prefills.value) || {},
      };
      if (preset.version_sid) params.version_sid = preset.version_sid;
      const result = await rpc("example_upsert", params);
      if (result.sid !== preset.sid) await rpc("example_delete", { sid: preset.sid });
      return result;
    },
  });
  return Boolean(saved);
}

/** The table of a workflow's presets, with Edit and Delete on each; ``reload()`` after a change. */
export function presetList(workflowSid, presets, reload) {
  if (!presets.length) return h("p", { class: "muted small", id: "presets-list" }, "No presets yet: fill the run form and save it as one.");
  const edit = (preset) => async () => {
    if (await editPreset(workflowSid, preset)) {
      toast(`Saved the preset “${preset.name}”.`);
      reload();
    }
  };
  const remove = (preset) => async () => {
    const yes = await confirmDialog({ title: "Delete the preset?", message: ["The preset ", h("strong", {}, preset.name), " is deleted. Benchmarks that ran it keep their results."] });
    if (!yes) return;
    try {
      await rpc("example_delete", { sid: preset.sid });
      toast(`Deleted the preset “${preset.name}”.`);
      reload();
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  return h("table", { class: "table presets compact", id: "presets-list" },
    h("thead", {}, h("tr", {}, h("th", {}, "Preset"), h("th", {}, "Inputs"), h("th", {}, "Expects"), h("th", {}, ""))),
    h("tbody", {}, presets.map((p) => h("tr", { dataset: { sid: p.sid, name: p.name } },
      h("td", {}, h("strong", {}, p.name), p.description ? h("div", { class: "muted small" }, p.description) : null),
      h("td", { class: "mono small", title: json(p.input_values) }, brief(p.input_values, 60)),
      h("td", { class: "mono small", title: p.expected_output === null || p.expected_output === undefined ? "" : json(p.expected_output) },
        p.expected_output === null || p.expected_output === undefined ? h("span", { class: "muted" }, "–") : brief(p.expected_output, 40)),
      h("td", { class: "num" }, h("div", { class: "actions", style: { justifyContent: "flex-end", flexWrap: "nowrap" } },
        h("button", { class: "btn small", type: "button", onclick: edit(p) }, "Edit"),
        h("button", { class: "btn small danger", type: "button", onclick: remove(p) }, "Delete")))))));
}

/** A benchmark's run notes, each play sid in them a link to the play. */
export function benchNotes(notes) {
  if (!notes || !notes.length) return null;
  return h("ul", { class: "bench-notes" }, notes.map((note) => h("li", {}, note.split(/(play_[A-Za-z0-9_]+)/).map((part, i) => (i % 2 ? h("a", { href: `/plays/${part}` }, part) : part)))));
}
