// The webhooks card of the dashboard: every inbound webhook (docs/webhooks.md) with what a
// delivery does, its signature scheme and its URL. A webhook with scheme "none" takes unsigned
// deliveries, so it carries a visible warning: anyone who knows its URL can trigger it.
import { clear, explain, h, has, rpc, when } from "./common.js";

export const UNSIGNED_WARNING = "unsigned: anyone who knows the URL can trigger it";

export async function webhooksCard(el, workflowName) {
  if (!(await has("webhook_list"))) {
    clear(el, h("div", { class: "unavailable" }, "Webhooks are not available in this service version."));
    return;
  }
  let hooks;
  try {
    hooks = await rpc("webhook_list", {});
  } catch (error) {
    clear(el, h("div", { class: "error-box" }, explain(error)));
    return;
  }
  if (!hooks.length) {
    clear(el, h("p", { class: "muted small" }, "No webhooks. Create one with `hero_logic webhooks create` or webhook_create."));
    return;
  }
  hooks.sort((a, b) => a.name.localeCompare(b.name));
  const does = (w) => w.action === "start"
    ? h("a", { href: `/workflows/${w.workflow_sid}` }, `starts ${workflowName(w.workflow_sid)}`)
    : h("span", { class: "mono" }, `sends event ${w.event_key}`);
  clear(el, h("table", { class: "table compact", id: "webhook-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Webhook"), h("th", {}, "Does"), h("th", {}, "Scheme"), h("th", {}, "URL"), h("th", {}, "Created"))),
    h("tbody", {}, hooks.map((w) => h("tr", { class: "webhook", dataset: { sid: w.sid, scheme: w.scheme } },
      h("td", {}, h("strong", {}, w.name)),
      h("td", {}, does(w)),
      h("td", {}, h("span", { class: "badge" }, w.scheme),
        w.scheme === "none" ? h("div", { class: "notice unsigned-warning", role: "note" }, `⚠ ${UNSIGNED_WARNING}`) : null),
      h("td", { class: "mono small", style: { wordBreak: "break-all" } }, w.url),
      h("td", {}, when(w.created_at)))))));
}
