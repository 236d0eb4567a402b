// The play page's span tree, virtualised: the tree is flattened into rows once per change of
// its shape (a span added, a branch folded), and only the rows in (and just around) the
// scrolled window are in the DOM. A play of 10,000 spans draws ~40 rows, so a click, a
// scroll or a live event costs the same as in a play of ten.
import { duration, h, shortSid } from "./common.js";

export const ROW_HEIGHT = 34; // px; .span-row in app.css has exactly this height
const OVERSCAN = 12; // rows drawn above and below the window
const KIND_LABEL = { flow_root: "flow", subflow: "sub-flow", rpc: "rpc", other: "other" };
const HIDDEN_TAGS = new Set(["sandbox", "child_play_sid", "invoked_version_sid", "resume_id"]);
const FAILED = new Set(["failed", "timed_out"]);

/** A short text of a value, for a row: strings as they are, the rest as JSON, cut. */
export function brief(value, max = 48) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** What tells a span from its siblings of the same name: its first argument ("order=A-17"),
 * else its first tag. "" when it has neither. */
export function firstArgument(span) {
  const input = span.input;
  if (input !== undefined && input !== null) {
    if (typeof input === "string") return brief(input);
    if (Array.isArray(input)) return input.length ? brief(input[0]) : "";
    if (typeof input === "object") {
      const first = Object.entries(input)[0];
      if (first) return `${first[0]}=${brief(first[1])}`;
      return "";
    }
    return brief(input);
  }
  const tag = Object.entries(span.tags || {}).find(([k]) => !HIDDEN_TAGS.has(k));
  return tag ? `${tag[0]}=${brief(tag[1])}` : "";
}

export class SpanTree {
  /**
   * @param {object} options
   * @param {Map} options.spans  span id → span record (the page's live state; read, never written)
   * @param {(id: string) => void} options.onSelect  a row was clicked
   * @param {(id: string) => string} [options.extraBadge]  text of an extra badge for a span ("" for none)
   */
  constructor({ spans, onSelect, extraBadge = () => "" }) {
    this.spans = spans;
    this.onSelect = onSelect;
    this.extraBadge = extraBadge;
    this.collapsed = new Set();
    this.selected = null;
    this.follow = true;
    this.flat = [];
    this.index = new Map(); // span id → position in this.flat
    this.below = new Map(); // span id → number of spans under it
    this.shape = ""; // what this.flat was built from
    this.children = new Map();
    this.roots = [];
    this.rowCache = new Map();
    this.el = h("div", { class: "graph virtual", id: "span-graph", role: "tree", tabindex: "0" });
    this.sizer = h("div", { class: "graph-sizer" });
    this.window = h("div", { class: "graph-window" });
    this.sizer.append(this.window);
    this.el.append(this.sizer);
    this.el.addEventListener("scroll", () => this.drawSoon());
    this.el.addEventListener("wheel", (event) => { if (event.deltaY < 0) this.setFollow(false); }, { passive: true });
    this.followBox = h("input", { type: "checkbox", id: "follow-running", checked: true });
    this.followBox.addEventListener("change", () => this.setFollow(this.followBox.checked));
    this.followControl = h("label", { class: "inline small muted follow", title: "keep the running step in view" }, this.followBox, "Follow running step");
    this.frame = 0;
  }

  /** Use a new span map (a fresh snapshot). */
  reset(spans) {
    this.spans = spans;
    this.shape = "";
  }

  setFollow(on) {
    this.follow = on;
    this.followBox.checked = on;
    if (on) this.drawSoon();
  }

  toggle(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.shape = "";
  }

  /** Rebuild the flat row list if the tree's shape changed since the last time. */
  flatten() {
    const shape = `${this.spans.size}:${this.collapsed.size}:${[...this.collapsed].join(",")}`;
    if (shape === this.shape) return;
    this.shape = shape;
    const children = new Map();
    const roots = [];
    for (const span of this.spans.values()) {
      const parent = span.parent_id;
      if (parent && parent !== span.span_id && this.spans.has(parent)) {
        let kids = children.get(parent);
        if (!kids) children.set(parent, (kids = []));
        kids.push(span);
      } else {
        roots.push(span);
      }
    }
    // Sizes of every subtree (for "+N" on folded rows), without recursion.
    const below = new Map();
    const order = [];
    const seen = new Set();
    const stack = roots.map((r) => r);
    while (stack.length) {
      const span = stack.pop();
      if (seen.has(span.span_id)) continue; // a cycle of parent links: show each span once
      seen.add(span.span_id);
      order.push(span);
      for (const kid of children.get(span.span_id) || []) stack.push(kid);
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const span = order[i];
      let n = 0;
      for (const kid of children.get(span.span_id) || []) n += 1 + (below.get(kid.span_id) || 0);
      below.set(span.span_id, n);
    }
    // The rows, depth first, skipping what is folded.
    const flat = [];
    const index = new Map();
    const visited = new Set();
    const walk = [];
    for (let i = roots.length - 1; i >= 0; i--) walk.push({ span: roots[i], depth: 0, guides: [], last: i === roots.length - 1 });
    while (walk.length) {
      const item = walk.pop();
      const id = item.span.span_id;
      if (visited.has(id)) continue;
      visited.add(id);
      const kids = children.get(id) || [];
      index.set(id, flat.length);
      flat.push({ ...item, kids: kids.length });
      if (this.collapsed.has(id) || !kids.length) continue;
      const guides = [...item.guides, !item.last];
      for (let i = kids.length - 1; i >= 0; i--) walk.push({ span: kids[i], depth: item.depth + 1, guides, last: i === kids.length - 1 });
    }
    this.flat = flat;
    this.index = index;
    this.below = below;
    this.children = children; // span id → its child spans, in start order
    this.roots = roots;
    this.sizer.style.height = `${flat.length * ROW_HEIGHT}px`; // before any scroll to a new row
  }

  /** The failed span to look at first: the first failed one (in start order) with no failed
   * span under it, i.e. where the failure began rather than every caller it went through. */
  firstFailure() {
    const failedParents = new Set();
    for (const span of this.spans.values()) if (FAILED.has(span.status) && span.parent_id) failedParents.add(span.parent_id);
    for (const span of this.spans.values()) if (FAILED.has(span.status) && !failedParents.has(span.span_id)) return span;
    return null;
  }

  /** The running span to keep in view: the one started last with nothing running under it. */
  runningLeaf() {
    const runningParents = new Set();
    let leaf = null;
    for (const span of this.spans.values()) if (span.status === "running" && span.parent_id) runningParents.add(span.parent_id);
    for (const span of this.spans.values()) {
      if (span.status === "running" && !runningParents.has(span.span_id) && (!leaf || span.start_ms >= leaf.start_ms)) leaf = span;
    }
    return leaf;
  }

  /** Unfold every branch above ``id`` (so its row exists). */
  reveal(id) {
    let parent = this.spans.get(id)?.parent_id;
    const guard = new Set();
    while (parent && this.spans.has(parent) && !guard.has(parent)) {
      guard.add(parent);
      if (this.collapsed.delete(parent)) this.shape = "";
      parent = this.spans.get(parent).parent_id;
    }
  }

  /** The row of ``id``, or of its nearest unfolded ancestor. */
  visibleIndex(id) {
    let at = id;
    const guard = new Set();
    while (at && !this.index.has(at) && !guard.has(at)) {
      guard.add(at);
      at = this.spans.get(at)?.parent_id;
    }
    return at ? this.index.get(at) : undefined;
  }

  /** Scroll so that row ``i`` is in view; ``center`` puts it mid-window. */
  scrollToRow(i, { center = false } = {}) {
    const height = this.viewHeight();
    const top = i * ROW_HEIGHT;
    const visibleTop = this.el.scrollTop;
    if (!center && top >= visibleTop && top + ROW_HEIGHT <= visibleTop + height) return;
    this.el.scrollTop = center ? Math.max(0, top - height / 2 + ROW_HEIGHT / 2) : Math.max(0, top - height + 3 * ROW_HEIGHT);
  }

  viewHeight() {
    return this.el.clientHeight || Math.min(this.flat.length * ROW_HEIGHT, window.innerHeight * 0.7);
  }

  /** Select the span where the play failed, unfolding its branch and scrolling to it. */
  jumpToFailure() {
    const span = this.firstFailure();
    if (!span) return null;
    this.setFollow(false);
    this.reveal(span.span_id);
    this.selected = span.span_id;
    this.flatten();
    const i = this.index.get(span.span_id);
    if (i !== undefined) this.scrollToRow(i, { center: true });
    this.draw();
    return span;
  }

  drawSoon() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  /** Draw the rows in the window (after following the running step when asked to). */
  draw({ live = false } = {}) {
    this.flatten();
    this.el.classList.toggle("empty-tree", !this.flat.length);
    if (this.follow && live) {
      const leaf = this.runningLeaf();
      const i = leaf ? this.visibleIndex(leaf.span_id) : undefined;
      if (i !== undefined) this.scrollToRow(i);
    }
    const total = this.flat.length;
    const height = this.viewHeight();
    const first = Math.max(0, Math.floor(this.el.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total, Math.ceil((this.el.scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
    const scale = this.timeScale();
    const rows = [];
    for (let i = first; i < last; i++) rows.push(this.row(this.flat[i], scale));
    this.window.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    this.window.replaceChildren(...rows);
    if (this.rowCache.size > 4000) this.rowCache = new Map(rows.map((r) => [r.dataset.spanId, r]));
  }

  timeScale() {
    let start = Infinity;
    let end = 0;
    const now = Date.now();
    for (const span of this.spans.values()) {
      if (span.start_ms && span.start_ms < start) start = span.start_ms;
      const stop = span.end_ms || (span.status === "running" ? now : span.start_ms || 0);
      if (stop > end) end = stop;
    }
    if (!Number.isFinite(start)) return null;
    return { start, width: Math.max(1, end - start), now };
  }

  row(item, scale) {
    const { span, depth, guides, last, kids } = item;
    const id = span.span_id;
    let el = this.rowCache.get(id);
    if (!el) {
      el = h("div", { class: "span-row", role: "treeitem" });
      el.addEventListener("click", () => this.onSelect(id));
      this.rowCache.set(id, el);
    }
    const selected = this.selected === id;
    el.className = `span-row${selected ? " selected" : ""}`;
    el.setAttribute("aria-selected", String(selected));
    Object.assign(el.dataset, { spanId: id, status: span.status, kind: span.kind, depth: String(depth), name: span.name });
    const collapsed = this.collapsed.has(id);
    const toggle = h("button", { class: `toggle${kids ? "" : " leaf"}`, type: "button", "aria-label": collapsed ? "expand" : "collapse", "aria-expanded": kids ? String(!collapsed) : null },
      collapsed ? "▸" : "▾");
    toggle.addEventListener("click", (event) => {
      event.stopPropagation();
      this.toggle(id);
      this.draw();
    });
    const guideEls = depth ? [...guides.slice(1).map((pipe) => h("span", { class: `guide${pipe ? "" : " none"}` })), h("span", { class: `guide ${last ? "elbow" : "tee"}` })] : [];
    const now = scale ? scale.now : Date.now();
    const elapsed = span.end_ms ? span.end_ms - span.start_ms : span.status === "running" && span.start_ms ? now - span.start_ms : null;
    const badges = [];
    if (KIND_LABEL[span.kind]) badges.push(h("span", { class: "badge" }, KIND_LABEL[span.kind]));
    if (span.status === "replayed") badges.push(h("span", { class: "badge replayed", title: "finished in an earlier run: its output came from the cache" }, "replayed"));
    if (span.status === "pending") badges.push(h("span", { class: "badge", style: { color: "var(--waiting)" } }, "waiting"));
    if (span.error) badges.push(h("span", { class: "badge", style: { color: "var(--failed)" } }, "error"));
    if (collapsed) badges.push(h("span", { class: "badge accent" }, `+${this.below.get(id) || 0}`));
    const extra = this.extraBadge(span);
    if (extra) badges.push(h("span", { class: "badge cost" }, extra));
    if (span.child_play_sid) badges.push(h("a", { class: "badge accent child-link", href: `/plays/${span.child_play_sid}`, onclick: (e) => e.stopPropagation() }, `child play ${shortSid(span.child_play_sid)} →`));
    const argument = firstArgument(span);
    const bar = scale && span.start_ms
      ? h("div", { class: `bar ${span.status}`, style: {
        left: `${((span.start_ms - scale.start) / scale.width) * 100}%`,
        width: `${Math.max(0.4, (((span.end_ms || (span.status === "running" ? now : span.start_ms)) - span.start_ms) / scale.width) * 100)}%`,
      } })
      : null;
    el.replaceChildren(
      h("div", { class: "span-node" }, guideEls, toggle, h("span", { class: `node-dot ${span.status}` }),
        h("span", { class: "span-name", title: span.name }, span.name),
        argument ? h("span", { class: "span-arg", title: argument }, argument) : null,
        h("span", { class: "span-meta" }, badges),
        tagSummary(span, argument),
        h("span", { class: "span-dur" }, elapsed === null ? "" : duration(elapsed))),
      h("div", { class: "timeline" }, bar));
    return el;
  }
}

/** A few more of a span's tags, inline, after what the row already says. */
function tagSummary(span, argument) {
  const shown = Object.entries(span.tags || {})
    .filter(([k, v]) => !HIDDEN_TAGS.has(k) && `${k}=${brief(v)}` !== argument)
    .slice(0, 2);
  if (!shown.length) return null;
  const text = shown.map(([k, v]) => `${k}=${brief(v, 40)}`).join("  ");
  return h("span", { class: "span-tags", title: text }, text);
}
