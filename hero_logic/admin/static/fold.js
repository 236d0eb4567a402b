// Folding a play's wire events into its spans: the same rules as the service's fold
// (hero_logic/kernel/_spans.py, SpanFold). tests/test_admin_fold.py feeds both the same events
// and compares what they make, so the page never shows a tree the service would not.

const KINDS = new Set(["flow_root", "step", "rpc", "subflow", "other"]);
const STATUSES = new Set(["pending", "running", "ok", "failed", "timed_out", "cancelled", "replayed"]);
export const MAX_LOGS_PER_SPAN = 1000;

const text = (value) => (typeof value === "string" ? value : "");
const int = (value) => (Number.isInteger(value) ? value : 0);
const status = (value) => (typeof value === "string" && STATUSES.has(value) ? value : "failed");

/** Fold one wire event into `spans` (a Map of span id to span record). */
export function foldEvent(spans, event) {
  const id = event.span_id;
  if (typeof id !== "string") return;
  let span = spans.get(id);
  if (event.type === "span_start") {
    if (span && span.end_ms !== null && event.status === "replayed") {
      span.status = "replayed";  // a later run replayed this finished step: keep its first record
      return;
    }
    if (!span) {
      span = { span_id: id, tags: {}, logs: [], end_ms: null, error: "", input: null, output: null };
      spans.set(id, span);
    }
    const firstStart = span.start_ms || 0;  // a span a pause left open began in its first run
    const start = int(event.start_ms);
    Object.assign(span, {
      name: text(event.name) || "?",
      parent_id: text(event.parent_id),
      kind: KINDS.has(event.kind) ? event.kind : "other",
      status: status(event.status ?? "running"),
      start_ms: firstStart && (!start || firstStart < start) ? firstStart : start,
      end_ms: null,
      step_key: text(event.step_key),
      source_file: text(event.source_file),
      source_line: int(event.source_line),
      child_play_sid: text(event.child_play_sid),
    });
    if (event.tags && typeof event.tags === "object" && !Array.isArray(event.tags)) Object.assign(span.tags, event.tags);
    if ("input" in event) span.input = event.input;  // a step's arguments (cut JSON past 4 KiB)
    if ("end_ms" in event) span.end_ms = int(event.end_ms) || null;  // a replayed step: one line
  } else if (!span) {
    return;
  } else if (event.type === "span_tag") {
    if (event.tags && typeof event.tags === "object" && !Array.isArray(event.tags)) {
      Object.assign(span.tags, event.tags);
      if (typeof event.tags.child_play_sid === "string") span.child_play_sid = event.tags.child_play_sid;
    }
  } else if (event.type === "step_output") {
    span.output = "output_preview" in event ? event.output_preview : event.output ?? null;  // cut past 4 KiB
  } else if (event.type === "span_log") {
    if (span.logs.length < MAX_LOGS_PER_SPAN) span.logs.push(text(event.text));
  } else if (event.type === "span_end") {
    if (span.status === "replayed" && span.end_ms !== null) return;
    span.status = status(event.status);
    span.end_ms = int(event.end_ms) || null;
    span.error = text(event.error);
  }
}
