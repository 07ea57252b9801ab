// Reads what the board shows out of a handoff document (docs/handoff-document.md). Pure: no DOM, no clock.
const GAP = "http://kyukyu.example.jp/fhir/StructureDefinition/category-gap";
const VITALS = { jcs: "jcs", "9269-2": "gcs", "8867-4": "hr", "85354-9": "bp", "9279-1": "rr", "59408-5": "spo2", "8310-5": "temp", "2339-0": "glucose" };
export const VITAL_ORDER = ["jcs", "gcs", "hr", "bp", "rr", "spo2", "temp", "glucose"];

const code = (concept) => concept?.coding?.[0]?.code ?? null;
const text = (concept) => concept?.text ?? concept?.coding?.[0]?.display ?? concept?.coding?.[0]?.code ?? "";

/** The board's summary of one Bundle. */
export function readDocument(bundle) {
  const byUrl = new Map();
  for (const entry of bundle?.entry ?? []) byUrl.set(entry.fullUrl, entry.resource);
  const resolve = (reference) => byUrl.get(reference?.reference);
  const composition = bundle?.entry?.[0]?.resource ?? {};
  const section = (c) => (composition.section ?? []).find((s) => code(s.code) === c);
  const entries = (c) => (section(c)?.entry ?? []).map(resolve).filter(Boolean);
  const resources = [...byUrl.values()];
  const observation = (c) => resources.find((r) => r.resourceType === "Observation" && code(r.code) === c);

  const patient = resources.find((r) => r.resourceType === "Patient") ?? {};
  const kanji = patient.name?.[0]?.text ?? [patient.name?.[0]?.family, ...(patient.name?.[0]?.given ?? [])].filter(Boolean).join(" ");
  const priority = code(observation("triage-priority")?.valueCodeableConcept);
  const eta = observation("eta");
  const complaint = observation("chief-complaint");
  const trauma = observation("trauma");
  const onset = observation("onset") ?? observation("last-known-well");

  const label = (r) => {
    if (r.resourceType === "MedicationStatement") return text(r.medicationCodeableConcept);
    return text(r.code);
  };
  const redFlags = entries("red-flags").map(label);

  // Vitals: one column per timed set, in time order.
  const sets = new Map();
  for (const r of entries("8716-3")) {
    const kind = VITALS[code(r.code)];
    if (!kind) continue;
    const at = r.effectiveDateTime ?? "";
    if (!sets.has(at)) sets.set(at, { at });
    let value = null;
    if (kind === "jcs") value = text(r.valueCodeableConcept);
    else if (kind === "gcs") value = r.valueInteger;
    else if (kind === "bp") {
      const part = (c) => r.component?.find((x) => code(x.code) === c)?.valueQuantity?.value;
      const [s, d] = [part("8480-6"), part("8462-4")];
      value = s == null ? null : d == null ? `${s}/-` : `${s}/${d}`;
    } else value = r.valueQuantity?.value;
    if (value != null) sets.get(at)[kind] = value;
  }
  const vitals = [...sets.values()].sort((a, b) => a.at.localeCompare(b.at));

  const medications = entries("10160-0").map((r) => ({ name: label(r), dosage: r.dosage?.[0]?.text ?? "", intended: r.status === "intended" }));
  const diagnoses = entries("11450-4").filter((r) => r.resourceType === "Condition").map(label);
  const procedures = entries("47519-4").map((r) => ({ name: label(r), dialysis: code(r.category) === "dialysis", note: r.note?.[0]?.text ?? "" }));
  const allergies = entries("48765-2").map(label);
  const checkups = entries("30954-2")
    .filter((r) => (r.interpretation ?? []).some((i) => code(i) === "A" || code(i) === "H" || code(i) === "L"))
    .map((r) => ({ name: label(r), value: r.valueQuantity ? `${r.valueQuantity.value} ${r.valueQuantity.unit ?? ""}`.trim() : r.valueString ?? text(r.valueCodeableConcept) }));
  const treatment = entries("prehospital-treatment").map(label);
  const provenance = resources.find((r) => r.resourceType === "Provenance" && (r.extension ?? []).length) ?? {};
  const gaps = (provenance.extension ?? []).filter((e) => e.url === GAP).map((e) => ({
    category: e.extension?.find((x) => x.url === "category")?.valueCode,
    status: e.extension?.find((x) => x.url === "status")?.valueCode,
  }));
  return {
    version: Number(bundle?.meta?.versionId ?? 0),
    patient: { name: kanji, birthDate: patient.birthDate ?? null, gender: patient.gender ?? null },
    priority: ["red", "yellow", "green"].includes(priority) ? priority : null,
    eta: eta?.valueQuantity?.value != null && eta.effectiveDateTime
      ? { minutes: eta.valueQuantity.value, givenAt: eta.effectiveDateTime } : null,
    complaint: complaint ? { text: text(complaint.valueCodeableConcept), note: complaint.note?.[0]?.text ?? "" } : null,
    trauma: trauma ? [text(trauma.valueCodeableConcept), ...(trauma.component ?? []).map((c) => text(c.valueCodeableConcept))].filter(Boolean).join("・") : "",
    onset: onset ? { kind: code(onset.code) === "onset" ? "onset" : "lkw", at: onset.valueDateTime } : null,
    redFlags, vitals, medications, diagnoses, procedures, allergies, checkups, treatment, gaps,
  };
}

/** Milliseconds left until the ETA (negative when overdue), or null without one. */
export function etaLeft(eta, nowMs) {
  if (!eta) return null;
  const given = Date.parse(eta.givenAt);
  return Number.isNaN(given) ? null : given + eta.minutes * 60000 - nowMs;
}

/** The trend of a vital between two sets: "up", "down", "same" or null. */
export function trend(previous, latest) {
  const number = (v) => (typeof v === "number" ? v : typeof v === "string" ? parseFloat(v) : NaN);
  const [a, b] = [number(previous), number(latest)];
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return b > a ? "up" : b < a ? "down" : "same";
}
