// Modal dialogs (the native <dialog>): a confirmation, optionally asking to type a name first,
// and a form whose save may fail and say why without closing.
import { explain, h } from "./common.js";

function open(dialog) {
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

/**
 * Ask before doing something that cannot be undone. Resolves true (yes) or false (no, Esc).
 * With ``typed``, "yes" stays disabled until that exact text is typed.
 */
export function confirmDialog({ title, message, yes = "Delete", typed = "" }) {
  return new Promise((resolve) => {
    const yesButton = h("button", { class: "btn danger", type: "button", id: "confirm-yes", disabled: Boolean(typed) }, yes);
    const noButton = h("button", { class: "btn", type: "button", id: "confirm-no" }, "Cancel");
    const box = typed ? h("input", { type: "text", id: "confirm-typed", autocomplete: "off", "aria-label": `Type ${typed} to confirm` }) : null;
    if (box) box.addEventListener("input", () => { yesButton.disabled = box.value !== typed; });
    const dialog = h("dialog", { class: "dialog", id: "confirm-dialog", "aria-labelledby": "confirm-title" },
      h("h2", { class: "dialog-title", id: "confirm-title" }, title),
      h("p", {}, message),
      box ? h("label", { class: "field" }, h("span", { class: "label" }, ["Type ", h("code", {}, typed), " to confirm"]), box) : null,
      h("div", { class: "actions dialog-actions" }, noButton, yesButton));
    let answer = false;
    yesButton.addEventListener("click", () => { answer = true; dialog.close(); });
    noButton.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(answer));
    open(dialog);
    (box || noButton).focus();
  });
}

/**
 * A form in a dialog. ``save()`` runs on submit; if it throws, the error shows in the dialog
 * and it stays open. Resolves with save's result, or null when cancelled.
 */
export function formDialog({ id, title, fields, save, saveLabel = "Save", saveId = "" }) {
  return new Promise((resolve) => {
    const problem = h("div", { class: "error-box dialog-problem", hidden: true });
    const submit = h("button", { class: "btn primary", type: "submit", id: saveId || null }, saveLabel);
    const cancel = h("button", { class: "btn", type: "button" }, "Cancel");
    const form = h("form", { method: "dialog" }, fields, problem, h("div", { class: "actions dialog-actions" }, cancel, submit));
    const dialog = h("dialog", { class: "dialog wide", id, "aria-label": title }, h("h2", { class: "dialog-title" }, title), form);
    let result = null;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        result = await save();
        dialog.close();
      } catch (error) {
        problem.hidden = false;
        problem.textContent = error instanceof SyntaxError ? error.message : explain(error);
      } finally {
        submit.disabled = false;
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(result));
    open(dialog);
  });
}
