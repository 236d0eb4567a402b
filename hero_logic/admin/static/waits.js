// The cards of a play's open waits: a question (the play page's own form), a sleep (its wake
// time, a countdown and "Wake now"), an event wait (its key and a form that sends that event),
// and a flow.wait_any group (each branch, and the deadline when it has one).
import { explain, h, rpc, shortSid, toast } from "./common.js";

/** "in 1 m 05 s", "in 42 s", "due now". */
export function countdown(at) {
  const left = Math.max(0, Math.round((at - Date.now()) / 1000));
  if (!left) return "due now";
  const hours = Math.floor(left / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  if (hours) return `in ${hours} h ${String(minutes).padStart(2, "0")} m`;
  if (minutes) return `in ${minutes} m ${String(seconds).padStart(2, "0")} s`;
  return `in ${seconds} s`;
}

function timeOf(at) {
  return new Date(at).toLocaleTimeString();
}

function ticking(at) {
  return h("span", { class: "countdown", dataset: { at: String(at) } }, countdown(at));
}

setInterval(() => {
  for (const el of document.querySelectorAll(".countdown[data-at]")) el.textContent = countdown(Number(el.dataset.at));
}, 1000);

function wakeButton(wait, sid, label, done) {
  return h("button", {
    class: "btn primary", type: "button", dataset: { action: "wake" },
    onclick: async () => {
      try {
        await rpc("play_resume", { play_sid: wait.play_sid || sid, resume_id: wait.id, payload: null });
        toast("Woken: the play continues.");
        done(wait);
      } catch (error) {
        toast(explain(error), "error");
      }
    },
  }, label);
}

function eventForm(wait, done) {
  const box = h("textarea", { rows: 3, placeholder: "null", "aria-label": `payload of ${wait.event_key}` });
  const send = async (event) => {
    event.preventDefault();
    let payload = null;
    try {
      payload = box.value.trim() ? JSON.parse(box.value) : null;
    } catch (error) {
      toast(`the payload is not JSON (${error.message}): quote text, e.g. "yes"`, "error");
      return;
    }
    try {
      const sent = await rpc("event_send", { key: wait.event_key, payload });
      toast(`Event sent: delivered to ${sent.delivered_to.length} play(s).`);
      done(wait);
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  return h("form", { class: "resume-form event-form", dataset: { eventKey: wait.event_key }, onsubmit: send },
    h("div", { class: "prompt" }, "Send the event ", h("code", {}, wait.event_key), " with a JSON payload:"),
    box,
    h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "submit" }, "Send event")));
}

function deadline(wait, sid, verb, done) {
  return h("div", { class: "wait-deadline" },
    `${verb} at ${timeOf(wait.wake_at)} · `, ticking(wait.wake_at), " ",
    wakeButton(wait, sid, verb === "wakes" ? "Wake now" : "Time out now", done));
}

function branch(wait, sid, question, done) {
  if (wait.kind === "timer") return deadline(wait, sid, "times out", done);
  if (wait.kind === "event") return h("div", { class: "wait-branch" }, h("h3", {}, `${wait.branch}: event `, h("code", {}, wait.event_key)), eventForm(wait, done));
  return h("div", { class: "wait-branch" }, h("h3", {}, `${wait.branch}: an answer`), question(wait));
}

function where(wait, sid) {
  return wait.play_sid && wait.play_sid !== sid ? [" in child play ", h("a", { href: `/plays/${wait.play_sid}` }, shortSid(wait.play_sid))] : [];
}

/**
 * The cards of ``pending`` (play_pending_resumes) of play ``sid``. ``question(wait)`` builds the
 * form of a question; ``done(wait)`` is called once a wait was resolved from here.
 */
export function waitCards(pending, sid, question, done) {
  const groups = new Map();
  const cards = [];
  for (const wait of pending) {
    if (wait.group) {
      if (!groups.has(wait.group)) {
        groups.set(wait.group, []);
        cards.push({ group: wait.group });
      }
      groups.get(wait.group).push(wait);
    } else {
      cards.push({ wait });
    }
  }
  return cards.map(({ wait, group }) => {
    if (group) {
      const branches = groups.get(group);
      const named = branches.filter((b) => b.kind !== "timer").map((b) => b.branch);
      return h("section", { class: "resume-card wait-card", dataset: { kind: "group", group } },
        h("h2", {}, `Waiting for the first of: ${named.join(", ")}`, ...where(branches[0], sid)),
        h("p", { class: "muted small" }, "The first branch to resolve wins; the others are withdrawn."),
        branches.map((b) => branch(b, sid, question, done)));
    }
    if (wait.kind === "timer") {
      return h("section", { class: "resume-card wait-card", dataset: { kind: "timer", resumeId: wait.id } },
        h("h2", {}, `Sleeping (${wait.name})`, ...where(wait, sid)),
        deadline(wait, sid, "wakes", done));
    }
    if (wait.kind === "event") {
      return h("section", { class: "resume-card wait-card", dataset: { kind: "event", resumeId: wait.id } },
        h("h2", {}, "Waiting for the event ", h("code", {}, wait.event_key), ...where(wait, sid)),
        wait.wake_at ? h("div", { class: "wait-deadline" }, `times out at ${timeOf(wait.wake_at)} · `, ticking(wait.wake_at)) : null,
        eventForm(wait, done));
    }
    return h("section", { class: "resume-card", dataset: { resumeId: wait.id } },
      h("h2", {}, "Waiting for an answer", ...where(wait, sid)),
      question(wait),
      h("div", { class: "muted small", style: { marginTop: "8px" } }, `asked ${timeOf(wait.asked_at)} · resume id `, h("code", {}, wait.id)));
  });
}
