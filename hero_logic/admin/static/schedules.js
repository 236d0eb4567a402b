// The schedules panel of the workflow page: the workflow's schedules (next fire, last play,
// missed ticks), create one, pause / resume / run now / delete, and the plays they started.
import { clear, explain, h, has, pill, rpc, shortSid, toast, when } from "./common.js";

const OVERLAPS = ["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"];

export async function schedulesPanel(el, workflowSid) {
  if (!(await has("schedule_list"))) {
    clear(el, h("div", { class: "unavailable" }, "Schedules are not available in this service version."));
    return;
  }
  let schedules;
  try {
    schedules = await rpc("schedule_list", { workflow_sid: workflowSid });
  } catch (error) {
    clear(el, h("div", { class: "error-box" }, explain(error)));
    return;
  }
  const reload = () => schedulesPanel(el, workflowSid);
  const act = (method, params, done) => async () => {
    try {
      const result = await rpc(method, params);
      if (done) toast(done(result));
      reload();
    } catch (error) {
      toast(explain(error), "error");
    }
  };
  const recent = h("div", { id: "schedule-plays" });
  const rows = schedules.map((s) => h("tr", { class: "schedule", dataset: { sid: s.sid } },
    h("td", {}, h("strong", {}, s.name), h("div", { class: "muted small mono" }, s.cron ? `${s.cron} · ${s.timezone}` : `every ${s.every_s} s`)),
    h("td", { class: "next-fire" }, s.paused ? pill("paused") : when(s.next_fire_at)),
    h("td", {}, s.last_play_sid ? h("a", { href: `/plays/${s.last_play_sid}` }, shortSid(s.last_play_sid)) : "–"),
    h("td", { class: "num missed", title: "ticks not fired: skipped by the overlap policy or past the catch-up window" }, String(s.missed_ticks)),
    h("td", { class: "actions" },
      s.paused
        ? h("button", { class: "btn small schedule-resume", onclick: act("schedule_resume", { sid: s.sid }) }, "Resume")
        : h("button", { class: "btn small schedule-pause", onclick: act("schedule_pause", { sid: s.sid }) }, "Pause"),
      h("button", { class: "btn small", onclick: act("schedule_trigger", { sid: s.sid }, (p) => `Started ${shortSid(p)}.`) }, "Run now"),
      h("button", { class: "btn small", onclick: () => showPlays(recent, workflowSid, s) }, "Plays"),
      h("button", { class: "btn small danger", onclick: () => { if (confirm(`Delete schedule ${s.name}? Its plays are kept.`)) act("schedule_delete", { sid: s.sid })(); } }, "Delete")),
  ));
  const name = h("input", { type: "text", id: "schedule-name", placeholder: "name", style: { width: "120px" } });
  const timing = h("input", { type: "text", id: "schedule-timing", placeholder: "cron '0 9 * * 1-5' or seconds", style: { width: "200px" } });
  const zone = h("input", { type: "text", id: "schedule-timezone", value: "UTC", style: { width: "120px" } });
  const overlap = h("select", { id: "schedule-overlap", "aria-label": "Overlap" }, OVERLAPS.map((o) => h("option", { value: o }, o)));
  const create = async () => {
    const text = timing.value.trim();
    const params = { workflow_sid: workflowSid, name: name.value.trim(), timezone: zone.value.trim() || "UTC", overlap: overlap.value };
    if (/^\d+$/.test(text)) params.every_s = Number(text); else params.cron = text;
    await act("schedule_create", params, (s) => `Schedule ${s.name} created.`)();
  };
  clear(el,
    schedules.length
      ? h("table", { class: "table compact", id: "schedule-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Schedule"), h("th", {}, "Next fire"), h("th", {}, "Last play"), h("th", { class: "num" }, "Missed"), h("th", {}))),
        h("tbody", {}, rows))
      : h("p", { class: "muted small" }, "No schedules."),
    h("div", { class: "editor-bar", style: { marginTop: "10px" } }, name, timing, zone, overlap,
      h("button", { class: "btn", id: "schedule-create", onclick: create }, "Create schedule")),
    recent);
}

async function showPlays(el, workflowSid, schedule) {
  try {
    const plays = await rpc("play_list", { workflow_sid: workflowSid, name: `schedule:${schedule.name}:`, limit: 10 });
    clear(el, h("h3", { class: "small" }, `Recent plays of ${schedule.name}`), plays.length
      ? h("table", { class: "table compact" }, h("tbody", {}, plays.map((p) => h("tr", {},
        h("td", {}, pill(p.status)), h("td", {}, h("a", { href: `/plays/${p.sid}` }, p.name)), h("td", {}, when(p.created_at))))))
      : h("p", { class: "muted small" }, "No plays yet."));
  } catch (error) {
    clear(el, h("div", { class: "error-box" }, explain(error)));
  }
}
