// The summary a paramedic reads in 10 seconds, filling in as categories arrive: the patient header (with the
// SYNTHETIC badge), identification and authentication, red flags first (icon + words + colour, never colour
// alone), then medications, diagnoses, dialysis, surgery, recent visits, out-of-range checkup values and
// allergies. Each section shows its categories' status and opens its raw records ("details") in one tap.

import { h, icon, calendarDate, notice, keyed } from "./dom.js";
import { t, has } from "./i18n.js";
import { retryBanner, statusChip, isDone, isTrouble } from "./parts.js";
import { transportDigest } from "./view-transport.js";

/** The nine categories, in the order of the contract. */
export const categories = ["qualification", "visits", "diagnoses", "medications", "prescriptions", "surgery", "treatment", "checkups", "allergies"];

const sections = [
  { name: "medications", cats: ["medications", "prescriptions"], rows: medicationRows },
  { name: "diagnoses", cats: ["diagnoses"], rows: diagnosisRows },
  { name: "dialysis", cats: ["treatment"], rows: dialysisRows, always: true },
  { name: "surgery", cats: ["surgery"], rows: surgeryRows },
  { name: "visits", cats: ["visits"], rows: visitRows },
  { name: "checkups", cats: ["checkups"], rows: checkupRows },
  { name: "allergies", cats: ["allergies"], rows: allergyRows },
];

function classTag(prefix, kind, testid) {
  if (!kind) return null;
  return h("span", { class: `tag tag-${kind}`, testid, dataset: { kind } }, has(`${prefix}.${kind}`) ? t(`${prefix}.${kind}`) : kind);
}

function medicationRows(summary) {
  return (summary?.currentMedications ?? []).map((m) =>
    h(
      "li",
      { class: `row ${m.drugClass ? "row-flagged" : ""}`, testid: "med-row", dataset: { drugClass: m.drugClass ?? "" } },
      h("div", { class: "row-main" }, h("span", { class: "row-name" }, m.name), classTag("drug", m.drugClass, "med-class")),
      h("div", { class: "row-sub" }, [m.dose, m.usage].filter(Boolean).join(" ・ "), m.dispensedDate ? h("span", { class: "row-date" }, calendarDate(m.dispensedDate)) : null),
    ),
  );
}

function diagnosisRows(summary) {
  return (summary?.diagnoses ?? []).map((d) =>
    h(
      "li",
      { class: "row", testid: "diagnosis-row" },
      h("div", { class: "row-main" }, h("span", { class: "row-name" }, d.name), d.icd10 ? h("span", { class: "code" }, d.icd10) : null),
      d.since ? h("div", { class: "row-sub" }, t("summary.since", { date: calendarDate(d.since) })) : null,
    ),
  );
}

function dialysisRows(summary, done) {
  if (summary?.dialysis) {
    return [h("li", { class: "row row-flagged", testid: "dialysis-status", dataset: { dialysis: "yes" } }, h("span", { class: "row-name" }, t("summary.dialysis.yes", { date: calendarDate(summary.dialysis.lastSession) })))];
  }
  if (done) return [h("li", { class: "row", testid: "dialysis-status", dataset: { dialysis: "no" } }, t("summary.dialysis.no"))];
  return [];
}

function surgeryRows(summary) {
  return (summary?.surgery ?? []).map((s) =>
    h(
      "li",
      { class: "row", testid: "surgery-row" },
      h("div", { class: "row-main" }, h("span", { class: "row-name" }, s.name)),
      h("div", { class: "row-sub" }, [s.institution, calendarDate(s.date)].filter(Boolean).join(" ・ ")),
    ),
  );
}

function visitRows(summary) {
  return (summary?.recentVisits ?? []).map((v) =>
    h(
      "li",
      { class: "row", testid: "visit-row" },
      h("div", { class: "row-main" }, h("span", { class: "row-name" }, v.institution), v.department ? h("span", { class: "tag tag-neutral" }, v.department) : null),
      h("div", { class: "row-sub" }, calendarDate(v.date)),
    ),
  );
}

function checkupRows(summary) {
  return (summary?.checkupOutOfRange ?? []).map((c) =>
    h(
      "li",
      { class: "row", testid: "checkup-row" },
      h("div", { class: "row-main" }, h("span", { class: "row-name" }, c.name), h("span", { class: "value" }, [c.value, c.unit].filter(Boolean).join(" "))),
      h("div", { class: "row-sub" }, calendarDate(c.date)),
    ),
  );
}

function allergyRows(summary) {
  return (summary?.allergies ?? []).map((a) =>
    h(
      "li",
      { class: "row row-flagged", testid: "allergy-row" },
      h("div", { class: "row-main" }, classTag("allergy", a.kind, "allergy-kind"), h("span", { class: "row-name" }, a.substance)),
      a.reaction ? h("div", { class: "row-sub" }, a.reaction) : null,
    ),
  );
}

function patientHeader(state) {
  const incident = state.incident;
  const p = incident.summary?.patient;
  const qualification = incident.categories?.qualification;
  const chip = statusChip("qualification", qualification, state.pendingSince.qualification);
  if (!p) {
    return h("div", { class: "patient patient-pending", testid: "patient-header", dataset: { state: "pending" } }, h("div", { class: "patient-name" }, t("summary.patientPending")), chip);
  }
  return h(
    "div",
    { class: "patient", testid: "patient-header", dataset: { state: "present" } },
    h(
      "div",
      { class: "patient-line" },
      h("span", { class: "patient-name", testid: "patient-name" }, p.name),
      p.synthetic ? h("span", { class: "badge-synthetic", testid: "synthetic-badge" }, t("summary.synthetic")) : null,
    ),
    h("div", { class: "patient-kana", testid: "patient-kana", lang: "ja" }, p.nameKana),
    h(
      "div",
      { class: "patient-facts" },
      h("span", { class: "patient-age-sex", testid: "patient-age-sex" }, [typeof p.age === "number" ? t("summary.age", { age: p.age }) : null, has(`sex.${p.sex}`) ? t(`sex.${p.sex}`) : null].filter(Boolean).join(" ・ ")),
      p.birthDate ? h("span", { testid: "patient-birth" }, t("summary.birth", { date: calendarDate(p.birthDate) })) : null,
      p.insurer ? h("span", { testid: "patient-insurer" }, t("summary.insurer", { insurer: p.insurer })) : null,
    ),
    chip,
  );
}

function identityLine(state, actions) {
  const incident = state.incident;
  const auth = incident.authentication ?? { status: "not-started" };
  const how = incident.identification && has(`ident.${incident.identification}`) ? t(`ident.${incident.identification}`) : null;
  const trouble = auth.status === "failed" || auth.status === "refused";
  // While a retry is scheduled the retry banner says what happens; the lookup would meet the same outage.
  const offerLookup = trouble && !incident.retry;
  return h(
    "div",
    { class: `identity ${trouble ? "identity-trouble" : ""}` },
    how ? h("span", { testid: "identification" }, t("summary.identification", { how })) : null,
    !how && state.lookupPending ? h("span", { testid: "lookup-sent" }, t("lookup.sent")) : null,
    h(
      "span",
      { class: `auth auth-${auth.status}`, testid: "auth-status", dataset: { status: auth.status } },
      icon(auth.status === "ok" ? "check" : trouble ? "cross" : "clock", "icon icon-small"),
      has(`auth.${auth.status}`) ? t(`auth.${auth.status}`) : auth.status,
    ),
    offerLookup
      ? h(
          "div",
          { class: "identity-problem", role: "alert" },
          auth.reason ? h("p", { testid: "auth-reason" }, auth.reason) : null,
          h("button", { type: "button", class: "btn btn-big btn-primary", testid: "auth-to-lookup", on: { click: actions.toLookup } }, t("summary.toLookup")),
        )
      : null,
  );
}

function redFlags(state) {
  const incident = state.incident;
  const flags = incident.summary?.redFlags ?? [];
  const statuses = categories.map((c) => incident.categories?.[c]?.status ?? "pending");
  const settled = statuses.every((s) => isDone(s) || isTrouble(s));
  const missing = categories.filter((c, i) => isTrouble(statuses[i]));
  // "No red flags" is said only when every category arrived: a failed one may hide a flag.
  const stateName = flags.length ? "present" : !settled ? "pending" : missing.length ? "incomplete" : "none";
  return h(
    "section",
    { class: `redflags redflags-${stateName}`, testid: "redflags", dataset: { state: stateName }, "aria-labelledby": "redflags-title" },
    h("h2", { class: "section-title", id: "redflags-title" }, icon("warning"), t("summary.redFlags")),
    flags.length
      ? h(
          "ul",
          { class: "redflag-list" },
          flags.map((f) =>
            h(
              "li",
              { class: `redflag redflag-${f.kind}`, testid: "redflag-item", dataset: { kind: f.kind } },
              icon("warning", "icon redflag-icon"),
              h(
                "span",
                { class: "redflag-body" },
                h("span", { class: "redflag-kind" }, has(`flag.${f.kind}`) ? t(`flag.${f.kind}`) : f.kind),
                h("span", { class: "redflag-text" }, f.text),
                f.date ? h("span", { class: "redflag-date" }, calendarDate(f.date)) : null,
              ),
            ),
          ),
        )
      : null,
    stateName === "none" ? h("p", { class: "muted", testid: "redflags-none" }, t("summary.redFlags.none")) : null,
    stateName === "pending" ? h("p", { class: "muted", testid: "redflags-pending" }, t("summary.redFlags.pending")) : null,
    missing.length
      ? h(
          "p",
          { class: "redflags-missing", testid: "redflags-incomplete", dataset: { missing: missing.join(" ") } },
          icon("warning", "icon icon-small"),
          t("summary.redFlags.incomplete", { cats: missing.map((c) => t(`cat.${c}`)).join(t("list.separator")) }),
        )
      : null,
  );
}

function detailValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A category's records as a flat list: the gateway sends a plain array; an object of arrays is flattened. */
function recordList(records) {
  if (Array.isArray(records)) return records;
  if (records && typeof records === "object") {
    const arrays = Object.values(records).filter(Array.isArray);
    return arrays.length ? arrays.flat() : [records];
  }
  return [];
}

function detailsPanel(section, state) {
  const parts = section.cats.map((category) => {
    const d = state.details[category];
    const info = state.incident.categories?.[category];
    if (!isDone(info?.status)) return null;
    if (!d || d.status === "loading") return h("p", { class: "muted", testid: "details-loading", dataset: { category } }, t("app.loading"));
    if (d.status === "error") return notice(d.error, { testid: "details-error" });
    return recordList(d.records).map((record) =>
      h(
        "dl",
        { class: "record", testid: "details-record", dataset: { category } },
        Object.entries(record && typeof record === "object" ? record : { value: record }).map(([k, v]) => [h("dt", {}, k), h("dd", {}, detailValue(v))]),
      ),
    );
  });
  const any = parts.some((p) => p !== null && (!Array.isArray(p) || p.length > 0));
  return h("div", { class: "details", testid: `details-panel-${section.name}` }, any ? parts : h("p", { class: "muted" }, t("summary.noDetails")));
}

/** One section: a stable frame (title, details button) with its chips, rows and details refilled on change. */
function sectionBlock(section, state, actions) {
  const chips = h("div", { class: "chips" });
  const body = h("div", { class: "section-body" });
  const reasons = h("div", { class: "section-reasons" });
  const panel = h("div", { class: "section-details" });
  const button = h("button", { type: "button", class: "btn btn-details", testid: `details-${section.name}`, on: { click: () => actions.toggleDetails(section.name) } });
  const el = h(
    "section",
    { class: `section section-${section.name}`, testid: `section-${section.name}` },
    h("div", { class: "section-head" }, h("h2", { class: "section-title" }, t(`section.${section.name}`)), chips),
    body,
    reasons,
    button,
    panel,
  );
  function update() {
    const incident = state.incident;
    const summary = incident.summary;
    const infos = section.cats.map((c) => incident.categories?.[c] ?? null);
    const statuses = infos.map((i) => i?.status ?? "pending");
    const since = section.cats.map((c) => state.pendingSince[c] ?? null);
    const expanded = state.expanded.has(section.name);
    el.dataset.statuses = statuses.join(" ");
    keyed(chips, [infos, since], () => section.cats.map((c, i) => statusChip(c, infos[i], since[i] ?? undefined)));
    const rows = section.rows(summary, statuses.every(isDone));
    keyed(body, [statuses, rows.map((r) => r.textContent)], () => {
      if (rows.length) return h("ul", { class: "rows" }, rows);
      if (statuses.every((st) => isDone(st) || isTrouble(st)))
        return statuses.some(isTrouble)
          ? h("p", { class: "reason", testid: `${section.name}-missing` }, icon("cross", "icon icon-small"), t("summary.notFetched"))
          : h("p", { class: "muted", testid: `${section.name}-empty` }, t("summary.empty"));
      return h("p", { class: "muted", testid: `${section.name}-waiting` }, t("summary.waiting"));
    });
    keyed(reasons, infos.map((i) => (i && isTrouble(i.status) ? i.reason : null)), () =>
      section.cats
        .map((c, i) => ({ c, info: infos[i] }))
        .filter(({ info }) => info && isTrouble(info.status) && info.reason)
        .map(({ c, info }) => h("p", { class: "reason", testid: `reason-${c}` }, icon("cross", "icon icon-small"), `${t(`cat.${c}`)}: ${info.reason}`)),
    );
    button.hidden = !statuses.some(isDone);
    button.textContent = expanded ? t("summary.hideDetails") : t("summary.details");
    button.setAttribute("aria-expanded", expanded ? "true" : "false");
    if (expanded) for (const [i, c] of section.cats.entries()) if (isDone(statuses[i])) actions.ensureDetails(c);
    keyed(panel, expanded ? section.cats.map((c) => [state.details[c]?.status ?? null, state.details[c]?.key ?? null]) : false, () => (expanded ? detailsPanel(section, state) : null));
  }
  return { el, update };
}

/** The "records N/9" bar, updated in place. */
function progressBar() {
  const label = h("span");
  const bar = h("progress", { max: String(categories.length) });
  const el = h("div", { class: "summary-progress", testid: "summary-progress" }, label, bar);
  function update(incident) {
    const statuses = categories.map((c) => incident.categories?.[c]?.status ?? "pending");
    const done = statuses.filter(isDone).length;
    const failed = statuses.filter(isTrouble).length;
    const total = categories.length;
    el.dataset.done = String(done);
    el.dataset.failed = String(failed);
    el.dataset.total = String(total);
    label.textContent = failed ? t("summary.progress.failed", { done, total, failed }) : t("summary.progress", { done, total });
    bar.value = done + failed;
  }
  return { el, update };
}

/**
 * The summary view over the incident screen's shared `state` and `actions`. Built once; each update refills only
 * the parts whose content changed, so buttons keep their identity while categories arrive.
 */
export function summaryView(state, actions) {
  const slots = {
    retry: h("div", { class: "slot" }),
    transport: h("div", { class: "slot" }),
    patient: h("div", { class: "slot" }),
    identity: h("div", { class: "slot" }),
    progress: progressBar(),
    flags: h("div", { class: "slot" }),
    error: h("div", { class: "slot" }),
  };
  const blocks = sections.map((s) => sectionBlock(s, state, actions));
  const el = h(
    "div",
    { class: "view view-summary", testid: "view-summary" },
    slots.retry,
    slots.transport,
    slots.patient,
    slots.identity,
    slots.progress.el,
    slots.flags,
    h("div", { class: "sections" }, blocks.map((b) => b.el)),
    slots.error,
  );
  function update() {
    const incident = state.incident;
    const cats = categories.map((c) => incident.categories?.[c] ?? null);
    keyed(slots.retry, incident.retry, () => retryBanner(incident));
    const digest = transportDigest(incident.observations);
    keyed(slots.transport, digest, () =>
      h(
        "button",
        { type: "button", class: "btn btn-big btn-transport", testid: "to-transport", on: { click: actions.toTransport } },
        h("span", { class: "btn-transport-title" }, t("tr.open")),
        digest ? h("span", { class: "btn-transport-digest", testid: "transport-digest" }, digest) : null,
      ),
    );
    keyed(slots.patient, [incident.summary?.patient ?? null, incident.categories?.qualification ?? null, state.pendingSince.qualification ?? null], () => patientHeader(state));
    keyed(slots.identity, [incident.identification, incident.authentication, state.lookupPending, !!incident.retry], () => identityLine(state, actions));
    slots.progress.update(incident);
    keyed(slots.flags, [incident.summary?.redFlags ?? null, cats.map((c) => c?.status ?? null)], () => redFlags(state));
    for (const b of blocks) b.update();
    keyed(slots.error, state.actionError, () => (state.actionError ? notice(state.actionError, { testid: "incident-error" }) : null));
  }
  update();
  return { el, update };
}
