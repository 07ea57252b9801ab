// Small DOM helpers shared by the screens: element building (text only, never innerHTML, so patient data
// can never become markup), icons as inline SVG, date/time formatting, the confirm dialog, and the 1 s ticker
// that keeps every "elapsed N s" / "in N s" label current without re-rendering a screen.

import { t, lang } from "./i18n.js";

/**
 * Builds an element. attrs: `testid` → data-testid, `class`, `on: {event: fn}`, `dataset: {...}`,
 * `hidden`/`disabled`/`checked`/`value` as properties, anything else as an attribute (null/false skips it).
 * Children: nodes, strings (as text), arrays, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "testid") el.dataset.testid = value;
    else if (key === "class") el.className = value;
    else if (key === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "hidden" || key === "disabled" || key === "checked" || key === "value") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const svgNS = "http://www.w3.org/2000/svg";
const iconPaths = {
  warning: "M12 2 1 21h22L12 2zm0 5.5 7.5 13h-15L12 7.5zM11 10v5h2v-5h-2zm0 6v2h2v-2h-2z",
  card: "M3 5h18a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 3v2h16V8H4zm0 6v3h6v-3H4z",
  phone: "M7 2h10a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm0 3v13h10V5H7zm4 14v1h2v-1h-2z",
  check: "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4L9 16.2z",
  cross: "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7l1.4-1.4 6.3 6.3 6.3-6.3z",
  clock: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 3v6l5 3 1-1.7-4-2.3V7h-2z",
  plug: "M16 7V3h-2v4h-4V3H8v4a2 2 0 0 0-2 2v4l4 4v4h4v-4l4-4V9a2 2 0 0 0-2-2z",
  info: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm-1 5h2v2h-2V7zm0 4h2v6h-2v-6z",
};

/** An inline SVG icon (decorative: the text next to it carries the meaning). */
export function icon(name, className = "icon") {
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(svgNS, "path");
  path.setAttribute("d", iconPaths[name] ?? iconPaths.info);
  path.setAttribute("fill", "currentColor");
  svg.appendChild(path);
  return svg;
}

/** hh:mm:ss in local time, from an ISO 8601 string or a Date. */
export function clockTime(value) {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "--:--:--";
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Month/day hh:mm for list rows. */
export function shortDateTime(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}/${d.getDate()} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A calendar date ("YYYY-MM-DD") as shown: 2024/01/31 in Japanese, 2024-01-31 in English. */
export function calendarDate(value) {
  if (!value) return "";
  return lang() === "ja" ? String(value).replaceAll("-", "/") : String(value);
}

/** A wait in seconds as "N分M秒" / "N min M s". */
export function waitText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s >= 60) return t("wait.ms", { m: Math.floor(s / 60), s: s % 60 });
  return t("wait.s", { s });
}

/**
 * A label kept current by the ticker: `mode` "elapsed" counts seconds since `sinceMs`, "remaining" counts
 * down to `untilMs`; `key` is the i18n key with `{s}`, extra params fill the rest. `data-seconds` holds the number.
 */
export function liveSeconds(key, { sinceMs = null, untilMs = null, params = {}, testid = null, className = "", wait = false } = {}) {
  const el = h("span", { class: `live-seconds ${className}`, testid });
  el.dataset.key = key;
  // `wait`: `{s}` as "N分M秒" / "N min M s" (waitText), for what may run to minutes.
  if (wait) el.dataset.wait = "yes";
  el.dataset.params = JSON.stringify(params);
  if (sinceMs !== null) el.dataset.since = String(sinceMs);
  if (untilMs !== null) el.dataset.until = String(untilMs);
  updateLive(el, Date.now());
  return el;
}

function updateLive(el, now) {
  const params = JSON.parse(el.dataset.params || "{}");
  let s = 0;
  if (el.dataset.since) s = Math.max(0, Math.floor((now - Number(el.dataset.since)) / 1000));
  else if (el.dataset.until) s = Math.max(0, Math.ceil((Number(el.dataset.until) - now) / 1000));
  el.dataset.seconds = String(s);
  el.textContent = t(el.dataset.key, { ...params, s: el.dataset.wait ? waitText(s) : s });
}

setInterval(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll(".live-seconds")) updateLive(el, now);
}, 1000);

/**
 * A modal confirm with two big buttons; resolves true/false. testids: `confirm-dialog`, `confirm-yes`,
 * `confirm-no` (plus `<prefix>-yes` when given, e.g. close-confirm-yes).
 */
export function confirmDialog(message, { yes = t("common.ok"), no = t("common.cancel"), danger = false, testid = "confirm" } = {}) {
  const backdrop = document.querySelector('[data-testid="modal"]');
  return new Promise((resolve) => {
    const done = (answer) => {
      backdrop.hidden = true;
      backdrop.replaceChildren();
      document.removeEventListener("keydown", onKey);
      resolve(answer);
    };
    const onKey = (e) => {
      if (e.key === "Escape") done(false);
    };
    const dialog = h(
      "div",
      { class: "dialog", role: "alertdialog", "aria-modal": "true", testid: `${testid}-dialog` },
      h("p", { class: "dialog-text", testid: `${testid}-message` }, message),
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", class: "btn btn-big", testid: `${testid}-no`, on: { click: () => done(false) } }, no),
        h(
          "button",
          { type: "button", class: `btn btn-big ${danger ? "btn-danger" : "btn-primary"}`, testid: `${testid}-yes`, on: { click: () => done(true) } },
          yes,
        ),
      ),
    );
    backdrop.replaceChildren(dialog);
    backdrop.hidden = false;
    document.addEventListener("keydown", onKey);
    dialog.querySelector("button")?.focus();
  });
}

/** Shows an error/notice block (role=alert) with a stable testid. */
export function notice(text, { kind = "error", testid = "error", iconName = "warning" } = {}) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", testid }, icon(iconName), h("span", {}, text));
}

/** Puts `node` in the global banner area under `key` (replacing what was there); null removes it. */
export function setBanner(key, node) {
  const area = document.querySelector('[data-testid="banners"]');
  if (!area) return;
  const old = area.querySelector(`[data-banner="${key}"]`);
  if (!node) {
    old?.remove();
    return;
  }
  node.dataset.banner = key;
  if (old) old.replaceWith(node);
  else area.appendChild(node);
}

/** Replaces `el`'s children like replaceChildren, skipping null/false and flattening arrays (as h does). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Refills `slot` from `build()` only when `key` (any JSON-able value describing what it shows) changed, so
 * elements that did not change stay the same nodes (no flicker, no lost focus, no stale WebDriver handles).
 */
export function keyed(slot, key, build) {
  const k = JSON.stringify(key);
  if (renderKeys.get(slot) === k) return slot;
  renderKeys.set(slot, k);
  return fill(slot, build());
}

const renderKeys = new WeakMap();
