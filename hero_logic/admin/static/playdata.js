// What the play page shows beyond its live stream: the spans past the stream's snapshot (a
// snapshot carries at most 10,000), the costs of child plays rolled up into their parent, the
// play's inputs and a step's input and output in the inspector.
import { h, json, rpc } from "./common.js";

const SPAN_PAGE = 5000;
const MAX_CHILD_PLAYS = 500;

/** Fetch the spans a truncated snapshot left out (play_spans_page from ``from`` to ``total``)
 * and hand each page to ``add``; ``isCurrent()`` false stops it (a newer snapshot came). */
export async function restOfSpans(sid, from, total, add, isCurrent = () => true) {
  for (let offset = from; offset < total; offset += SPAN_PAGE) {
    const page = await rpc("play_spans_page", { play_sid: sid, offset, limit: SPAN_PAGE });
    if (!isCurrent()) return;
    add(page.spans);
    if (page.spans.length < SPAN_PAGE) return;
  }
}

/** A play's cost with its child plays': {own, children, total, byChild} where byChild maps
 * each direct child's sid to its own rolled-up total. Reads at most 500 plays. */
export async function rolledUpCost(play) {
  const seen = new Set([play.sid]);
  let budget = MAX_CHILD_PLAYS;
  const costOf = async (record) => {
    const kids = (record.child_play_sids || []).filter((c) => !seen.has(c)).slice(0, Math.max(0, budget));
    for (const kid of kids) seen.add(kid);
    budget -= kids.length;
    const children = await Promise.all(kids.map((kid) => rpc("play_status", { play_sid: kid }).then(costOf, () => ({ total: 0 }))));
    const byChild = new Map(kids.map((kid, i) => [kid, children[i].total]));
    const below = children.reduce((sum, c) => sum + c.total, 0);
    const own = Number(record.total_cost_usd || 0);
    return { own, children: below, total: own + below, byChild };
  };
  return costOf(play);
}

export function money(usd) {
  return `$${Number(usd).toFixed(usd && usd < 0.01 ? 4 : 2)}`;
}

/** The head's cost line: the total, and what the child plays added to it. */
export function costLine(play, rolled) {
  const own = Number(play.total_cost_usd || 0);
  if (!rolled || !rolled.children) return own ? h("span", { id: "play-cost" }, `cost ${money(own)}`) : null;
  return h("span", { id: "play-cost", title: `this play ${money(own)} + child plays ${money(rolled.children)}` },
    `cost ${money(rolled.total)} `, h("span", { class: "muted small" }, `(${money(own)} + ${money(rolled.children)} in child plays)`));
}

function valueBlock(id, value) {
  return h("pre", { class: "output io", id }, typeof value === "string" ? value : json(value));
}

/** The body of the play's Input card. */
export function inputBody(play) {
  const data = play.input_data;
  if (data === null || data === undefined || (typeof data === "object" && !Array.isArray(data) && !Object.keys(data).length)) {
    return h("p", { class: "muted small", id: "play-input" }, "No input.");
  }
  return valueBlock("play-input", data);
}

/** The inspector's sections for a step's input (its call's arguments) and output, when the
 * span record carries them (a string: the service cut the JSON at 4 KiB). */
export function ioSections(span) {
  const sections = [];
  if (span.input !== undefined && span.input !== null) {
    sections.push(h("div", { class: "section" }, h("h3", {}, "Input"), valueBlock("span-input", span.input)));
  }
  if (span.output !== undefined && span.output !== null) {
    sections.push(h("div", { class: "section" }, h("h3", {}, "Output"), valueBlock("span-output", span.output)));
  }
  return sections;
}
