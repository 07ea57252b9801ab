// The crew's transport record, one tap from the summary: priority (緊急度), chief complaint, trauma (mechanism and
// injured regions), onset or last known well, timed vital-sign sets entered on a big number pad (JCS and GCS as
// buttons), treatments (timed by the tap), ETA and the receiving hospital. Taps, not typing: the complaint note
// is the only free text. Every change goes straight to the gateway (PATCH …/observations, POST …/vitals,
// POST …/treatments, DELETE …/{index}); what is shown is the gateway's answer, so a reload shows the same. A value
// the gateway refuses is shown in words next to its field, never silently dropped.

import { api, describeError, ApiError } from "./api.js";
import { h, icon, clockTime, keyed, confirmDialog } from "./dom.js";
import { t, has } from "./i18n.js";
import { hospitalPicker } from "./view-picker.js";

export const complaints = ["chest-pain", "dyspnoea", "altered-consciousness", "stroke-symptoms", "cardiac-arrest", "seizure", "abdominal-pain", "trauma", "burn", "fever", "poisoning", "bleeding", "other"];
export const mechanisms = ["traffic-occupant", "pedestrian", "motorcycle", "fall-from-height", "fall-same-level", "penetrating", "blunt", "burn", "drowning", "other"];
export const regions = ["head", "face", "neck", "chest", "abdomen", "pelvis", "spine", "upper-limb", "lower-limb", "skin"];
export const treatmentKinds = ["oxygen", "airway", "cpr", "defibrillation", "intravenous-access", "adrenaline", "glucose", "haemostasis", "spinal-immobilisation", "splint", "warming"];
export const jcsLevels = [0, 1, 2, 3, 10, 20, 30, 100, 200, 300];
const priorities = ["red", "yellow", "green"];

/** The number fields of the vitals pad, in the order the pad walks them; `max` digits, `decimal` for °C. */
export const vitalFields = [
  { name: "heartRate", max: 3, min: 0, top: 300 },
  { name: "systolic", max: 3, min: 0, top: 300 },
  { name: "diastolic", max: 3, min: 0, top: 200 },
  { name: "respiratoryRate", max: 2, min: 0, top: 80 },
  { name: "spo2", max: 3, min: 0, top: 100 },
  { name: "temperature", max: 4, min: 25, top: 45, decimal: true },
  { name: "bloodGlucose", max: 4, min: 10, top: 1500 },
];

function jcsLabel(level) {
  if (level === 0) return "0";
  if (level < 10) return `I-${level}`;
  if (level < 100) return `II-${level}`;
  return `III-${level}`;
}

/** An empty draft of the vitals pad. */
export function emptyVitalsDraft() {
  return { field: "heartRate", values: {}, jcs: null, gcs: { eye: null, verbal: null, motor: null } };
}

/** The transport state kept by the incident screen (so a re-render keeps the pad's digits). */
export function emptyTransportState() {
  return { draft: emptyVitalsDraft(), eta: null, note: null, errors: {}, busy: false, hospitals: null, hospitalsError: null };
}

function lstr(key, fallback) {
  return has(key) ? t(key) : fallback;
}

/** What the refusal says, for the field it names: our own words for a range we know, else the gateway's. */
function refusal(err) {
  const param = err instanceof ApiError && Array.isArray(err.problem.invalidParams) ? err.problem.invalidParams[0] : null;
  if (!param) return { field: null, text: describeError(err) };
  const field = String(param.name);
  const spec = vitalFields.find((f) => f.name === field);
  const text = spec ? t("tr.range", { field: t(`tr.vital.${field}`), min: spec.min, max: spec.top }) : t("tr.refused", { field: lstr(`tr.field.${field}`, field) });
  return { field, text, reason: String(param.reason ?? "") };
}

/** The trend of `key` from the set before: "up", "down" or "same" (null when either lacks it). */
function trend(set, before, key) {
  const a = before?.[key];
  const b = set?.[key];
  if (typeof a !== "number" || typeof b !== "number") return null;
  return b > a ? "up" : b < a ? "down" : "same";
}

const arrows = { up: "↑", down: "↓", same: "→" };

/**
 * The transport view over the incident screen's shared `state` (`state.transport`, `state.incident`) and
 * `actions` (`toSummary`). Built once; parts refill when what they show changed.
 */
export function transportView(state, actions) {
  const tr = state.transport;
  const id = state.incident.id;
  const slots = {};
  const section = (name, title, ...content) => {
    slots[name] = h("div", { class: "slot" });
    slots[`${name}Error`] = h("div", { class: "slot field-error-slot" });
    return h("section", { class: `section tr-section tr-${name}`, testid: `tr-section-${name}` }, h("div", { class: "section-head" }, h("h2", { class: "section-title" }, title)), ...content, slots[name], slots[`${name}Error`]);
  };

  function observations() {
    return state.incident.observations ?? { vitals: [], treatments: [] };
  }

  async function send(field, call) {
    if (tr.busy) return false;
    tr.busy = true;
    delete tr.errors[field];
    update();
    try {
      const incident = await call();
      actions.apply(incident);
      return true;
    } catch (err) {
      const r = refusal(err);
      tr.errors[field] = r;
      return false;
    } finally {
      tr.busy = false;
      update();
    }
  }

  const patch = (field, body) => send(field, () => api.patchObservations(id, body));

  // ---- the parts ----------------------------------------------------------------------------------------
  function priorityButtons(obs) {
    return h(
      "div",
      { class: "tr-buttons tr-priority", role: "group" },
      priorities.map((p) =>
        h("button", { type: "button", class: `btn btn-big tr-toggle priority-${p}`, testid: `priority-${p}`, "aria-pressed": obs.priority === p ? "true" : "false", on: { click: () => patch("priority", { priority: obs.priority === p ? null : p }) } }, t(`tr.priority.${p}`)),
      ),
    );
  }

  function complaintButtons(obs) {
    return [
      h(
        "div",
        { class: "tr-buttons tr-grid" },
        complaints.map((c) =>
          h("button", { type: "button", class: "btn btn-big tr-toggle", testid: `complaint-${c}`, "aria-pressed": obs.chiefComplaint === c ? "true" : "false", on: { click: () => patch("chiefComplaint", { chiefComplaint: obs.chiefComplaint === c ? null : c }) } }, t(`tr.complaint.${c}`)),
        ),
      ),
      noteField(obs),
    ];
  }

  function noteField(obs) {
    const value = tr.note ?? obs.complaintNote ?? "";
    const input = h("input", { type: "text", class: "input tr-note", testid: "complaint-note", maxlength: "200", value, "aria-label": t("tr.note"), placeholder: t("tr.note.placeholder"), on: { input: (e) => (tr.note = e.target.value) } });
    const save = h("button", { type: "button", class: "btn btn-big", testid: "complaint-note-save", on: { click: async () => { if (await patch("complaintNote", { complaintNote: tr.note ?? value })) tr.note = null; } } }, t("tr.note.save"));
    return h("div", { class: "tr-note-row" }, h("label", { class: "tr-label" }, t("tr.note")), input, save);
  }

  function traumaButtons(obs) {
    const trauma = obs.trauma ?? { mechanism: null, injuries: [] };
    return [
      h("h3", { class: "tr-sub" }, t("tr.mechanism")),
      h(
        "div",
        { class: "tr-buttons tr-grid" },
        mechanisms.map((m) =>
          h("button", { type: "button", class: "btn btn-big tr-toggle", testid: `mechanism-${m}`, "aria-pressed": trauma.mechanism === m ? "true" : "false", on: { click: () => patch("trauma", { trauma: { mechanism: trauma.mechanism === m ? null : m } }) } }, t(`tr.mechanism.${m}`)),
        ),
      ),
      h("h3", { class: "tr-sub" }, t("tr.injuries")),
      h(
        "div",
        { class: "tr-buttons tr-grid" },
        regions.map((r) => {
          const on = (trauma.injuries ?? []).includes(r);
          const next = on ? trauma.injuries.filter((x) => x !== r) : [...(trauma.injuries ?? []), r];
          return h("button", { type: "button", class: "btn btn-big tr-toggle", testid: `injury-${r}`, "aria-pressed": on ? "true" : "false", on: { click: () => patch("trauma", { trauma: { injuries: next } }) } }, t(`tr.region.${r}`));
        }),
      ),
    ];
  }

  function onsetControls(obs) {
    const onset = obs.onset ?? null;
    const kind = onset?.kind ?? "onset";
    const at = onset ? new Date(onset.at) : null;
    const setAt = (date, k = kind) => patch("onset", { onset: { kind: k, at: date.toISOString() } });
    const minus = (minutes) => setAt(new Date((at ?? new Date()).getTime() - minutes * 60000));
    const ago = at ? Math.max(0, Math.round((Date.now() - at.getTime()) / 60000)) : null;
    return [
      h(
        "div",
        { class: "tr-buttons" },
        ["onset", "last-known-well"].map((k) =>
          h("button", { type: "button", class: "btn btn-big tr-toggle", testid: `onset-kind-${k}`, "aria-pressed": onset && kind === k ? "true" : "false", on: { click: () => setAt(at ?? new Date(), k) } }, t(`tr.onset.${k}`)),
        ),
      ),
      h("p", { class: "tr-value", testid: "onset-value", dataset: { set: onset ? "yes" : "no" } }, onset ? t("tr.onset.value", { kind: t(`tr.onset.${kind}`), time: clockTime(at), ago }) : t("tr.unset")),
      h(
        "div",
        { class: "tr-buttons" },
        h("button", { type: "button", class: "btn btn-big btn-primary", testid: "onset-now", on: { click: () => setAt(new Date()) } }, t("tr.now")),
        [5, 15, 30, 60].map((m) => h("button", { type: "button", class: "btn btn-big", testid: `onset-minus-${m}`, on: { click: () => minus(m) } }, t("tr.minus", { m }))),
        onset ? h("button", { type: "button", class: "btn btn-big", testid: "onset-clear", on: { click: () => patch("onset", { onset: null }) } }, t("tr.clear")) : null,
      ),
    ];
  }

  // The vitals pad: one field at a time, big digits; JCS and GCS as buttons.
  function padPress(key) {
    const d = tr.draft;
    const spec = vitalFields.find((f) => f.name === d.field);
    const current = d.values[d.field] ?? "";
    if (key === "del") d.values[d.field] = current.slice(0, -1);
    else if (key === ".") {
      if (spec.decimal && !current.includes(".") && current.length > 0) d.values[d.field] = current + ".";
    } else if (current.replace(".", "").length < spec.max && !(current.includes(".") && current.split(".")[1].length >= 1)) d.values[d.field] = current + key;
    if (d.values[d.field] === "") delete d.values[d.field];
    delete tr.errors.vitals;
    update();
  }

  function padNext() {
    const i = vitalFields.findIndex((f) => f.name === tr.draft.field);
    tr.draft.field = vitalFields[(i + 1) % vitalFields.length].name;
    update();
  }

  async function saveVitals() {
    const d = tr.draft;
    const body = {};
    for (const f of vitalFields) if (d.values[f.name] !== undefined) body[f.name] = Number(d.values[f.name]);
    if (d.jcs !== null) body.jcs = d.jcs;
    const g = d.gcs;
    if (g.eye !== null || g.verbal !== null || g.motor !== null) {
      if (g.eye === null || g.verbal === null || g.motor === null) {
        tr.errors.vitals = { field: "gcs", text: t("tr.gcs.incomplete") };
        update();
        return;
      }
      body.gcs = { ...g };
    }
    if (Object.keys(body).length === 0) {
      tr.errors.vitals = { field: "vitals", text: t("tr.vitals.empty") };
      update();
      return;
    }
    if (await send("vitals", () => api.addVitals(id, body))) tr.draft = emptyVitalsDraft();
    else if (tr.errors.vitals?.field && vitalFields.some((f) => f.name === tr.errors.vitals.field)) tr.draft.field = tr.errors.vitals.field;
    update();
  }

  function vitalsPad() {
    const d = tr.draft;
    const err = tr.errors.vitals;
    const fields = h(
      "div",
      { class: "vpad-fields" },
      vitalFields.map((f) =>
        h(
          "button",
          { type: "button", class: `btn vpad-field ${d.field === f.name ? "vpad-field-active" : ""} ${err?.field === f.name ? "vpad-field-bad" : ""}`, testid: `vital-field-${f.name}`, "aria-pressed": d.field === f.name ? "true" : "false", on: { click: () => { d.field = f.name; update(); } } },
          h("span", { class: "vpad-field-name" }, t(`tr.vital.${f.name}`)),
          h("span", { class: "vpad-field-value", testid: `vital-value-${f.name}` }, d.values[f.name] ?? "—"),
          h("span", { class: "vpad-field-unit" }, t(`tr.unit.${f.name}`)),
        ),
      ),
    );
    const key = (k, label = k, extra = "") => h("button", { type: "button", class: `btn vpad-key ${extra}`, testid: `vpad-key-${k === "." ? "dot" : k}`, on: { click: () => padPress(k) } }, label);
    const spec = vitalFields.find((f) => f.name === d.field);
    const keys = h(
      "div",
      { class: "vpad-keys" },
      ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map((k) => key(k)),
      spec.decimal ? key(".", ".") : key("del", t("pin.delete"), "vpad-del"),
      key("0"),
      h("button", { type: "button", class: "btn vpad-key vpad-next", testid: "vpad-next", on: { click: padNext } }, t("tr.next")),
      spec.decimal ? key("del", t("pin.delete"), "vpad-del") : null,
    );
    const jcs = h(
      "div",
      { class: "tr-buttons tr-jcs", role: "group", "aria-label": "JCS" },
      h("span", { class: "tr-label" }, "JCS"),
      jcsLevels.map((level) => h("button", { type: "button", class: "btn btn-big tr-toggle", testid: `jcs-${level}`, "aria-pressed": d.jcs === level ? "true" : "false", on: { click: () => { d.jcs = d.jcs === level ? null : level; update(); } } }, jcsLabel(level))),
    );
    const gcsRow = (part, top) =>
      h(
        "div",
        { class: "tr-buttons tr-gcs", role: "group" },
        h("span", { class: "tr-label" }, `GCS ${part[0].toUpperCase()}`),
        Array.from({ length: top }, (_, i) => i + 1).map((n) => h("button", { type: "button", class: "btn tr-toggle tr-gcs-key", testid: `gcs-${part}-${n}`, "aria-pressed": d.gcs[part] === n ? "true" : "false", on: { click: () => { d.gcs[part] = d.gcs[part] === n ? null : n; update(); } } }, `${part[0].toUpperCase()}${n}`)),
      );
    return h(
      "div",
      { class: "vpad", testid: "vitals-pad" },
      h("div", { class: "vpad-top" }, fields, keys),
      jcs,
      gcsRow("eye", 4),
      gcsRow("verbal", 5),
      gcsRow("motor", 6),
      err ? h("p", { class: "field-error", role: "alert", testid: "vital-error", dataset: { field: err.field ?? "" } }, icon("warning", "icon icon-small"), err.text) : null,
      h(
        "div",
        { class: "tr-buttons" },
        h("button", { type: "button", class: "btn btn-big", testid: "vitals-clear", on: { click: () => { tr.draft = emptyVitalsDraft(); delete tr.errors.vitals; update(); } } }, t("tr.vitals.clear")),
        h("button", { type: "button", class: "btn btn-huge btn-primary", testid: "vitals-save", disabled: tr.busy, on: { click: saveVitals } }, t("tr.vitals.save")),
      ),
    );
  }

  function vitalsList(obs) {
    const sets = [...(obs.vitals ?? [])].sort((a, b) => Date.parse(b.takenAt) - Date.parse(a.takenAt) || b.index - a.index);
    if (!sets.length) return h("p", { class: "muted", testid: "vitals-none" }, t("tr.vitals.none"));
    const cell = (set, before, key, text) => {
      if (set[key] === undefined || set[key] === null) return null;
      const tr_ = trend(set, before, key);
      return h("span", { class: "vrow-cell", testid: `vrow-${key}`, dataset: { trend: tr_ ?? "" } }, `${t(`tr.short.${key}`)} ${text}`, tr_ ? h("span", { class: `trend trend-${tr_}`, "aria-label": t(`tr.trend.${tr_}`) }, arrows[tr_]) : null);
    };
    return h(
      "ol",
      { class: "rows vitals-list", testid: "vitals-list" },
      sets.map((set, i) => {
        const before = sets[i + 1] ?? null;
        const bp = set.systolic !== undefined || set.diastolic !== undefined ? `${set.systolic ?? "—"}/${set.diastolic ?? "—"}` : null;
        return h(
          "li",
          { class: "row vitals-row", testid: "vitals-row", dataset: { index: String(set.index) } },
          h("span", { class: "row-date vrow-time", testid: "vrow-time" }, clockTime(set.takenAt)),
          h(
            "span",
            { class: "vrow-values" },
            set.jcsLabel !== undefined ? h("span", { class: "vrow-cell", testid: "vrow-jcs" }, `JCS ${set.jcsLabel}`) : null,
            set.gcs ? h("span", { class: "vrow-cell", testid: "vrow-gcs" }, `GCS E${set.gcs.eye}V${set.gcs.verbal}M${set.gcs.motor}=${set.gcs.total}`) : null,
            cell(set, before, "heartRate", set.heartRate),
            bp ? h("span", { class: "vrow-cell", testid: "vrow-bp", dataset: { trend: trend(set, before, "systolic") ?? "" } }, `${t("tr.short.bp")} ${bp}`, trend(set, before, "systolic") ? h("span", { class: `trend trend-${trend(set, before, "systolic")}` }, arrows[trend(set, before, "systolic")]) : null) : null,
            cell(set, before, "respiratoryRate", set.respiratoryRate),
            cell(set, before, "spo2", `${set.spo2}%`),
            cell(set, before, "temperature", `${set.temperature}℃`),
            cell(set, before, "bloodGlucose", set.bloodGlucose),
          ),
          h("button", { type: "button", class: "btn btn-small-touch", testid: `vitals-delete-${set.index}`, on: { click: () => removeEntry("vitals", set.index) } }, t("tr.delete")),
        );
      }),
    );
  }

  async function removeEntry(kind, index) {
    const yes = await confirmDialog(t(`tr.${kind}.deleteConfirm`), { yes: t("tr.delete"), danger: true, testid: "tr-delete-confirm" });
    if (!yes) return;
    await send(kind, () => (kind === "vitals" ? api.deleteVitals(id, index) : api.deleteTreatment(id, index)));
  }

  function treatmentButtons(obs) {
    const list = [...(obs.treatments ?? [])].sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || b.index - a.index);
    return [
      h(
        "div",
        { class: "tr-buttons tr-grid" },
        treatmentKinds.map((k) => h("button", { type: "button", class: "btn btn-big", testid: `treatment-${k}`, on: { click: () => send("treatments", () => api.addTreatment(id, { kind: k })) } }, t(`tr.treatment.${k}`))),
      ),
      list.length
        ? h(
            "ol",
            { class: "rows", testid: "treatment-list" },
            list.map((x) =>
              h(
                "li",
                { class: "row treatment-row", testid: "treatment-row", dataset: { kind: x.kind, index: String(x.index) } },
                h("span", { class: "row-date" }, clockTime(x.at)),
                h("span", { class: "row-name" }, t(`tr.treatment.${x.kind}`)),
                h("button", { type: "button", class: "btn btn-small-touch", testid: `treatment-delete-${x.index}`, on: { click: () => removeEntry("treatments", x.index) } }, t("tr.delete")),
              ),
            ),
          )
        : h("p", { class: "muted", testid: "treatments-none" }, t("tr.treatments.none")),
    ];
  }

  function etaControls(obs) {
    const value = tr.eta ?? obs.etaMinutes ?? null;
    const step = (n) => {
      tr.eta = Math.max(0, (tr.eta ?? obs.etaMinutes ?? 0) + n);
      update();
    };
    return [
      h(
        "div",
        { class: "tr-buttons tr-eta" },
        h("button", { type: "button", class: "btn btn-big", testid: "eta-minus-5", on: { click: () => step(-5) } }, "−5"),
        h("button", { type: "button", class: "btn btn-big", testid: "eta-minus", on: { click: () => step(-1) } }, "−1"),
        h("span", { class: `tr-eta-value ${tr.eta !== null ? "tr-draft" : ""}`, testid: "eta-value", dataset: { minutes: value === null ? "" : String(value) } }, value === null ? t("tr.unset") : t("tr.eta.minutes", { n: value })),
        h("button", { type: "button", class: "btn btn-big", testid: "eta-plus", on: { click: () => step(1) } }, "+1"),
        h("button", { type: "button", class: "btn btn-big", testid: "eta-plus-5", on: { click: () => step(5) } }, "+5"),
        h("button", { type: "button", class: "btn btn-big btn-primary", testid: "eta-save", disabled: tr.eta === null, on: { click: async () => { if (await patch("etaMinutes", { etaMinutes: tr.eta })) tr.eta = null; update(); } } }, t("tr.eta.save")),
      ),
      obs.etaRecordedAt ? h("p", { class: "muted", testid: "eta-recorded" }, t("tr.eta.asOf", { time: clockTime(obs.etaRecordedAt), n: obs.etaMinutes })) : null,
    ];
  }

  // The hospital: picked by one tap (recorded like any observation), then sent by one tap on the big button. Once
  // sent, the strip above every view shows where it stands and changes the hospital (after a divert, or with a
  // confirmation): a tap here no longer re-picks, so the updates never name another hospital than the one they go to.
  function hospitalButtons(obs) {
    if (tr.hospitalsError) return h("p", { class: "field-error", role: "alert", testid: "hospitals-error" }, tr.hospitalsError);
    if (!tr.hospitals) return h("p", { class: "muted", testid: "hospitals-loading" }, t("app.loading"));
    const handoff = state.incident.handoff ?? null;
    const picked = tr.hospitals.find((x) => x.code === obs.hospital) ?? null;
    const buttons = h(
      "div",
      { class: "tr-buttons tr-hospitals" },
      tr.hospitals.map((x) =>
        h(
          "button",
          { type: "button", class: "btn btn-big tr-toggle tr-hospital", testid: `hospital-${x.code}`, "aria-pressed": obs.hospital === x.code ? "true" : "false", disabled: handoff !== null, on: { click: () => patch("hospital", { hospital: obs.hospital === x.code ? null : x.code }) } },
          h("span", { class: "row-name" }, x.name),
          h("span", { class: "code" }, x.code),
        ),
      ),
    );
    if (handoff) return [buttons, h("p", { class: "muted", testid: "handoff-sent-note" }, t("handoff.sentNote", { hospital: handoff.hospitalName ?? handoff.hospital }))];
    const send = h(
      "button",
      { type: "button", class: "btn btn-huge btn-primary handoff-send", testid: "handoff-send", disabled: !picked || state.handoffBusy || tr.busy, on: { click: () => picked && actions.sendHandoff(picked.code) } },
      h("span", {}, picked ? t("handoff.sendTo", { hospital: picked.name }) : t("handoff.send")),
    );
    return [
      buttons,
      send,
      picked ? null : h("p", { class: "muted", testid: "handoff-pick-first" }, t("handoff.pickFirst")),
      state.handoffError ? h("p", { class: "field-error", role: "alert", testid: "handoff-error" }, icon("warning", "icon icon-small"), state.handoffError) : null,
    ];
  }

  // ---- the frame ---------------------------------------------------------------------------------------
  const back = h("button", { type: "button", class: "btn btn-big", testid: "transport-back", on: { click: actions.toSummary } }, t("tr.back"));
  const el = h(
    "div",
    { class: "view view-transport", testid: "view-transport" },
    h("div", { class: "tr-head" }, back, h("h2", { class: "view-title" }, t("tr.title"))),
    section("priority", t("tr.priority")),
    section("chiefComplaint", t("tr.complaint")),
    section("vitals", t("tr.vitals")),
    section("treatments", t("tr.treatments")),
    section("onset", t("tr.onset")),
    section("trauma", t("tr.trauma")),
    section("etaMinutes", t("tr.eta")),
    section("hospital", t("tr.hospital")),
  );
  slots.pad = h("div", { class: "slot" });
  slots.vitals.before(slots.pad);
  // The live picker (ranked, with each hospital's acceptance) above the one-tap buttons.
  const picker = hospitalPicker(state, actions);
  slots.hospital.before(picker.el);

  const errorFor = (name, fields) => {
    const e = fields.map((f) => tr.errors[f]).find(Boolean);
    return e ? h("p", { class: "field-error", role: "alert", testid: `error-${name}`, dataset: { field: e.field ?? name } }, icon("warning", "icon icon-small"), e.text) : null;
  };

  function update() {
    const obs = observations();
    keyed(slots.priority, [obs.priority, tr.busy], () => priorityButtons(obs));
    keyed(slots.chiefComplaint, [obs.chiefComplaint, obs.complaintNote], () => complaintButtons(obs));
    keyed(slots.pad, [tr.draft, tr.errors.vitals ?? null, tr.busy], () => vitalsPad());
    keyed(slots.vitals, obs.vitals ?? [], () => vitalsList(obs));
    keyed(slots.treatments, obs.treatments ?? [], () => treatmentButtons(obs));
    keyed(slots.onset, [obs.onset ?? null, Math.floor(Date.now() / 60000)], () => onsetControls(obs));
    keyed(slots.trauma, obs.trauma ?? null, () => traumaButtons(obs));
    keyed(slots.etaMinutes, [obs.etaMinutes ?? null, obs.etaRecordedAt ?? null, tr.eta], () => etaControls(obs));
    picker.update();
    keyed(slots.hospital, [obs.hospital ?? null, tr.hospitals, tr.hospitalsError, state.incident.handoff ?? null, state.handoffBusy, state.handoffError, tr.busy], () => hospitalButtons(obs));
    for (const [name, fields] of [
      ["priority", ["priority"]],
      ["chiefComplaint", ["chiefComplaint", "complaintNote"]],
      ["treatments", ["treatments"]],
      ["onset", ["onset", "onset.at", "onset.kind"]],
      ["trauma", ["trauma", "trauma.mechanism", "trauma.injuries"]],
      ["etaMinutes", ["etaMinutes"]],
      ["hospital", ["hospital"]],
    ]) {
      keyed(slots[`${name}Error`], fields.map((f) => tr.errors[f] ?? null), () => errorFor(name, fields));
    }
  }

  actions.loadHospitals();
  update();
  return { el, update };
}

/** The one-line transport digest on the summary's button: priority, complaint, latest vitals, ETA. */
export function transportDigest(observations) {
  const obs = observations ?? {};
  const parts = [];
  if (obs.priority) parts.push(t(`tr.priority.${obs.priority}`));
  if (obs.chiefComplaint) parts.push(t(`tr.complaint.${obs.chiefComplaint}`));
  const latest = [...(obs.vitals ?? [])].sort((a, b) => Date.parse(b.takenAt) - Date.parse(a.takenAt))[0];
  if (latest?.heartRate !== undefined) parts.push(`${t("tr.short.heartRate")} ${latest.heartRate}`);
  if (latest?.systolic !== undefined) parts.push(`${t("tr.short.bp")} ${latest.systolic}/${latest.diastolic ?? "—"}`);
  if (latest?.spo2 !== undefined) parts.push(`${t("tr.short.spo2")} ${latest.spo2}%`);
  if (typeof obs.etaMinutes === "number") parts.push(t("tr.eta.minutes", { n: obs.etaMinutes }));
  return parts.join(t("list.separator"));
}
