// The human decisions of a play, as an audit trail: each answer it received (which question,
// which answer, who gave it and through which door, when it was asked and answered), and the
// label this browser signs its own answers with.
import { answerer, duration, h, setAnswerer } from "./common.js";

const MAX_LABEL = 200; // the service's bound on answered_by

function stamp(ms) {
  if (!ms) return h("span", { class: "muted" }, "–");
  const at = new Date(ms);
  return h("time", { datetime: at.toISOString(), title: at.toLocaleString() }, at.toLocaleString());
}

/** An answer as a person reads it: text as it is, anything else as JSON. */
export function answerText(payload) {
  if (typeof payload === "string") return payload;
  const text = JSON.stringify(payload);
  return text === undefined ? "null" : text;
}

/** The field holding this browser's label (``#answerer``); changes are kept at once. */
export function answererField() {
  const input = h("input", {
    type: "text", id: "answerer", placeholder: "your name or email", maxlength: String(MAX_LABEL),
    autocomplete: "email", "aria-label": "Answer as", value: answerer(),
  });
  const keep = () => {
    const label = input.value.replace(/[\u0000-\u001f\u007f]/g, " ").trim().slice(0, MAX_LABEL);
    input.value = label;
    setAnswerer(label);
  };
  input.addEventListener("change", keep);
  input.addEventListener("blur", keep);
  return h("label", { class: "inline small answer-as", title: "sent with every answer from this browser (kept in it): the audit trail shows it" },
    h("span", { class: "muted" }, "Answer as"), input);
}

/** The table of a play's received answers, oldest first. */
export function decisionsTable(play) {
  const answers = [...(play.received_resumes || [])].sort((a, b) => (a.resumed_at || 0) - (b.resumed_at || 0));
  if (!answers.length) {
    return h("p", { class: "muted small" }, play.status === "awaiting_resume" ? "No answers yet: the play waits for one above." : "No answers yet.");
  }
  return h("table", { class: "table decisions" },
    h("thead", {}, h("tr", {}, h("th", {}, "Question"), h("th", {}, "Answer"), h("th", {}, "By"), h("th", {}, "Via"), h("th", {}, "Asked"), h("th", {}, "Answered"))),
    h("tbody", {}, answers.map((r) => {
      const prompt = r.ui?.prompt || r.name || r.id;
      const waited = r.resumed_at && r.asked_at ? duration(Math.max(0, r.resumed_at - r.asked_at)) : "";
      return h("tr", { dataset: { resumeId: r.id, name: r.name || "" } },
        h("td", { class: "question" }, h("div", {}, prompt), prompt !== r.name && r.name ? h("div", { class: "muted small mono" }, r.name) : null,
          r.kind && r.kind !== "input" ? h("span", { class: "badge" }, r.kind) : null),
        h("td", {}, h("code", { class: "answer" }, answerText(r.payload))),
        h("td", { class: "who" }, r.answered_by || h("span", { class: "muted" }, "–")),
        h("td", {}, h("span", { class: "badge via" }, r.via || "–")),
        h("td", { class: "asked small" }, stamp(r.asked_at)),
        h("td", { class: "answered small" }, stamp(r.resumed_at), waited ? h("div", { class: "muted" }, `after ${waited}`) : null));
    })));
}
