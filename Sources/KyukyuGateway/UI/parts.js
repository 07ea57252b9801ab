// Pieces the incident views share: the retry banner (no network / maintenance / breaker open, each as what it
// is, with the next attempt's time and a countdown), the reader status line, and the per-category status chip.

import { h, icon, clockTime, liveSeconds } from "./dom.js";
import { t, has } from "./i18n.js";

/** The "will retry" banner for `incident.retry`, or null. testid `retry-banner`, data-reason. */
export function retryBanner(incident) {
  const retry = incident?.retry;
  if (!retry) return null;
  const reason = has(`retry.${retry.reason}`) ? retry.reason : "no-network";
  const next = Date.parse(retry.nextAttemptAt);
  return h(
    "div",
    { class: `banner banner-warn retry-${reason}`, role: "status", testid: "retry-banner", dataset: { reason } },
    icon(reason === "maintenance" ? "clock" : "warning"),
    h(
      "div",
      { class: "banner-text" },
      h("strong", { testid: "retry-text" }, t(`retry.${reason}`, { time: clockTime(retry.nextAttemptAt) })),
      Number.isNaN(next)
        ? null
        : h("div", { class: "banner-sub" }, liveSeconds("retry.attempt", { untilMs: next, params: { n: retry.attempt ?? 1 }, testid: "retry-countdown" })),
    ),
  );
}

/** The reader's state in words. testid `reader-status`, data-state. */
export function readerStatus(reader) {
  const state = reader?.state ?? "unknown";
  const key = has(`reader.${state}`) ? `reader.${state}` : "reader.unknown";
  const trouble = state === "no-service" || state === "no-reader";
  return h(
    "div",
    { class: `reader-status ${trouble ? "reader-trouble" : ""}`, role: "status", testid: "reader-status", dataset: { state } },
    icon(trouble ? "plug" : "card"),
    h("span", {}, t(key)),
    reader?.reader ? h("span", { class: "reader-name" }, t("reader.name", { name: reader.reader })) : null,
  );
}

const doneStatuses = new Set(["arrived", "none-on-record", "late"]);
const troubleStatuses = new Set(["failed", "timed-out", "cancelled"]);

/** True when the category will not change any more (arrived, none on record, late). */
export function isDone(status) {
  return doneStatuses.has(status);
}

/** True when the category ended without data (failed, timed out, cancelled). */
export function isTrouble(status) {
  return troubleStatuses.has(status);
}

/**
 * A chip "<category>: <status>" for one category. Pending and retrying count the seconds since `sinceMs` (the
 * moment the fetch was seen under way); without it they say "waiting" (the fetch has not started).
 * testid `status-<category>`, data-status.
 */
export function statusChip(category, info, sinceMs) {
  const status = info?.status ?? "pending";
  let label;
  if ((status === "pending" || status === "retrying") && sinceMs === undefined) {
    label = t("status.waiting");
  } else if (status === "pending" || status === "retrying") {
    label = liveSeconds(status === "pending" ? "status.pending" : "status.retrying", { sinceMs: sinceMs ?? Date.now() });
    if (status === "retrying") label = h("span", {}, t("status.retrying"), " ", liveSeconds("seconds", { sinceMs: sinceMs ?? Date.now() }));
  } else if (status === "arrived" && typeof info?.count === "number") {
    label = t("status.arrived.count", { n: info.count });
  } else {
    label = has(`status.${status}`) ? t(`status.${status}`) : t("status.unknown");
  }
  const iconName = isDone(status) ? "check" : isTrouble(status) ? "cross" : "clock";
  return h(
    "span",
    { class: `chip chip-${status}`, testid: `status-${category}`, dataset: { status } },
    icon(iconName, "icon icon-small"),
    h("span", { class: "chip-cat" }, t(`cat.${category}`)),
    h("span", { class: "chip-status" }, label),
    status === "pending" && sinceMs !== undefined ? h("span", { class: "chip-progress", "aria-hidden": "true" }) : null,
  );
}
