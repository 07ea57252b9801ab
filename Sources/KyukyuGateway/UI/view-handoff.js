// The pre-arrival document's progress, on every view of the incident screen once it was sent (the incident view's
// `handoff`, which follows on the event stream, so nothing needs a tap): queued (the delivery problem in words and
// "retrying", counting the seconds since it was queued, never a spinner), sent, received, acknowledged (green),
// diverted (red: the hospital's reason and note, and "pick another hospital", the hospitals that diverted marked),
// with the version's progress ("update v3 sent"). The send itself (POST …/handoff) is `actions.sendHandoff`.

import { h, icon, keyed, liveSeconds } from "./dom.js";
import { t, has, lang } from "./i18n.js";

/** The delivery problem in the tablet's language where it is a known one; else the gateway's words. */
export function problemText(problem) {
  if (!problem) return "";
  for (const [needle, key] of [
    ["cannot be reached", "handoff.problem.unreachable"],
    ["busy or failing", "handoff.problem.failing"],
    ["could not be built", "handoff.problem.build"],
    ["no certificate for the hospitals", "handoff.problem.noCertificate"],
  ]) {
    if (problem.includes(needle) && lang() !== "en") return t(key);
  }
  return problem;
}

/** The version line: "v1 sent", "update v3 waiting to be sent", "update v3 sent". */
export function versionText(handoff) {
  const n = handoff.latestVersion;
  const delivered = handoff.deliveredVersion >= n;
  return t(n > 1 ? (delivered ? "handoff.update.sent" : "handoff.update.waiting") : delivered ? "handoff.first.sent" : "handoff.first.waiting", { n });
}

function hospitalLabel(handoff) {
  return handoff.hospitalName ?? handoff.hospital;
}

/**
 * The strip over the incident screen's `state` (`state.incident.handoff`, `state.transport.hospitals`,
 * `state.handoffBusy`, `state.handoffError`, `state.handoffPicking`) and `actions` (`sendHandoff(code)`,
 * `pickAnother()`, `rerender()`). `{el, update}`; hidden while nothing was sent and after the close.
 */
export function handoffStrip(state, actions) {
  const el = h("div", { class: "handoff-slot" });

  function others(handoff) {
    const list = state.transport.hospitals;
    if (!list && state.transport.hospitalsError) return h("p", { class: "field-error", role: "alert", testid: "hospitals-error" }, state.transport.hospitalsError);
    if (!list) return h("p", { class: "muted", testid: "handoff-others-loading" }, t("app.loading"));
    const choices = list.filter((x) => x.code !== handoff.hospital || handoff.status === "diverted");
    if (!choices.length) return h("p", { class: "muted", testid: "handoff-no-others" }, t("handoff.noOthers"));
    return h(
      "div",
      { class: "tr-buttons handoff-others", testid: "handoff-others" },
      choices.map((x) => {
        const diverted = (handoff.divertedBy ?? []).includes(x.code);
        return h(
          "button",
          { type: "button", class: `btn btn-big handoff-other ${diverted ? "handoff-other-diverted" : ""}`, testid: `handoff-other-${x.code}`, dataset: { diverted: diverted ? "yes" : "no" }, disabled: state.handoffBusy, on: { click: () => actions.sendHandoff(x.code, { confirmChange: handoff.status !== "diverted" }) } },
          h("span", { class: "row-name" }, x.name),
          h("span", { class: "code" }, x.code),
          diverted ? h("span", { class: "handoff-diverted-mark", testid: "handoff-diverted-mark" }, icon("warning", "icon icon-small"), t("handoff.divertedMark")) : null,
        );
      }),
    );
  }

  function build(handoff) {
    const status = handoff.status;
    const tone = status === "acknowledged" ? "ok" : status === "diverted" ? "danger" : status === "queued" ? "warn" : "info";
    const parts = [];
    parts.push(
      h(
        "p",
        { class: "handoff-head" },
        icon(status === "acknowledged" ? "check" : status === "diverted" || status === "queued" ? "warning" : "info", "icon"),
        h("strong", { class: "handoff-status", testid: "handoff-status" }, t(`handoff.status.${status}`)),
        h("span", { class: "handoff-hospital", testid: "handoff-hospital" }, hospitalLabel(handoff)),
      ),
    );
    parts.push(h("p", { class: "handoff-version", testid: "handoff-version", dataset: { latest: String(handoff.latestVersion), delivered: String(handoff.deliveredVersion) } }, versionText(handoff)));
    if (handoff.waiting > 0 && handoff.problem) {
      parts.push(h("p", { class: "handoff-problem", testid: "handoff-problem", dataset: { problem: handoff.problem } }, problemText(handoff.problem)));
    }
    if (handoff.waiting > 0 && (handoff.problem || status === "queued")) {
      const since = handoff.waitingSince ? Date.parse(handoff.waitingSince) : Date.now();
      parts.push(h("p", { class: "handoff-retrying", testid: "handoff-retrying" }, liveSeconds(handoff.problem ? "handoff.retrying" : "handoff.queuedFor", { sinceMs: since })));
    }
    if (status === "diverted" && handoff.divert) {
      const reason = handoff.divert.reason;
      parts.push(
        h(
          "p",
          { class: "handoff-divert", testid: "handoff-divert-reason", dataset: { reason } },
          t("handoff.divert.because", { reason: has(`handoff.reason.${reason}`) ? t(`handoff.reason.${reason}`) : reason }),
        ),
      );
      if (handoff.divert.note) parts.push(h("p", { class: "handoff-divert-note", testid: "handoff-divert-note" }, handoff.divert.note));
    }
    const picking = state.handoffPicking || status === "diverted";
    parts.push(
      h(
        "div",
        { class: "handoff-actions" },
        status === "diverted"
          ? h("p", { class: "handoff-pick-title", testid: "handoff-pick-another" }, t("handoff.pickAnother"))
          : h("button", { type: "button", class: "btn btn-big", testid: "handoff-change", "aria-expanded": picking ? "true" : "false", on: { click: actions.pickAnother } }, t(picking ? "handoff.change.cancel" : "handoff.change")),
      ),
    );
    if (picking) parts.push(others(handoff));
    if (state.handoffError) parts.push(h("p", { class: "field-error", role: "alert", testid: "handoff-send-error" }, icon("warning", "icon icon-small"), state.handoffError));
    return h(
      "section",
      { class: `handoff-strip handoff-${tone}`, testid: "handoff-strip", role: "status", "aria-live": "polite", dataset: { status, hospital: handoff.hospital, latest: String(handoff.latestVersion), delivered: String(handoff.deliveredVersion), waiting: String(handoff.waiting) } },
      ...parts,
    );
  }

  function update() {
    const incident = state.incident;
    const handoff = incident && incident.phase !== "closed" ? incident.handoff ?? null : null;
    el.hidden = !handoff;
    keyed(el, [handoff, lang(), state.transport.hospitals, state.transport.hospitalsError, state.handoffBusy, state.handoffError, state.handoffPicking], () => (handoff ? build(handoff) : h("span", {})));
  }

  update();
  return { el, update };
}
