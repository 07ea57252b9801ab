// No card: look the patient up by the four fields (name in kanji and kana, birth date, sex, address) or by the
// insurance card (insurer number, symbol, number). Inputs are built once and keep focus while the incident
// updates around them; values live only in memory (autocomplete off, never stored, never in the URL).
// Kana fields accept hiragana and half-width kana and turn them into full-width katakana.

import { h, notice, fill } from "./dom.js";
import { t } from "./i18n.js";

/** Full-width katakana from hiragana / half-width kana, with one ASCII space between words. */
export function toKatakana(text) {
  return text
    .normalize("NFKC")
    .replace(/[\u3041-\u3096]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60))
    .replace(/[\s\u3000]+/g, " ")
    .trim();
}

function digitsOnly(text) {
  return text.normalize("NFKC").replace(/[^0-9]/g, "");
}

/** The empty form, kept in the incident screen's state (memory only). */
export function emptyLookupForm() {
  return {
    tab: "demographics",
    familyName: "",
    givenName: "",
    familyKana: "",
    givenKana: "",
    year: "",
    month: "",
    day: "",
    sex: null,
    address: "",
    insurerNumber: "",
    insuredSymbol: "",
    insuredNumber: "",
  };
}

function validDate(y, m, d) {
  const year = Number(y);
  const month = Number(m);
  const day = Number(d);
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day)) return null;
  if (year < 1900 || year > new Date().getFullYear() || month < 1 || month > 12 || day < 1) return null;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  const pad = (n, w) => String(n).padStart(w, "0");
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** Builds the request body from the form, or returns {error} in words. */
export function lookupQuery(form) {
  if (form.tab === "insurance") {
    const insurerNumber = digitsOnly(form.insurerNumber);
    const insuredNumber = form.insuredNumber.normalize("NFKC").trim();
    const missing = [];
    if (!insurerNumber) missing.push(t("lookup.insurerNumber"));
    if (!insuredNumber) missing.push(t("lookup.insuredNumber"));
    if (missing.length) return { error: t("lookup.missing", { fields: missing.join(t("list.separator")) }) };
    if (insurerNumber.length !== 6 && insurerNumber.length !== 8) return { error: t("lookup.badInsurer") };
    return { query: { kind: "insurance", insurerNumber, insuredSymbol: form.insuredSymbol.normalize("NFKC").trim(), insuredNumber } };
  }
  const family = form.familyName.trim();
  const given = form.givenName.trim();
  const kana = toKatakana(`${form.familyKana} ${form.givenKana}`);
  const missing = [];
  if (!family) missing.push(t("lookup.familyName"));
  if (!form.year || !form.month || !form.day) missing.push(t("lookup.birthDate"));
  if (!form.sex) missing.push(t("lookup.sex"));
  if (!form.address.trim()) missing.push(t("lookup.address"));
  if (missing.length) return { error: t("lookup.missing", { fields: missing.join(t("list.separator")) }) };
  const birthDate = validDate(digitsOnly(form.year), digitsOnly(form.month), digitsOnly(form.day));
  if (!birthDate) return { error: t("lookup.badDate") };
  const query = { kind: "demographics", name: given ? `${family} ${given}` : family, birthDate, sex: form.sex, address: form.address.trim() };
  if (kana) query.nameKana = kana;
  return { query };
}

function field(labelKey, input, hint = null) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, t(labelKey)), input, hint ? h("span", { class: "field-hint" }, hint) : null);
}

/** The lookup view over the incident screen's shared `state` and `actions`. */
export function lookupView(state, actions) {
  const form = state.lookupForm;
  const el = h("div", { class: "view view-lookup", testid: "view-lookup" });
  const status = h("div", { class: "lookup-status", testid: "lookup-status" });

  const input = (name, testid, { kana = false, ...attrs } = {}) =>
    h("input", {
      class: "input",
      testid,
      value: form[name],
      autocomplete: "off",
      autocorrect: "off",
      spellcheck: "false",
      autocapitalize: "off",
      ...attrs,
      on: {
        input: (e) => {
          form[name] = e.target.value;
        },
        blur: (e) => {
          if (kana) {
            form[name] = toKatakana(e.target.value);
            e.target.value = form[name];
          }
        },
      },
    });
  const numeric = (name, testid, maxlength, extra = {}) => input(name, testid, { inputmode: "numeric", pattern: "[0-9]*", maxlength, ...extra });

  const sexButtons = h(
    "div",
    { class: "segmented", role: "group" },
    ["male", "female", "other"].map((sex) =>
      h(
        "button",
        {
          type: "button",
          class: `btn btn-big seg ${form.sex === sex ? "selected" : ""}`,
          testid: `lookup-sex-${sex}`,
          "aria-pressed": form.sex === sex ? "true" : "false",
          on: {
            click: (e) => {
              form.sex = sex;
              for (const b of sexButtons.querySelectorAll("button")) {
                const on = b === e.currentTarget;
                b.classList.toggle("selected", on);
                b.setAttribute("aria-pressed", on ? "true" : "false");
              }
            },
          },
        },
        t(`sex.${sex}`),
      ),
    ),
  );

  const demographics = h(
    "div",
    { class: "lookup-panel", testid: "lookup-panel-demographics", lang: "ja" },
    h("div", { class: "field-row" }, field("lookup.familyName", input("familyName", "lookup-family-name", { lang: "ja" })), field("lookup.givenName", input("givenName", "lookup-given-name", { lang: "ja" }))),
    h(
      "div",
      { class: "field-row" },
      field("lookup.familyKana", input("familyKana", "lookup-family-kana", { lang: "ja", kana: true }), t("lookup.kanaHint")),
      field("lookup.givenKana", input("givenKana", "lookup-given-kana", { lang: "ja", kana: true })),
    ),
    h(
      "fieldset",
      { class: "field date-fields" },
      h("legend", { class: "field-label" }, t("lookup.birthDate")),
      h("label", { class: "date-part" }, numeric("year", "lookup-birth-year", 4, { class: "input input-year" }), h("span", {}, t("lookup.year"))),
      h("label", { class: "date-part" }, numeric("month", "lookup-birth-month", 2, { class: "input input-2" }), h("span", {}, t("lookup.month"))),
      h("label", { class: "date-part" }, numeric("day", "lookup-birth-day", 2, { class: "input input-2" }), h("span", {}, t("lookup.day"))),
    ),
    h("fieldset", { class: "field" }, h("legend", { class: "field-label" }, t("lookup.sex")), sexButtons),
    field("lookup.address", input("address", "lookup-address", { lang: "ja" })),
  );
  const insurance = h(
    "div",
    { class: "lookup-panel", testid: "lookup-panel-insurance" },
    field("lookup.insurerNumber", numeric("insurerNumber", "lookup-insurer-number", 8)),
    h("div", { class: "field-row" }, field("lookup.insuredSymbol", input("insuredSymbol", "lookup-insured-symbol", { lang: "ja" })), field("lookup.insuredNumber", numeric("insuredNumber", "lookup-insured-number", 20))),
  );

  const tabButton = (tab) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        class: `btn btn-big tab ${form.tab === tab ? "selected" : ""}`,
        testid: `lookup-tab-${tab}`,
        "aria-selected": form.tab === tab ? "true" : "false",
        on: {
          click: () => {
            form.tab = tab;
            showTab();
          },
        },
      },
      t(`lookup.tab.${tab}`),
    );
  const tabs = h("div", { class: "tabs", role: "tablist" }, tabButton("demographics"), tabButton("insurance"));

  function showTab() {
    demographics.hidden = form.tab !== "demographics";
    insurance.hidden = form.tab !== "insurance";
    for (const b of tabs.querySelectorAll("button")) {
      const on = b.dataset.testid === `lookup-tab-${form.tab}`;
      b.classList.toggle("selected", on);
      b.setAttribute("aria-selected", on ? "true" : "false");
    }
  }

  const submit = h("button", { type: "submit", class: "btn btn-huge btn-primary", testid: "lookup-submit" }, t("lookup.submit"));
  const formEl = h(
    "form",
    {
      class: "lookup-form",
      testid: "lookup-form",
      autocomplete: "off",
      novalidate: true,
      on: {
        submit: (e) => {
          e.preventDefault();
          const { query, error } = lookupQuery(form);
          if (error) {
            state.lookupError = error;
            update();
            return;
          }
          actions.lookup(query);
        },
      },
    },
    status,
    tabs,
    demographics,
    insurance,
    h("div", { class: "form-actions" }, h("button", { type: "button", class: "btn btn-big", testid: "lookup-back-to-card", on: { click: actions.toCard } }, t("lookup.backToCard")), submit),
  );

  el.append(h("h2", { class: "view-title" }, t("lookup.title")), formEl);
  showTab();

  function update() {
    submit.disabled = state.lookupBusy;
    fill(status,
      state.lookupError ? notice(state.lookupError, { testid: "lookup-error" }) : null,
      ...(state.lookupInvalid ?? []).map((p) => h("div", { class: "invalid-param", testid: "lookup-invalid-param" }, `${p.name}: ${p.reason}`)),
    );
  }
  update();
  return { el, update };
}
