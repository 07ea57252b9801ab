// The consent step: three big one-tap buttons (verbal / unconscious, life-or-body exception / refused).
// A tap posts the basis at once; a refusal closes the incident, and the closed view says onshi records it.

import { h, notice, fill } from "./dom.js";
import { t } from "./i18n.js";
import { readerStatus } from "./parts.js";

const choices = [
  { basis: "verbal", key: "consent.verbal", testid: "consent-verbal", cls: "consent-verbal" },
  { basis: "life-or-body-exception", key: "consent.exception", testid: "consent-exception", cls: "consent-exception" },
  { basis: "refused", key: "consent.refused", testid: "consent-refused", cls: "consent-refused" },
];

/** The consent view over the incident screen's shared `state` and `actions`. */
export function consentView(state, actions) {
  const el = h("div", { class: "view view-consent", testid: "view-consent" });
  function update() {
    fill(el,
      h("h2", { class: "view-title" }, t("consent.title")),
      h("p", { class: "view-sub" }, t("consent.question")),
      h(
        "div",
        { class: "consent-buttons" },
        choices.map((c) =>
          h(
            "button",
            {
              type: "button",
              class: `btn btn-huge ${c.cls}`,
              testid: c.testid,
              disabled: state.consentBusy,
              on: { click: () => actions.consent(c.basis) },
            },
            h("span", { class: "btn-main" }, t(c.key)),
            h("span", { class: "btn-sub" }, t(`${c.key}.sub`)),
          ),
        ),
      ),
      state.consentError ? notice(state.consentError, { testid: "consent-error" }) : null,
      readerStatus(state.reader),
    );
  }
  update();
  return { el, update };
}
