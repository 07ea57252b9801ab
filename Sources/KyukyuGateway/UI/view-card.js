// "Touch the card to the reader": the reader's state, the card's state (reading with elapsed seconds, removed
// mid-read, approve on the phone, failed with its reason), and the card PIN pad only when the token asks for a
// PIN (Android), with the tries left and the last-try guard in plain words plus an explicit confirmation.
// Nothing here needs a tap for a card holder: the read and the summary follow by themselves.

import { h, icon, liveSeconds, notice, keyed } from "./dom.js";
import { t, tn, lang } from "./i18n.js";
import { pinPad } from "./pinpad.js";
import { readerStatus, retryBanner } from "./parts.js";

function cardState(state) {
  const card = state.incident?.card;
  const s = card?.state ?? "waiting";
  switch (s) {
    case "reading":
      return h(
        "div",
        { class: "card-state card-reading", role: "status", testid: "card-status", dataset: { state: s } },
        h("div", { class: "card-state-main" }, t("card.reading")),
        h("div", { class: "progress-bar indeterminate", "aria-hidden": "true" }, h("span")),
        liveSeconds("card.elapsed", { sinceMs: state.readingSince ?? Date.now(), testid: "card-reading-elapsed" }),
      );
    case "removed":
      return h(
        "div",
        { class: "card-state card-removed", role: "alert", testid: "card-status", dataset: { state: s } },
        icon("warning", "icon icon-big"),
        h("div", { class: "card-state-main" }, t("card.removed")),
        h("div", { class: "card-state-sub" }, t("card.removed.sub")),
      );
    case "approve-on-phone":
      return h(
        "div",
        { class: "card-state card-approve", role: "status", testid: "card-status", dataset: { state: s } },
        icon("phone", "icon icon-big"),
        h("div", { class: "card-state-main" }, t("card.approve")),
        h("div", { class: "card-state-sub" }, t("card.approve.sub")),
      );
    case "failed":
      return h(
        "div",
        { class: "card-state card-failed", role: "alert", testid: "card-status", dataset: { state: s } },
        icon("cross", "icon icon-big"),
        h("div", { class: "card-state-main" }, t("card.failed")),
        card?.reason ? h("div", { class: "card-state-sub", testid: "card-failed-reason" }, card.reason) : null,
      );
    case "read":
      return h(
        "div",
        { class: "card-state card-read", role: "status", testid: "card-status", dataset: { state: s } },
        icon("check", "icon icon-big"),
        h("div", { class: "card-state-main" }, t("card.read")),
      );
    case "pin-required":
      return null;
    default:
      return h(
        "div",
        { class: "card-state card-waiting", role: "status", testid: "card-status", dataset: { state: s } },
        h("div", { class: "card-state-main" }, t("card.waiting")),
      );
  }
}

function pinSection(state, actions) {
  const card = state.incident.card;
  const triesLeft = typeof card.triesLeft === "number" ? card.triesLeft : null;
  const lastTry = card.lastTry === true || triesLeft === 1;
  return h(
    "div",
    { class: "card-pin", testid: "card-pin" },
    h("h3", { class: "card-pin-title" }, icon("phone"), t("cardpin.title")),
    h("p", { class: "view-sub" }, t("cardpin.hint")),
    triesLeft !== null ? h("p", { class: `pin-tries ${lastTry ? "pin-tries-last" : ""}`, testid: "card-pin-tries", dataset: { tries: triesLeft } }, tn("cardpin.tries", triesLeft)) : null,
    lastTry
      ? h(
          "div",
          { class: "last-try", role: "alert", testid: "card-pin-last-try" },
          h("p", {}, icon("warning"), " ", t("cardpin.lastTry")),
          h(
            "label",
            { class: "check-big" },
            h("input", {
              type: "checkbox",
              testid: "card-pin-confirm",
              checked: state.pinConfirm,
              on: {
                change: (e) => {
                  state.pinConfirm = e.target.checked;
                  actions.rerender();
                },
              },
            }),
            h("span", {}, t("cardpin.confirm")),
          ),
        )
      : null,
    state.pinError ? notice(state.pinError, { testid: "card-pin-error" }) : null,
    pinPad({
      buffer: state.pin,
      minLength: 4,
      maxLength: 4,
      prefix: "card-pin",
      disabled: state.pinBusy,
      canSubmit: () => !lastTry || state.pinConfirm,
      onSubmit: (pin) => actions.submitPin(pin, lastTry && state.pinConfirm),
    }),
  );
}

/** The card view over the incident screen's shared `state` and `actions`; each part refilled only on change. */
export function cardView(state, actions) {
  const slots = {
    refused: h("div", { class: "slot" }),
    retry: h("div", { class: "slot" }),
    reader: h("div", { class: "slot" }),
    card: h("div", { class: "slot" }),
    pin: h("div", { class: "slot" }),
    failed: h("div", { class: "slot" }),
    error: h("div", { class: "slot" }),
  };
  const prompt = h("div", { class: "card-prompt" }, icon("card", "icon icon-huge"), h("div", {}, h("h2", { class: "view-title", testid: "card-title" }, t("card.title")), h("p", { class: "view-sub" }, t("card.sub"))));
  const noCard = h("button", { type: "button", class: "btn btn-big", testid: "card-no-card", on: { click: actions.toLookup } }, t("card.noCard"));
  // Vitals and treatment can be recorded before the patient is identified (or when nobody can be).
  const transport = h("button", { type: "button", class: "btn btn-big", testid: "card-to-transport", on: { click: actions.toTransport } }, t("tr.open"));
  const footer = h("div", { class: "view-footer" }, noCard, transport);
  const el = h(
    "div",
    { class: "view view-card", testid: "view-card" },
    slots.refused,
    slots.retry,
    prompt,
    slots.reader,
    slots.card,
    slots.pin,
    slots.failed,
    slots.error,
    footer,
  );
  function update() {
    const incident = state.incident;
    const card = incident.card ?? null;
    const needsPin = card?.state === "pin-required";
    const failed = card?.state === "failed";
    const refused = incident.consent === "refused";
    keyed(slots.refused, [refused, lang()], () =>
      refused
        ? h("div", { class: "banner banner-refused", role: "status", testid: "refused-banner" }, icon("info"), h("div", { class: "banner-text" }, h("strong", {}, t("card.refused.title")), h("div", { class: "banner-sub" }, t("card.refused.body"))))
        : null,
    );
    keyed(slots.retry, incident.retry, () => retryBanner(incident));
    keyed(slots.reader, state.reader, () => readerStatus(state.reader));
    keyed(slots.card, [card, state.readingSince], () => cardState(state));
    keyed(slots.pin, needsPin ? [card, state.pinConfirm, state.pinError, state.pinBusy] : null, () => (needsPin ? pinSection(state, actions) : null));
    keyed(slots.failed, failed, () =>
      failed ? h("button", { type: "button", class: "btn btn-big btn-primary", testid: "card-failed-to-lookup", on: { click: actions.toLookup } }, t("card.noCard")) : null,
    );
    keyed(slots.error, state.actionError, () => (state.actionError ? notice(state.actionError, { testid: "incident-error" }) : null));
    noCard.hidden = failed;
    transport.hidden = refused;
    prompt.hidden = needsPin;
  }
  update();
  return { el, update };
}
