// The hospital picker against the region's live acceptance (GET …/hospitals, then `event: hospitals` on the
// incident's stream whenever any hospital's publication changes): the crew's hospitals best fit first, each with its
// tier, a green or red chip per condition the patient needs (a red one with the hospital's reason in words and its
// staff's note), "not published" when the hospital said nothing, and how old its publication is. The crew ticks
// hospitals and sends one placement request to all of them (POST …/placements); each hospital's answer follows in
// the incident view's `placement` (accepted, declined with its reason, placed elsewhere, cancelled). The first to
// accept becomes the destination: the handoff strip then shows the document going there.

import { h, icon, keyed, liveSeconds } from "./dom.js";
import { t, has, lang } from "./i18n.js";

/** The picker's own state, kept by the incident screen. */
export function emptyPickerState() {
  return { ranking: null, error: null, loading: false, selected: [], busy: false, sendError: null, receivedAt: 0 };
}

function reasonText(reason) {
  return has(`handoff.reason.${reason}`) ? t(`handoff.reason.${reason}`) : reason;
}

function needReason(reason) {
  if (reason.kind === "red-flag") return t("picker.because.dialysis", { date: reason.date ?? "" });
  if (reason.kind === "chief-complaint") return t(`tr.complaint.${reason.complaint}`);
  if (reason.kind === "age") return t("picker.because.age", { n: reason.years });
  return "";
}

/**
 * The picker over the incident screen's `state` (`state.picker`, `state.incident.placement`) and `actions`
 * (`sendPlacement(codes)`, `cancelPlacement()`, `loadRanking()`, `rerender()`). `{el, update}`.
 */
export function hospitalPicker(state, actions) {
  const el = h("div", { class: "picker-slot" });
  const pk = state.picker;

  function chip(condition, kind, declined) {
    const label = t(`picker.condition.${condition}`);
    const words = kind === "accepted" ? t("picker.accepts") : kind === "declined" ? t("picker.declines", { reason: reasonText(declined.reason) }) : t("picker.unknown");
    return h(
      "span",
      { class: `picker-chip picker-chip-${kind}`, testid: "picker-chip", dataset: { condition, state: kind, reason: declined?.reason ?? "" } },
      icon(kind === "accepted" ? "check" : kind === "declined" ? "warning" : "info", "icon icon-small"),
      h("strong", {}, label),
      " ",
      words,
      declined?.note ? h("span", { class: "picker-note", testid: "picker-note" }, ` (${declined.note})`) : null,
    );
  }

  function age(entry) {
    const published = entry.acceptance;
    if (!published) return h("span", { class: "picker-age muted", testid: "picker-unpublished" }, t("picker.unpublished"));
    // The age on the gateway's clock when the ranking came, then counting on this tablet's.
    const lag = Math.max(0, Date.parse(pk.ranking.asOf) - Date.parse(published.updatedAt));
    return liveSeconds("picker.age", { sinceMs: pk.receivedAt - lag, className: "picker-age", testid: "picker-age", wait: true });
  }

  function row(entry, index, placement) {
    const asked = placement?.hospitals?.find((x) => x.code === entry.code) ?? null;
    const open = placement?.open === true;
    const selected = pk.selected.includes(entry.code);
    const chips = [
      ...entry.accepted.map((c) => chip(c, "accepted")),
      ...entry.declined.map((d) => chip(d.condition, "declined", d)),
      ...entry.unknown.map((c) => chip(c, "unknown")),
    ];
    return h(
      "li",
      { class: `picker-row picker-tier-${entry.tier}`, testid: "picker-row", dataset: { code: entry.code, tier: entry.tier, rank: String(index + 1), answer: asked?.answer ?? "", published: entry.acceptance ? "yes" : "no" } },
      h(
        "label",
        { class: "picker-pick" },
        h("input", {
          type: "checkbox",
          testid: `picker-select-${entry.code}`,
          checked: selected,
          disabled: open || pk.busy,
          on: {
            change: (e) => {
              pk.selected = e.target.checked ? [...pk.selected.filter((c) => c !== entry.code), entry.code] : pk.selected.filter((c) => c !== entry.code);
              pk.sendError = null;
              actions.rerender();
            },
          },
        }),
        h("span", { class: "row-name" }, entry.name),
      ),
      h("span", { class: `picker-tier tier-${entry.tier}`, testid: "picker-tier", dataset: { tier: entry.tier } }, t(`picker.tier.${entry.tier}`)),
      age(entry),
      chips.length ? h("div", { class: "picker-chips" }, chips) : null,
      asked
        ? h(
            "p",
            { class: `picker-answer picker-answer-${asked.answer}`, testid: "picker-answer", dataset: { answer: asked.answer, reason: asked.reason ?? "" } },
            t(`picker.answer.${asked.answer}`),
            asked.reason ? ` — ${reasonText(asked.reason)}` : "",
            asked.note ? ` (${asked.note})` : "",
          )
        : null,
    );
  }

  function needsLine(needs) {
    if (!needs.length) return h("p", { class: "muted", testid: "picker-needs-none" }, t("picker.needs.none"));
    return h(
      "p",
      { class: "picker-needs", testid: "picker-needs" },
      t("picker.needs"),
      " ",
      needs.map((n) => h("span", { class: "picker-need", testid: "picker-need", dataset: { condition: n.condition } }, `${t(`picker.condition.${n.condition}`)} (${n.reasons.map(needReason).filter(Boolean).join(t("list.separator"))}) `)),
    );
  }

  function placementBlock(placement) {
    const parts = [];
    const open = placement?.open === true;
    if (placement) {
      const accepted = placement.acceptedBy ? placement.hospitals.find((x) => x.code === placement.acceptedBy) : null;
      const words = accepted ? t("placement.placed", { hospital: accepted.name ?? accepted.code }) : open ? t("placement.waiting") : placement.cancelRequested ? t("placement.cancelled") : t("placement.closed");
      parts.push(
        h(
          "p",
          { class: `placement-status ${accepted ? "placement-placed" : ""}`, testid: "placement-status", role: "status", dataset: { open: open ? "yes" : "no", acceptedBy: placement.acceptedBy ?? "", stored: placement.stored ? "yes" : "no" } },
          icon(accepted ? "check" : "info", "icon"),
          words,
        ),
      );
      if (placement.problem) parts.push(h("p", { class: "handoff-problem", testid: "placement-problem" }, placement.problem));
    }
    if (open) {
      parts.push(h("button", { type: "button", class: "btn btn-big", testid: "placement-cancel", disabled: pk.busy, on: { click: () => actions.cancelPlacement() } }, t("placement.cancel")));
    } else if (!state.incident?.handoff || state.incident.handoff.status === "diverted") {
      const n = pk.selected.length;
      parts.push(
        h(
          "button",
          { type: "button", class: "btn btn-huge btn-primary placement-send", testid: "placement-send", disabled: n < 1 || n > 10 || pk.busy, on: { click: () => actions.sendPlacement([...pk.selected]) } },
          n ? t("placement.send", { n }) : t("placement.pickFirst"),
        ),
      );
    }
    if (pk.sendError) parts.push(h("p", { class: "field-error", role: "alert", testid: "placement-error" }, icon("warning", "icon icon-small"), pk.sendError));
    return h("div", { class: "placement-actions" }, parts);
  }

  function build() {
    if (pk.error && !pk.ranking) return h("p", { class: "field-error", role: "alert", testid: "picker-error" }, pk.error);
    if (!pk.ranking) return h("p", { class: "muted", testid: "picker-loading" }, t("app.loading"));
    const placement = state.incident?.placement ?? null;
    return h(
      "section",
      { class: "hospital-picker", testid: "hospital-picker" },
      h("h3", { class: "picker-title" }, t("picker.title")),
      needsLine(pk.ranking.needs),
      h("ol", { class: "picker-list", testid: "picker-list" }, pk.ranking.hospitals.map((entry, index) => row(entry, index, placement))),
      placementBlock(placement),
    );
  }

  function update() {
    keyed(el, [pk.ranking, pk.error, pk.selected, pk.busy, pk.sendError, state.incident?.placement ?? null, state.incident?.handoff?.status ?? null, lang()], build);
  }

  actions.loadRanking();
  update();
  return { el, update };
}
