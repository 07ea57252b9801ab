// A big PIN pad for gloved hands (0-9, delete, OK), used by the lock screen (crew PIN) and the card PIN
// (Android token). The digits live in a `buffer` object owned by the caller, so a re-render keeps them; they
// are shown only as dots. A hardware keyboard works too (digits, Backspace, Enter).
// testids: <prefix>-display, <prefix>-key-0 … <prefix>-key-9, <prefix>-delete, <prefix>-ok.

import { h } from "./dom.js";
import { t } from "./i18n.js";

let activePad = null;

document.addEventListener("keydown", (e) => {
  if (!activePad || !activePad.el.isConnected) return;
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
  if (/^[0-9]$/.test(e.key)) activePad.press(e.key);
  else if (e.key === "Backspace") activePad.remove();
  else if (e.key === "Enter") activePad.submit();
  else return;
  e.preventDefault();
});

/**
 * Renders a PIN pad. buffer: `{digits: ""}` (kept by the caller); maxLength: digits accepted;
 * onSubmit(pin): called by OK; disabled: no input (e.g. while a request runs); canSubmit(pin): OK enabled.
 */
export function pinPad({ buffer, maxLength = 8, minLength = 4, onSubmit, prefix, disabled = false, canSubmit = () => true }) {
  const display = h("div", { class: "pin-display", testid: `${prefix}-display`, "aria-live": "polite" });
  const okButton = h("button", { type: "button", class: "btn pin-key pin-ok btn-primary", testid: `${prefix}-ok` }, t("pin.ok"));

  function refresh() {
    const dots = [];
    for (let i = 0; i < Math.max(buffer.digits.length, minLength); i++) {
      dots.push(h("span", { class: i < buffer.digits.length ? "pin-dot filled" : "pin-dot" }));
    }
    display.replaceChildren(...dots, h("span", { class: "visually-hidden" }, t("pin.entered", { n: buffer.digits.length })));
    display.dataset.length = String(buffer.digits.length);
    okButton.disabled = disabled || buffer.digits.length < minLength || !canSubmit(buffer.digits);
  }

  const pad = {
    el: null,
    press(digit) {
      if (disabled || buffer.digits.length >= maxLength) return;
      buffer.digits += digit;
      refresh();
    },
    remove() {
      if (disabled) return;
      buffer.digits = buffer.digits.slice(0, -1);
      refresh();
    },
    submit() {
      if (okButton.disabled) return;
      onSubmit(buffer.digits);
    },
  };

  const key = (digit) =>
    h("button", { type: "button", class: "btn pin-key", testid: `${prefix}-key-${digit}`, disabled, on: { click: () => pad.press(digit) } }, digit);
  okButton.addEventListener("click", () => pad.submit());
  const grid = h(
    "div",
    { class: "pin-grid" },
    ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map(key),
    h("button", { type: "button", class: "btn pin-key pin-delete", testid: `${prefix}-delete`, disabled, on: { click: () => pad.remove() } }, t("pin.delete")),
    key("0"),
    okButton,
  );
  pad.el = h("div", { class: "pin-pad", testid: `${prefix}-pad` }, display, grid);
  refresh();
  activePad = pad;
  return pad.el;
}
