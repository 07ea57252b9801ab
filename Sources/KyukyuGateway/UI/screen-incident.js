// One incident, from consent to summary: loads it (GET), activates it while it still needs a card, follows its
// event stream (EventSource: `incident` carries the whole IncidentView, `reader` the reader state), and shows
// the view its phase calls for: consent → card (or lookup) → summary, or the closed notice. A lost stream shows
// "reconnecting" and, once back, re-reads the incident. Only the incident id is ever in the URL (#/incident/<id>).

import { api, describeError, ApiError } from "./api.js";
import { h, icon, setBanner, shortDateTime, confirmDialog, liveSeconds, fill } from "./dom.js";
import { t, tn, has, lang } from "./i18n.js";
import { consentView } from "./view-consent.js";
import { cardView } from "./view-card.js";
import { lookupView, emptyLookupForm } from "./view-lookup.js";
import { summaryView, categories } from "./view-summary.js";
import { transportView, emptyTransportState } from "./view-transport.js";
import { handoffStrip } from "./view-handoff.js";
import { emptyPickerState } from "./view-picker.js";

function closedView(state, actions) {
  const closure = state.incident.closure ?? "closed-by-crew";
  const key = has(`closed.${closure}.title`) ? closure : "closed-by-crew";
  const el = h(
    "div",
    { class: `view view-closed closed-${key}`, testid: "view-closed", dataset: { closure: key } },
    h("div", { class: "closed-box", role: "status" }, icon(key === "consent-refused" ? "info" : "check", "icon icon-huge"), h("h2", { class: "view-title", testid: "closed-title" }, t(`closed.${key}.title`)), h("p", { class: "closed-body", testid: "closed-body" }, t(`closed.${key}.body`, { hospital: state.incident.handoff?.hospitalName ?? state.incident.handoff?.hospital ?? "" }))),
    h("button", { type: "button", class: "btn btn-huge btn-primary", testid: "closed-to-list", on: { click: actions.back } }, t("closed.toList")),
  );
  return { el, update: () => {} };
}

function messageView(text, testid, actions, retry = null) {
  const el = h(
    "div",
    { class: "view view-message", testid },
    h("p", { class: "notice notice-error", role: "alert" }, icon("warning"), h("span", {}, text)),
    h("div", { class: "form-actions" }, retry ? h("button", { type: "button", class: "btn btn-big", testid: "incident-retry", on: { click: retry } }, t("common.retry")) : null, h("button", { type: "button", class: "btn btn-big btn-primary", testid: "incident-back-list", on: { click: actions.back } }, t("incident.back"))),
  );
  return { el, update: () => {} };
}

/** The incident screen. ctx: {navigate(hash), flash(text)}. */
export function incidentScreen(ctx, id) {
  const state = {
    id,
    incident: null,
    reader: null,
    notFound: false,
    loadError: null,
    mode: "auto",
    consentBusy: false,
    consentError: null,
    pin: { digits: "" },
    pinConfirm: false,
    pinBusy: false,
    pinError: null,
    lookupForm: emptyLookupForm(),
    lookupFrom: null,
    lookupPending: false,
    lookupAuthBefore: null,
    lookupBusy: false,
    lookupError: null,
    lookupInvalid: [],
    expanded: new Set(),
    details: {},
    pendingSince: {},
    readingSince: null,
    actionError: null,
    transport: emptyTransportState(),
    handoffBusy: false,
    handoffError: null,
    handoffPicking: false,
    picker: emptyPickerState(),
  };
  let needsKey = null;
  let el = null;
  let strip = null;
  let head = null;
  let body = null;
  let view = null;
  let viewKind = null;
  let stream = null;
  let streamLostAt = null;
  let reopenTimer = null;
  let reloadTimer = null;
  let activated = false;
  let disposed = false;

  const actions = {
    back: () => ctx.navigate(""),
    rerender: () => render(),
    toLookup: () => {
      state.mode = "lookup";
      state.lookupFrom = state.incident?.identification ?? null;
      render();
    },
    toTransport: () => {
      state.mode = "transport";
      render();
    },
    toSummary: () => {
      state.mode = "auto";
      render();
    },
    apply: (incident) => apply(incident),
    toCard: () => {
      state.mode = "auto";
      render();
    },
    toggleDetails: (name) => {
      if (state.expanded.has(name)) state.expanded.delete(name);
      else state.expanded.add(name);
      render();
    },
    ensureDetails: (category) => loadDetails(category),
    consent: async (basis) => {
      if (state.consentBusy) return;
      state.consentBusy = true;
      state.consentError = null;
      render();
      try {
        apply(await api.consent(id, basis));
      } catch (err) {
        state.consentError = describeError(err);
      } finally {
        state.consentBusy = false;
        render();
      }
    },
    submitPin: async (pin, confirmLastTry) => {
      if (state.pinBusy) return;
      state.pinBusy = true;
      state.pinError = null;
      render();
      try {
        apply(await api.cardPin(id, pin, confirmLastTry));
        state.pinConfirm = false;
      } catch (err) {
        const e = err instanceof ApiError ? err : null;
        if (e?.slug === "wrong-pin") state.pinError = tn("cardpin.wrong", e.problem.triesLeft ?? "?");
        else if (e?.slug === "pin-last-try") state.pinError = t("cardpin.needConfirm");
        else if (e?.slug === "pin-locked") state.pinError = t("cardpin.locked");
        else if (e?.slug === "validation") state.pinError = t("cardpin.format");
        else state.pinError = describeError(err);
        if (e?.slug === "wrong-pin" || e?.slug === "pin-last-try") state.pinConfirm = false;
        refresh();
      } finally {
        state.pin.digits = "";
        state.pinBusy = false;
        render();
      }
    },
    lookup: async (query) => {
      if (state.lookupBusy) return;
      state.lookupBusy = true;
      state.lookupError = null;
      state.lookupInvalid = [];
      render();
      // Pending from now on: events that arrive before the 202 already belong to this lookup.
      state.lookupAuthBefore = JSON.stringify(state.incident?.authentication ?? null);
      state.lookupPending = true;
      state.mode = "auto";
      try {
        const incident = await api.lookup(id, query);
        if (incident) apply(incident);
      } catch (err) {
        state.lookupPending = false;
        state.mode = "lookup";
        state.lookupError = describeError(err);
        state.lookupInvalid = err instanceof ApiError && Array.isArray(err.problem.invalidParams) ? err.problem.invalidParams : [];
      } finally {
        state.lookupBusy = false;
        render();
      }
    },
    /** Sends the document to `code` (POST …/handoff); another hospital without a divert is confirmed first. */
    sendHandoff: async (code, { confirmChange = false } = {}) => {
      if (state.handoffBusy) return false;
      if (confirmChange) {
        const name = state.transport.hospitals?.find((x) => x.code === code)?.name ?? code;
        const yes = await confirmDialog(t("handoff.change.confirm", { hospital: name }), { yes: t("handoff.send"), testid: "handoff-change-confirm" });
        if (!yes || disposed) return false;
      }
      state.handoffBusy = true;
      state.handoffError = null;
      render();
      try {
        apply(await api.sendHandoff(id, code));
        state.handoffPicking = false;
        return true;
      } catch (err) {
        state.handoffError = describeError(err);
        return false;
      } finally {
        state.handoffBusy = false;
        render();
      }
    },
    pickAnother: () => {
      state.handoffPicking = !state.handoffPicking;
      state.handoffError = null;
      loadHospitals();
      render();
    },
    loadHospitals: () => loadHospitals(),
    loadRanking: () => loadRanking(),
    /** One placement request to every ticked hospital (POST …/placements); the answers follow on the stream. */
    sendPlacement: async (codes) => {
      const pk = state.picker;
      if (pk.busy) return;
      pk.busy = true;
      pk.sendError = null;
      render();
      try {
        apply(await api.sendPlacement(id, codes));
        pk.selected = [];
      } catch (err) {
        pk.sendError = describeError(err);
      } finally {
        pk.busy = false;
        render();
      }
    },
    /** Withdraws the open placement request (POST …/placements/cancel). */
    cancelPlacement: async () => {
      const pk = state.picker;
      if (pk.busy) return;
      pk.busy = true;
      pk.sendError = null;
      render();
      try {
        apply(await api.cancelPlacement(id));
      } catch (err) {
        pk.sendError = describeError(err);
      } finally {
        pk.busy = false;
        render();
      }
    },
    close: async () => {
      const yes = await confirmDialog(t("incident.close.confirm"), { yes: t("incident.close.yes"), danger: true, testid: "close-confirm" });
      if (!yes || disposed) return;
      try {
        await api.close(id);
        ctx.flash(t("incidents.closedNote"));
        ctx.navigate("");
      } catch (err) {
        state.actionError = describeError(err);
        render();
      }
    },
  };

  /**
   * Loads one category's raw records for the details tap (GET …/details/<category>), again when the category
   * changed since (a late arrival). Kept in memory only, dropped with the screen.
   */
  async function loadDetails(category) {
    const info = state.incident?.categories?.[category];
    const key = `${info?.status}:${info?.count ?? ""}`;
    const current = state.details[category];
    if (current && current.key === key && current.status !== "error") return;
    state.details[category] = { key, status: "loading", records: null, error: null };
    try {
      const data = await api.details(id, category);
      state.details[category] = { key, status: "loaded", records: data?.records ?? [], error: null };
    } catch (err) {
      state.details[category] = { key, status: "error", records: null, error: describeError(err) };
    }
    if (!disposed) render();
  }

  /** The receiving hospitals (GET /api/v1/hospitals), once per screen: the transport view and the strip share them. */
  function loadHospitals({ retry = true } = {}) {
    const tr = state.transport;
    if (tr.hospitals || tr.hospitalsLoading || (!retry && tr.hospitalsError)) return;
    tr.hospitalsLoading = true;
    api
      .hospitals()
      .then((answer) => {
        tr.hospitals = answer?.hospitals ?? [];
        tr.hospitalsError = null;
      })
      .catch((err) => {
        tr.hospitalsError = describeError(err);
      })
      .finally(() => {
        tr.hospitalsLoading = false;
        if (!disposed) render();
      });
  }

  /** The hospitals ranked for this patient (GET …/hospitals); the stream's `hospitals` events keep it current. */
  function loadRanking() {
    const pk = state.picker;
    if (pk.loading) return;
    pk.loading = true;
    api
      .rankHospitals(id)
      .then((ranking) => {
        pk.ranking = ranking;
        pk.receivedAt = Date.now();
        pk.error = null;
      })
      .catch((err) => {
        pk.error = describeError(err);
      })
      .finally(() => {
        pk.loading = false;
        if (!disposed) render();
      });
  }

  function apply(incident) {
    if (!incident || incident.id !== id) return;
    if (state.incident && typeof incident.version === "number" && incident.version < state.incident.version) return;
    // What the patient needs comes from the complaint, the dialysis flag and the age: a change re-ranks.
    const key = JSON.stringify([incident.observations?.chiefComplaint ?? null, incident.summary?.dialysis ?? null, incident.summary?.patient?.age ?? null]);
    if (needsKey !== null && key !== needsKey && state.picker.ranking) loadRanking();
    needsKey = key;
    state.incident = incident;
    state.notFound = false;
    state.loadError = null;
    const now = Date.now();
    const fetching = incident.phase === "fetching" || incident.phase === "retry-pending" || incident.phase === "summary";
    for (const c of categories) {
      const status = incident.categories?.[c]?.status;
      if (fetching && (status === "pending" || status === "retrying")) state.pendingSince[c] ??= now;
      else if (!fetching || (status !== "pending" && status !== "retrying")) delete state.pendingSince[c];
    }
    // A lookup that found nobody (or was refused) goes back to the form, values kept, with the reason in words.
    const auth = incident.authentication ?? null;
    if (state.lookupPending && (auth?.status === "failed" || auth?.status === "refused") && JSON.stringify(auth) !== state.lookupAuthBefore) {
      state.lookupPending = false;
      state.mode = "lookup";
      state.lookupFrom = null;
      state.lookupError = auth.reason || t(`auth.${auth.status}`);
    }
    if (state.lookupPending && auth?.status === "ok") {
      state.lookupPending = false;
      state.lookupForm = emptyLookupForm();
    }
    // A card read while the lookup form is open wins: the summary follows by itself, as for any card holder.
    const byCard = incident.identification != null && !String(incident.identification).startsWith("lookup-");
    if (state.mode === "lookup" && byCard && incident.identification !== state.lookupFrom) state.mode = "auto";
    if (incident.card?.state === "reading") state.readingSince ??= now;
    else state.readingSince = null;
    if (incident.card?.state !== "pin-required") {
      state.pinError = null;
      state.pinConfirm = false;
    }
    if (incident.phase === "closed") {
      closeStream();
      if (incident.closure === "closed-by-crew") {
        ctx.flash(t("incidents.closedNote"));
        ctx.navigate("");
        return;
      }
    } else if (!activated && incident.identification == null && incident.active !== true) {
      activated = true;
      api.activate(id).catch(() => {});
    }
    render();
  }

  async function refresh() {
    // Publications missed while the stream was down: the ranking again.
    if (state.picker.ranking) loadRanking();
    try {
      apply(await api.getIncident(id, true));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        state.notFound = true;
        closeStream();
        render();
      }
    }
  }

  async function load() {
    if (reloadTimer) clearTimeout(reloadTimer);
    reloadTimer = null;
    try {
      apply(await api.getIncident(id));
    } catch (err) {
      if (disposed) return;
      if (err instanceof ApiError && err.status === 404) state.notFound = true;
      else if (err instanceof ApiError && (err.status === 401 || err.status === 423)) return;
      else {
        state.loadError = describeError(err);
        reloadTimer = setTimeout(load, 3000);
      }
      render();
      return;
    }
    if (disposed || state.incident?.phase === "closed") return;
    openStream();
    api
      .reader()
      .then((reader) => {
        state.reader = reader;
        render();
      })
      .catch(() => {});
  }

  function streamBanner() {
    return h("div", { class: "banner banner-warn", role: "status", testid: "sse-banner" }, icon("warning"), h("strong", {}, liveSeconds("sse.reconnecting", { sinceMs: streamLostAt ?? Date.now() })));
  }

  function openStream() {
    closeStream();
    const es = new EventSource(api.eventsURL(id));
    stream = es;
    es.addEventListener("incident", (e) => {
      try {
        apply(JSON.parse(e.data));
      } catch {
        // A malformed event is dropped; the next one (or the GET on reconnect) brings the state back.
      }
    });
    es.addEventListener("hospitals", (e) => {
      try {
        state.picker.ranking = JSON.parse(e.data);
        state.picker.receivedAt = Date.now();
        state.picker.error = null;
        render();
      } catch {
        // As below.
      }
    });
    es.addEventListener("reader", (e) => {
      try {
        state.reader = JSON.parse(e.data);
        render();
      } catch {
        // As above.
      }
    });
    es.addEventListener("open", () => {
      if (streamLostAt !== null) {
        streamLostAt = null;
        setBanner("sse", null);
        refresh();
      }
    });
    es.addEventListener("error", () => {
      if (disposed || stream !== es) return;
      if (state.incident?.phase === "closed") {
        closeStream();
        return;
      }
      streamLostAt ??= Date.now();
      setBanner("sse", streamBanner());
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error or the gateway gone): check the incident, then open a new stream.
        closeStream();
        reopenTimer = setTimeout(reopen, 2000);
      }
    });
  }

  async function reopen() {
    reopenTimer = null;
    if (disposed) return;
    try {
      apply(await api.getIncident(id, true));
      if (!disposed && state.incident?.phase !== "closed") openStream();
    } catch (err) {
      if (disposed) return;
      if (err instanceof ApiError && err.status === 404) {
        state.notFound = true;
        setBanner("sse", null);
        render();
      } else if (!(err instanceof ApiError && (err.status === 401 || err.status === 423))) {
        reopenTimer = setTimeout(reopen, 3000);
      }
    }
  }

  function closeStream() {
    if (stream) stream.close();
    stream = null;
    if (reopenTimer) clearTimeout(reopenTimer);
    reopenTimer = null;
    streamLostAt = null;
    setBanner("sse", null);
  }

  function kindNow() {
    if (state.notFound) return "notfound";
    if (!state.incident) return state.loadError ? "error" : "loading";
    const incident = state.incident;
    if (incident.phase === "closed") return "closed";
    if (incident.consent == null) return "consent";
    if (state.mode === "lookup") return "lookup";
    // A refusal still needs the patient identified so onshi can record the attempt; then the incident closes.
    if (incident.consent === "refused") return "card";
    // The transport record, until a token asks for its PIN (the card view shows the pad; the record stays a tap away).
    if (state.mode === "transport" && incident.card?.state !== "pin-required") return "transport";
    if (incident.identification == null && !state.lookupPending) return "card";
    return "summary";
  }

  /** The bar above every view: built once per language, then updated in place (stable elements). */
  const bar = {};

  function buildHeader() {
    bar.phase = h("span", { class: "phase", testid: "incident-phase" });
    bar.consent = h("span", { class: "consent-basis", testid: "incident-consent" });
    bar.dispatch = h("span", { class: "dispatch", testid: "incident-dispatch" });
    bar.close = h("button", { type: "button", class: "btn btn-big btn-danger-outline", testid: "incident-close", on: { click: actions.close } }, t("incident.close"));
    bar.lang = lang();
    fill(
      head,
      h("button", { type: "button", class: "btn btn-big", testid: "incident-back", on: { click: actions.back } }, t("incident.back")),
      h("div", { class: "incident-meta", testid: "incident-meta" }, bar.phase, bar.consent, bar.dispatch),
      bar.close,
    );
  }

  function updateHeader() {
    if (bar.lang !== lang()) buildHeader();
    const incident = state.incident;
    const dispatch = incident?.dispatch ?? null;
    bar.phase.hidden = !incident;
    bar.phase.dataset.phase = incident?.phase ?? "";
    bar.phase.textContent = incident ? t(`phase.${incident.phase}`) : "";
    bar.consent.hidden = !incident?.consent;
    bar.consent.dataset.basis = incident?.consent ?? "";
    bar.consent.textContent = incident?.consent ? t("consent.recorded", { basis: t(`consent.basis.${incident.consent}`) }) : "";
    bar.dispatch.hidden = !dispatch;
    bar.dispatch.textContent = dispatch
      ? [`${t("incident.received")} ${shortDateTime(dispatch.receivedAt)}`, dispatch.location, dispatch.note].filter(Boolean).join(" ・ ")
      : "";
    bar.close.hidden = !incident || incident.phase === "closed";
  }

  function render(force = false) {
    if (disposed || !el) return;
    updateHeader();
    if (state.incident?.handoff && state.incident.phase !== "closed") loadHospitals({ retry: false });
    strip.update();
    const kind = kindNow();
    el.dataset.view = kind;
    if (!force && kind === viewKind && view) {
      view.update();
      return;
    }
    viewKind = kind;
    switch (kind) {
      case "consent":
        view = consentView(state, actions);
        break;
      case "card":
        view = cardView(state, actions);
        break;
      case "lookup":
        view = lookupView(state, actions);
        break;
      case "summary":
        view = summaryView(state, actions);
        break;
      case "transport":
        view = transportView(state, actions);
        break;
      case "closed":
        view = closedView(state, actions);
        break;
      case "notfound":
        view = messageView(t("incident.notFound"), "incident-not-found", actions);
        break;
      case "error":
        view = messageView(state.loadError, "incident-load-error", actions, () => load());
        break;
      default:
        view = { el: h("p", { class: "loading", testid: "incident-loading" }, t("app.loading")), update: () => {} };
    }
    fill(body, view.el);
    window.scrollTo(0, 0);
  }

  return {
    mount(root) {
      el = h("section", { class: "screen screen-incident", testid: "screen-incident", dataset: { incidentId: id } });
      head = h("div", { class: "incident-head" });
      strip = handoffStrip(state, actions);
      body = h("div", { class: "incident-body" });
      el.append(head, strip.el, body);
      root.append(el);
      render();
      load();
    },
    render: () => render(true),
    dispose() {
      disposed = true;
      closeStream();
      if (reloadTimer) clearTimeout(reloadTimer);
    },
  };
}
