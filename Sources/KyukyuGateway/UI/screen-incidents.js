// The incident list: a big "new incident" button and the open incidents, including those dispatch pre-created
// (with the 119 call's time, place and note), to take with one tap. Refreshed every 10 s, quietly.

import { api, describeError } from "./api.js";
import { h, icon, notice, shortDateTime, clockTime, fill, keyed } from "./dom.js";
import { t } from "./i18n.js";

/** The incident list screen. ctx: {navigate(hash), takeFlash()}. */
export function incidentsScreen(ctx) {
  let incidents = null;
  let errorText = null;
  let flashText = ctx.takeFlash();
  let updatedAt = null;
  let creating = false;
  let el = null;
  let poll = null;
  let disposed = false;

  async function load(quiet = false) {
    try {
      const data = await api.listIncidents(quiet);
      incidents = Array.isArray(data?.incidents) ? data.incidents : [];
      updatedAt = new Date();
      errorText = null;
    } catch (err) {
      errorText = describeError(err);
    }
    if (!disposed) render();
  }

  async function create() {
    if (creating) return;
    creating = true;
    errorText = null;
    render();
    try {
      const incident = await api.createIncident();
      creating = false;
      ctx.navigate(`#/incident/${incident.id}`);
      return;
    } catch (err) {
      errorText = describeError(err);
    }
    creating = false;
    render();
  }

  function row(incident) {
    const dispatch = incident.source === "dispatch" ? incident.dispatch : null;
    return h(
      "li",
      { class: `incident-row source-${incident.source}`, testid: "incident-row", dataset: { incidentId: incident.id, source: incident.source, phase: incident.phase } },
      h(
        "div",
        { class: "incident-info" },
        h(
          "div",
          { class: "incident-line" },
          h("span", { class: `tag ${dispatch ? "tag-dispatch" : "tag-neutral"}` }, t(dispatch ? "incidents.source.dispatch" : "incidents.source.crew")),
          h("span", { class: "phase" }, t(`phase.${incident.phase}`)),
          incident.active === true ? h("span", { class: "tag tag-active", testid: "incident-active" }, t("incidents.active")) : null,
        ),
        dispatch
          ? h(
              "div",
              { class: "incident-dispatch" },
              h("div", { class: "incident-time" }, t("incidents.received", { time: shortDateTime(dispatch.receivedAt) })),
              dispatch.location ? h("div", { class: "incident-location", testid: "incident-location" }, dispatch.location) : null,
              dispatch.note ? h("div", { class: "incident-note", testid: "incident-note" }, dispatch.note) : null,
            )
          : h("div", { class: "incident-time" }, t("incidents.created", { time: shortDateTime(incident.createdAt) })),
      ),
      h(
        "button",
        { type: "button", class: "btn btn-big btn-primary", testid: "incident-open", on: { click: () => ctx.navigate(`#/incident/${incident.id}`) } },
        t(dispatch && incident.phase === "created" ? "incidents.take" : "incidents.open"),
      ),
    );
  }

  const slots = {};

  function build() {
    slots.flash = h("div", { class: "slot" });
    slots.error = h("div", { class: "slot" });
    slots.list = h("div", { class: "slot" });
    slots.updated = h("p", { class: "muted small", testid: "incidents-updated" });
    slots.newButton = h("button", { type: "button", class: "btn btn-huge btn-primary btn-new", testid: "incident-new", on: { click: create } }, icon("card", "icon icon-big"), t("incidents.new"));
    fill(el, h("h1", { class: "view-title" }, t("incidents.title")), slots.flash, slots.newButton, slots.error, slots.list, slots.updated);
  }

  /** Refills only what changed, so the buttons stay the same elements across the 10 s refresh. */
  function render(rebuild = false) {
    if (!el) return;
    if (rebuild || !slots.list) build();
    slots.newButton.disabled = creating;
    keyed(slots.flash, flashText, () => (flashText ? notice(flashText, { kind: "info", testid: "incidents-flash", iconName: "check" }) : null));
    keyed(slots.error, errorText, () => (errorText ? notice(errorText, { testid: "incidents-error" }) : null));
    keyed(slots.list, incidents, () =>
      incidents === null
        ? h("p", { class: "loading", testid: "incidents-loading" }, t("app.loading"))
        : incidents.length === 0
          ? h("p", { class: "muted", testid: "incidents-empty" }, t("incidents.none"))
          : h("ul", { class: "incident-list", testid: "incident-list" }, incidents.map(row)),
    );
    slots.updated.hidden = !updatedAt;
    slots.updated.textContent = updatedAt ? t("incidents.updated", { time: clockTime(updatedAt) }) : "";
  }

  return {
    mount(root) {
      el = h("section", { class: "screen screen-incidents", testid: "screen-incidents" });
      root.append(el);
      render();
      load();
      poll = setInterval(() => load(true), 10000);
    },
    render: () => render(true),
    dispose() {
      disposed = true;
      clearInterval(poll);
      flashText = null;
    },
  };
}
