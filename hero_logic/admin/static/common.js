// Shared helpers of the admin's pages: the RPC proxy, the live stream, DOM building, formatting
// and the forms generated from flow inputs and pause schemas.

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class RpcError extends Error {
  constructor(error) {
    super(error.message || "request failed");
    this.code = error.code;
    this.data = error.data;
  }
}

const ANSWERER_KEY = "hero_logic.answered_by";

/** The label this browser signs its answers with (set once by its user, kept in localStorage). */
export function answerer() {
  try {
    return localStorage.getItem(ANSWERER_KEY) || "";
  } catch {
    return "";
  }
}

export function setAnswerer(label) {
  try {
    if (label) localStorage.setItem(ANSWERER_KEY, label);
    else localStorage.removeItem(ANSWERER_KEY);
  } catch {
    // storage refused (a private window): the label lasts as long as the page
  }
}

/** Call a service method through the admin (POST /api/rpc); resolves to its result. */
export async function rpc(method, params = {}) {
  if (method === "play_resume" && !Array.isArray(params) && !("answered_by" in params)) {
    // Every answer sent from a page says who sent it (the audit trail of the play page).
    params = { ...params, answered_by: answerer() || "admin" };
  }
  const response = await fetch("/api/rpc", {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": CSRF },
    body: JSON.stringify({ method, params }),
    credentials: "same-origin",
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new RpcError({ code: response.status, message: `HTTP ${response.status} from the admin` });
  }
  if (answer.error) throw new RpcError(answer.error);
  return answer.result;
}

let methodNames = null;

/** The set of method names the service offers (from rpc.discover), fetched once. */
export async function methods() {
  if (!methodNames) {
    methodNames = rpc("rpc.discover").then(
      (doc) => new Set((doc.methods || []).map((m) => m.name)),
      () => new Set(),
    );
  }
  return methodNames;
}

export async function has(method) {
  return (await methods()).has(method);
}

/** Open a live stream websocket (with the CSRF token); reconnects (fresh snapshot) unless it closed after the end. */
export function openStream(path, { onMessage, onState }) {
  let socket = null;
  let stopped = false;
  let delay = 500;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The admin refuses a websocket without the page's CSRF token (a browser cannot set headers here).
    const token = `${path.includes("?") ? "&" : "?"}csrf=${encodeURIComponent(CSRF)}`;
    socket = new WebSocket(`${scheme}://${location.host}${path}${token}`);
    socket.onopen = () => { delay = 500; onState?.("live"); };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (stopped || event.code === 1000) { onState?.("closed"); return; }
      onState?.("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 8000);
    };
  };
  connect();
  return { close: () => { stopped = true; socket?.close(); } };
}

/** Build an element: h("div", {class: "x", onclick: fn}, child, "text", [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function pill(status) {
  const label = { awaiting_resume: "awaiting answer", timed_out: "timed out" }[status] || status;
  return h("span", { class: `pill ${status}`, dataset: { status } }, label);
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60000);
  const seconds = Math.floor((ms % 60000) / 1000);
  return `${minutes} m ${String(seconds).padStart(2, "0")} s`;
}

export function ago(ms) {
  if (!ms) return "–";
  const seconds = Math.max(0, (Date.now() - ms) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

export function when(ms) {
  return ms ? h("span", { title: new Date(ms).toLocaleString() }, ago(ms)) : "–";
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function shortSid(sid) {
  return sid ? sid.replace(/^(\w+?)_(\w{12})_(\w{6})\w*$/, "$1_…$3") : "";
}

let toastTimer = null;
export function toast(message, kind = "info") {
  document.querySelector(".toast")?.remove();
  const el = h("div", { class: `toast ${kind}`, role: "status" }, message);
  document.body.append(el);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.remove(), kind === "error" ? 8000 : 3500);
}

/** Describe an error for a person: the message, plus each bad field when the service named them. */
export function explain(error) {
  const fields = Array.isArray(error?.data) ? error.data.filter((d) => d && d.field) : [];
  const detail = fields.map((d) => `${d.field}${d.line ? ` (line ${d.line})` : ""}: ${d.error}`).join("; ");
  return detail && !String(error.message).includes(detail) ? `${error.message} — ${detail}` : String(error.message || error);
}

export function unavailable(what) {
  return h("div", { class: "unavailable" }, `${what} is not available in this service version.`);
}

let healthTimer = null;

export async function showHealth() {
  const el = document.getElementById("service-health");
  if (!el) return;
  try {
    const report = await (await fetch("/api/health", { credentials: "same-origin" })).json();
    const service = report.service || {};
    if (service.status === "ok") {
      el.className = "health ok";
      el.textContent = `service ${service.version || ""} · sandbox ${service.sandbox || "?"} · store ${service.store || "?"}`;
    } else {
      el.className = "health down";
      el.textContent = "service unavailable";
      el.title = service.error || "";
    }
  } catch {
    el.className = "health down";
    el.textContent = "admin unreachable";
  }
  if (!healthTimer) healthTimer = setInterval(showHealth, 5000);  // keep it true while the page is open
}

// -- forms generated from declared inputs and pause schemas -----------------------------------

/** Inputs for a flow's declared fields; returns {element, read(), fill(values)}. */
export function inputsForm(fields, values = {}, prefix = "input") {
  const readers = [];
  const fillers = [];
  const rows = fields.map((field) => {
    const id = `${prefix}-${field.name}`;
    const type = field.field_type;
    let control;
    let read;
    let fill;
    if (type === "boolean") {
      const box = h("input", { type: "checkbox", id, name: field.name });
      read = () => box.checked; // always sent: an unchecked box means false, not "default"
      fill = (v) => { box.checked = Boolean(v); };
      control = h("label", { class: "check" }, box, field.description || field.name);
    } else if (type === "object" || type === "array") {
      control = h("textarea", { id, name: field.name, rows: 3, placeholder: type === "array" ? "[ ]" : "{ }" });
      const box = control;
      read = () => (box.value.trim() ? JSON.parse(box.value) : undefined);
      fill = (v) => { box.value = v === undefined || v === null ? "" : json(v); };
    } else if (type === "number" || type === "integer") {
      control = h("input", { type: "number", id, name: field.name, step: type === "integer" ? "1" : "any" });
      const box = control;
      read = () => (box.value === "" ? undefined : Number(box.value));
      fill = (v) => { box.value = v === undefined || v === null ? "" : String(v); };
    } else {
      control = h("input", { type: "text", id, name: field.name, autocomplete: "off" });
      const box = control;
      read = () => {
        if (box.value !== "") return box.value;
        if (field.required && (field.default === undefined || field.default === null)) throw new Error(`${field.name}: required`);
        return undefined;
      };
      fill = (v) => { box.value = v === undefined || v === null ? "" : String(v); };
    }
    fill(field.name in values ? values[field.name] : field.default);
    readers.push([field.name, read]);
    fillers.push([field.name, fill]);
    return h("div", { class: "field" },
      type === "boolean" ? h("span", { class: "label" }, field.name) : h("label", { for: id }, field.name, field.required ? h("span", { class: "req" }, "*") : null, " ", h("span", { class: "badge" }, type)),
      control,
      field.description && type !== "boolean" ? h("span", { class: "hint" }, field.description) : null,
    );
  });
  const element = h("div", { class: "inputs-form" }, rows.length ? rows : h("p", { class: "muted small" }, "This flow takes no inputs."));
  return {
    element,
    read() {
      const out = {};
      for (const [name, read] of readers) {
        let value;
        try {
          value = read();
        } catch (error) {
          throw new Error(error instanceof SyntaxError ? `input ${name}: not valid JSON` : `input ${error.message}`);
        }
        if (value !== undefined) out[name] = value;
      }
      return out;
    },
    fill(values) {
      for (const [name, fill] of fillers) if (name in values) fill(values[name]);
    },
  };
}

function optionLabel(option) {
  return typeof option === "string" ? option : JSON.stringify(option);
}

/** The kind of form a pause asks for: its ui hint, else what its schema implies. */
export function pauseKind(pause) {
  const ui = pause.ui || {};
  const schema = pause.schema || {};
  if (["text", "number", "choice", "multi_choice", "confirm"].includes(ui.kind)) return ui.kind;
  if (schema.type === "boolean") return "confirm";
  if (Array.isArray(schema.enum)) return "choice";
  if (schema.type === "array" && Array.isArray(schema.items?.enum)) return "multi_choice";
  if (schema.type === "number" || schema.type === "integer") return "number";
  if (schema.type === "string") return "text";
  if (objectFields(schema)) return "object";
  return "json";
}

const SIMPLE_TYPES = ["string", "number", "integer", "boolean", "object", "array"];

/** An object schema's properties as run-form fields, or null when they are not all plain types. */
function objectFields(schema) {
  if (schema.type !== "object" || !schema.properties || typeof schema.properties !== "object") return null;
  const required = Array.isArray(schema.required) ? schema.required : [];
  const fields = Object.entries(schema.properties).map(([name, prop]) => ({
    name,
    field_type: prop && SIMPLE_TYPES.includes(prop.type) ? prop.type : null,
    required: required.includes(name),
    description: (prop && (prop.description || prop.title)) || "",
    default: prop ? prop.default : undefined,
  }));
  return fields.length && fields.every((f) => f.field_type) ? fields : null;
}

/** A form answering one pause; calls submit(payload) with the typed answer. */
export function pauseForm(pause, submit) {
  const ui = pause.ui || {};
  const schema = pause.schema || {};
  const kind = pauseKind(pause);
  const options = ui.options || schema.enum || schema.items?.enum || [];
  const prompt = ui.prompt || pause.name;
  const form = h("form", { class: "resume-form", dataset: { kind, resumeId: pause.id } });
  const body = [];
  let read = null;
  if (kind === "confirm") {
    const answer = (value) => (event) => { event.preventDefault(); submit(value); };
    body.push(h("div", { class: "yesno" },
      h("button", { class: "btn primary", type: "button", onclick: answer(true), dataset: { answer: "yes" } }, "Yes"),
      h("button", { class: "btn", type: "button", onclick: answer(false), dataset: { answer: "no" } }, "No")));
  } else if (kind === "choice" || kind === "multi_choice") {
    const multi = kind === "multi_choice";
    const inputs = options.map((option, index) => h("input", { type: multi ? "checkbox" : "radio", name: `pick-${pause.id}`, value: String(index) }));
    body.push(h("div", { class: "checks" }, options.map((option, index) => h("label", { class: "check" }, inputs[index], optionLabel(option)))));
    read = () => {
      const picked = inputs.filter((i) => i.checked).map((i) => options[Number(i.value)]);
      if (!multi && !picked.length) throw new Error("pick one of the options");
      return multi ? picked : picked[0];
    };
  } else if (kind === "number") {
    const integer = ui.integer || schema.type === "integer";
    const box = h("input", { type: "number", step: integer ? "1" : "any", min: ui.minimum ?? schema.minimum, max: ui.maximum ?? schema.maximum, required: true });
    body.push(box);
    read = () => {
      if (box.value === "") throw new Error("enter a number");
      return Number(box.value);
    };
  } else if (kind === "text") {
    const box = ui.multiline ? h("textarea", { rows: 4 }) : h("input", { type: "text", autocomplete: "off" });
    if (ui.default ?? schema.default) box.value = ui.default ?? schema.default;
    body.push(box);
    read = () => box.value;
  } else if (kind === "object") {
    const fields = objectFields(schema);
    const inner = inputsForm(fields, {}, `pause-${pause.id.slice(0, 12)}`);
    body.push(inner.element);
    read = () => {
      const value = inner.read();
      const missing = fields.filter((f) => f.required && !(f.name in value)).map((f) => f.name);
      if (missing.length) throw new Error(`fill in ${missing.join(", ")}`);
      return value;
    };
  } else {
    const box = h("textarea", { rows: 4, placeholder: "a JSON value" });
    body.push(box, schema && Object.keys(schema).length ? h("div", { class: "hint small muted" }, `schema: ${JSON.stringify(schema)}`) : null);
    read = () => JSON.parse(box.value);
  }
  const problem = h("div", { class: "small", style: { color: "var(--failed)", marginTop: "6px" } });
  if (read) {
    body.push(h("div", { class: "actions", style: { marginTop: "10px" } }, h("button", { class: "btn primary", type: "submit" }, "Send answer")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      let payload;
      try {
        payload = read();
      } catch (error) {
        problem.textContent = error.message;
        return;
      }
      problem.textContent = "";
      submit(payload);
    });
  }
  form.append(h("div", { class: "prompt" }, prompt), ...body, problem);
  return form;
}
