// The consent step: three big one-tap buttons (verbal / unconscious, life-or-body exception / refused).
// A tap posts the basis at once; a refusal closes the incident, and the closed view says onshi records it.

import { h, notice, keyed } from "./dom.js";
import { t } from "./i18n.js";
import { readerStatus } from "./parts.js";

const choices = [
  { basis: "verbal", key: "consent.verbal", testid: "consent-verbal", cls: "consent-verbal" },
  { basis: "life-or-body-exception", key: "consent.exception", testid: "consent-exception", cls: "consent-exception" },
  { basis: "refused", key: "consent.refused", testid: "consent-refused", cls: "consent-refused" },
];

/** The consent view over the incident screen's shared `state` and `actions` (buttons built once). */
export function consentView(state, actions) {
  const buttons = choices.map((c) =>
    h(
      "button",
      { type: "button", class: `btn btn-huge ${c.cls}`, testid: c.testid, on: { click: () => actions.consent(c.basis) } },
      h("span", { class: "btn-main" }, t(c.key)),
      h("span", { class: "btn-sub" }, t(`${c.key}.sub`)),
    ),
  );
  const error = h("div", { class: "slot" });
  const reader = h("div", { class: "slot" });
  const el = h(
    "div",
    { class: "view view-consent", testid: "view-consent" },
    h("h2", { class: "view-title" }, t("consent.title")),
    h("p", { class: "view-sub" }, t("consent.question")),
    h("div", { class: "consent-buttons" }, buttons),
    error,
    reader,
  );
  function update() {
    for (const b of buttons) b.disabled = state.consentBusy;
    keyed(error, state.consentError, () => (state.consentError ? notice(state.consentError, { testid: "consent-error" }) : null));
    keyed(reader, state.reader, () => readerStatus(state.reader));
  }
  update();
  return { el, update };
}
