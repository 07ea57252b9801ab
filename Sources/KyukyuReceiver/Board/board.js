// The ER board: sign-in, the incoming ambulances live over /api/v1/board/events, and the staff's answers.
// Every text goes in as a text node or textContent (no HTML parsing); no patient data in a URL or the console.
import { applyStatic, currentLang, setLang, t } from "/board/i18n.js";
import { VITAL_ORDER, etaLeft, readDocument, trend } from "/board/fhir.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const params = new URLSearchParams(location.search);
/** Seconds between two alerts of a patient nobody acknowledged (?realert=SECONDS, 5-3600; default 120). */
const REALERT_SECONDS = (() => {
  const asked = Number(params.get("realert"));
  return Number.isFinite(asked) && asked >= 5 && asked <= 3600 ? asked : 120;
})();
const REASONS = ["no-beds", "no-specialist", "ct-unavailable", "operating-rooms-full", "icu-full", "other"];

const state = {
  csrf: null, staff: null, events: null, patients: new Map(), details: new Map(), seen: new Map(),
  lastAlert: new Map(), alerts: 0, audio: null, divertOpen: null, divertReason: null, divertNote: "", busy: false,
  // Patients the ambulance withdrew (another hospital, or the crew closed the incident): their card leaves the
  // board, and a notice says why until a member of staff dismisses it.
  withdrawn: [],
};

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child != null) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin", cache: "no-store" });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
  return data;
}

// MARK: screens

function show(screen) {
  $("board-screen").dataset.screen = screen;
  $("board-signin").hidden = screen !== "signin";
  $("board").hidden = screen !== "board";
  $("board-signout").hidden = screen !== "board";
  $("board-staff").hidden = screen !== "board";
}

async function boot() {
  applyStatic();
  $("board-lang").addEventListener("click", () => { setLang(currentLang() === "ja" ? "en" : "ja"); render(); });
  $("board-signin-form").addEventListener("submit", signIn);
  $("board-signout").addEventListener("click", signOut);
  $("board-sound").addEventListener("click", () => { unlockAudio(); $("board-sound").hidden = true; });
  tickClock();
  setInterval(tick, 1000);
  try {
    const session = await api("GET", "/api/v1/session");
    await start(session);
  } catch {
    show("signin");
  }
}

async function signIn(event) {
  event.preventDefault();
  unlockAudio(); // a tap: the browser now lets the page sound
  const form = event.currentTarget;
  const error = $("board-signin-error");
  error.hidden = true;
  try {
    const session = await api("POST", "/api/v1/session", {
      staffId: form.staffId.value.trim().toUpperCase(), password: form.password.value, totp: form.totp.value.trim(),
    });
    form.reset();
    await start(session);
  } catch (failure) {
    error.textContent = failure.status === 401 ? t("signin.failed") : t("err.network");
    error.hidden = false;
  }
}

async function signOut() {
  try { await api("DELETE", "/api/v1/session"); } catch { /* ended anyway */ }
  state.events?.close();
  state.events = null;
  state.patients.clear(); state.details.clear(); state.seen.clear(); state.lastAlert.clear();
  connection("off");
  show("signin");
}

async function start(session) {
  state.csrf = session.csrfToken;
  state.staff = session.staffId;
  $("board-staff").textContent = session.staffId;
  $("board-sound").hidden = !!state.audio && state.audio.state === "running";
  show("board");
  await refresh(null, { quiet: true });
  listen();
}

function connection(which) {
  const node = $("board-connection");
  node.dataset.state = which;
  node.dataset.i18n = `conn.${which}`;
  node.textContent = t(`conn.${which}`);
}

function listen() {
  state.events?.close();
  const source = new EventSource("/api/v1/board/events");
  state.events = source;
  source.onopen = () => connection("live");
  source.onerror = () => {
    connection("lost");
    // EventSource retries by itself; if the session is gone, go back to sign-in.
    api("GET", "/api/v1/session").catch((e) => { if (e.status === 401) signOut(); });
  };
  source.addEventListener("handoff", (message) => {
    let event = null;
    try { event = JSON.parse(message.data); } catch { return; }
    const set = String(event.documentSet ?? "").replace(/^urn:uuid:/, "");
    const patient = state.patients.get(set);
    if (event.status === "withdrawn" && patient && !state.withdrawn.some((w) => w.set === set)) {
      state.withdrawn.push({ set, name: patient.doc.patient.name, reason: event.reason, at: event.at ?? new Date().toISOString() });
    }
    refresh(set);
  });
}

// MARK: data

let refreshing = Promise.resolve();
function refresh(set, { quiet = false } = {}) {
  refreshing = refreshing.then(() => load(set, quiet)).catch(() => {});
  return refreshing;
}

async function load(changedSet, quiet) {
  const data = await api("GET", "/api/v1/patients");
  const next = new Map();
  for (const patient of data.patients ?? []) next.set(patient.set, { ...patient, doc: readDocument(patient.document) });
  state.patients = next;
  const fresh = [];
  for (const [set, patient] of next) {
    const before = state.seen.get(set);
    if (before === undefined || before < patient.version) fresh.push(set);
    state.seen.set(set, patient.version);
  }
  const detailsToLoad = [...next.keys()].filter((set) => !state.details.has(set) || set === changedSet || fresh.includes(set));
  await Promise.all(detailsToLoad.map(async (set) => {
    try { state.details.set(set, await api("GET", `/api/v1/patients/${encodeURIComponent(set)}`)); } catch { /* next event */ }
  }));
  render();
  if (!quiet || fresh.length) for (const set of fresh) if (next.get(set)?.status === "received") alertFor(set);
}

// MARK: alerts

function unlockAudio() {
  try {
    state.audio ??= new AudioContext();
    if (state.audio.state === "suspended") state.audio.resume();
  } catch { /* no audio */ }
}

function beep() {
  const audio = state.audio;
  if (!audio || audio.state !== "running") { $("board-sound").hidden = false; return false; }
  const now = audio.currentTime;
  for (const [offset, frequency] of [[0, 880], [0.25, 660], [0.5, 880]]) {
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = frequency;
    oscillator.type = "square";
    gain.gain.setValueAtTime(0.2, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.001, now + offset + 0.2);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start(now + offset);
    oscillator.stop(now + offset + 0.22);
  }
  return true;
}

function alertFor(set) {
  state.lastAlert.set(set, Date.now());
  state.alerts += 1;
  const sounded = beep();
  const board = $("board");
  board.dataset.alerts = String(state.alerts);
  board.dataset.lastBeep = sounded ? "sounded" : "muted";
  const card = document.querySelector(`[data-testid="patient-card"][data-set="${set}"]`);
  if (card) {
    card.classList.remove("flash");
    void card.offsetWidth; // restart the animation
    card.classList.add("flash");
    card.dataset.alerts = String(Number(card.dataset.alerts ?? 0) + 1);
  }
}

function tick() {
  tickClock();
  const now = Date.now();
  for (const node of document.querySelectorAll('[data-testid="patient-eta"]')) paintEta(node, now);
  for (const [set, patient] of state.patients) {
    if (patient.status !== "received") continue;
    const last = state.lastAlert.get(set) ?? 0;
    if (now - last >= REALERT_SECONDS * 1000) alertFor(set);
  }
}

function tickClock() {
  $("board-clock").textContent = new Date().toLocaleTimeString(currentLang() === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function paintEta(node, now) {
  const left = node.dataset.givenAt ? etaLeft({ givenAt: node.dataset.givenAt, minutes: Number(node.dataset.minutes) }, now) : null;
  if (left == null) { node.textContent = t("eta.none"); node.dataset.overdue = "false"; return; }
  const total = Math.round(Math.abs(left) / 1000);
  const clock = `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
  node.dataset.overdue = String(left < 0);
  node.dataset.secondsLeft = String(Math.round(left / 1000));
  node.textContent = left >= 0 ? `${t("eta.in")} ${clock}` : `${t("eta.over")} +${clock}`;
}

// MARK: actions

async function act(set, path, body) {
  state.busy = true;
  render();
  try {
    await api("POST", `/api/v1/patients/${encodeURIComponent(set)}/${path}`, body);
    state.divertOpen = null; state.divertReason = null; state.divertNote = "";
  } catch {
    flashError(set);
  } finally {
    state.busy = false;
    await refresh(set);
  }
}

function flashError(set) {
  const card = document.querySelector(`[data-testid="patient-card"][data-set="${set}"]`);
  card?.querySelector('[data-testid="patient-error"]')?.removeAttribute("hidden");
}

// MARK: rendering

const PRIORITY_RANK = { red: 0, yellow: 1, green: 2 };
const STATUS_RANK = { received: 0, acknowledged: 1, diverted: 2 };

function render() {
  const cards = $("board-cards");
  const patients = [...state.patients.values()].sort((a, b) =>
    (STATUS_RANK[a.status] ?? 3) - (STATUS_RANK[b.status] ?? 3)
    || (PRIORITY_RANK[a.doc.priority] ?? 3) - (PRIORITY_RANK[b.doc.priority] ?? 3)
    || (etaLeft(a.doc.eta, 0) ?? Infinity) - (etaLeft(b.doc.eta, 0) ?? Infinity));
  $("board-empty").hidden = patients.length > 0 || state.withdrawn.length > 0;
  const departed = $("board-withdrawn");
  departed.hidden = state.withdrawn.length === 0;
  departed.replaceChildren(...state.withdrawn.map((w) => el("div", { class: "notice", testid: "withdrawn-notice", "data-set": w.set, "data-reason": w.reason ?? "" },
    el("span", { class: "status", "data-status": "withdrawn" }, t("status.withdrawn")),
    el("span", {}, `${w.name ?? ""} — ${w.reason ? t(`reason.${w.reason}`) : ""} (${time(w.at)})`),
    el("button", { type: "button", class: "btn", testid: "withdrawn-dismiss", onclick: () => { state.withdrawn = state.withdrawn.filter((x) => x.set !== w.set); render(); } }, t("dismiss")))));
  const focused = document.activeElement?.dataset?.testid === "divert-note";
  const flashing = new Map([...cards.querySelectorAll('[data-testid="patient-card"]')].map((c) => [c.dataset.set, c]));
  cards.replaceChildren(...patients.map((p) => {
    const card = renderCard(p);
    const old = flashing.get(p.set);
    if (old?.classList.contains("flash")) card.classList.add("flash");
    if (old?.dataset.alerts) card.dataset.alerts = old.dataset.alerts;
    return card;
  }));
  if (focused) document.querySelector('[data-testid="divert-note"]')?.focus();
}

function age(birthDate) {
  if (!birthDate) return "";
  const [y, m, d] = birthDate.split("-").map(Number);
  const now = new Date();
  let years = now.getFullYear() - y;
  if (now.getMonth() + 1 < m || (now.getMonth() + 1 === m && now.getDate() < (d || 1))) years -= 1;
  return `${years}${t("age")}`;
}

function time(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString(currentLang() === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

function block(testid, title, body) {
  return el("div", { class: "block", testid }, el("h3", {}, title), body);
}

function list(items, testid) {
  return items.length ? el("ul", {}, items.map((item) => el("li", { testid }, item))) : el("div", { class: "dim" }, t("none"));
}

function renderCard(p) {
  const d = p.doc;
  const detail = state.details.get(p.set);
  const card = el("article", { class: "card", testid: "patient-card", "data-set": p.set, "data-status": p.status, "data-priority": d.priority ?? "none", "data-version": p.version });

  const eta = el("div", { class: "eta", testid: "patient-eta", "data-given-at": d.eta?.givenAt, "data-minutes": d.eta?.minutes });
  paintEta(eta, Date.now());
  const sex = d.patient.gender === "male" ? t("male") : d.patient.gender === "female" ? t("female") : "";
  card.append(el("div", { class: "head" },
    el("span", { class: "priority", testid: "patient-priority", "data-priority": d.priority ?? "none" }, t(`priority.${d.priority ?? "none"}`)),
    el("span", { class: "status", testid: "patient-status", "data-status": p.status }, t(`status.${p.status}`)),
    el("span", { class: "patient", testid: "patient-name" }, [d.patient.name, age(d.patient.birthDate), sex].filter(Boolean).join(" ")),
    el("span", { class: "patient", testid: "patient-version" }, `${t("version")}${p.version}`),
    eta));
  card.append(el("div", { class: "complaint", testid: "patient-complaint" },
    d.complaint ? [d.complaint.text, d.complaint.note ? `（${d.complaint.note}）` : "", d.trauma ? ` ${d.trauma}` : ""].join("") : "—"));
  if (d.onset?.at) card.append(el("div", { class: "patient", testid: "patient-onset" }, `${t(d.onset.kind)} ${time(d.onset.at)}`));
  if (p.status === "diverted") {
    card.append(el("div", { class: "reason", testid: "patient-divert-reason", "data-reason": p.reason }, `${t("status.diverted")}: ${t(`reason.${p.reason}`)}${p.note ? ` — ${p.note}` : ""}`));
  }
  if (d.redFlags.length) card.append(el("div", { class: "redflags", testid: "patient-redflags" }, `⚠ ${t("redflags")}`, list(d.redFlags, "patient-redflag")));

  const grid = el("div", { class: "grid" });
  grid.append(block("patient-vitals", t("vitals"), renderVitals(d.vitals)));
  grid.append(block("patient-meds", t("meds"), list(d.medications.map((m) => `${m.name}${m.dosage ? ` ${m.dosage}` : ""}`), "patient-med")));
  grid.append(block("patient-history", t("history"), list([
    ...d.diagnoses, ...d.procedures.map((x) => `${x.dialysis ? "【透析】" : ""}${x.name}${x.note ? `（${x.note}）` : ""}`),
  ], "patient-history-item")));
  grid.append(block("patient-allergies", t("allergies"), list(d.allergies, "patient-allergy")));
  grid.append(block("patient-checkups", t("checkups"), list(d.checkups.map((c) => `${c.name} ${c.value}`), "patient-checkup")));
  grid.append(block("patient-treatment", t("treatment"), list(d.treatment, "patient-treatment-item")));
  card.append(grid);
  if (d.gaps.length) {
    card.append(block("patient-gaps", t("gaps"), el("div", { class: "gaps" }, d.gaps.map((g) =>
      el("span", { testid: "patient-gap", "data-category": g.category, "data-status": g.status }, `${t(`cat.${g.category}`)}（${t(`gap.${g.status}`)}） `)))));
  }
  card.append(renderActions(p));
  card.append(el("div", { class: "error", testid: "patient-error", hidden: true }, t("err.action")));
  card.append(block("patient-timeline", t("timeline"), renderTimeline(detail)));
  return card;
}

function renderVitals(sets) {
  if (!sets.length) return el("div", {}, t("none"));
  const shown = sets.slice(-3);
  const table = el("table", { class: "vitals" });
  table.append(el("tr", {}, el("th", {}, ""), shown.map((s) => el("th", {}, time(s.at)))));
  for (const kind of VITAL_ORDER) {
    if (!sets.some((s) => s[kind] != null)) continue;
    const row = el("tr", { testid: "vital-row", "data-vital": kind }, el("td", {}, t(`vital.${kind}`)));
    shown.forEach((s, index) => {
      const latest = index === shown.length - 1;
      const previous = [...sets.slice(0, sets.indexOf(s))].reverse().find((x) => x[kind] != null)?.[kind];
      const direction = latest ? trend(previous, s[kind]) : null;
      const arrow = direction === "up" ? " ↑" : direction === "down" ? " ↓" : "";
      row.append(el("td", { class: latest ? `latest ${direction ? `trend-${direction}` : ""}` : "", testid: latest ? "vital-latest" : null, "data-trend": direction }, s[kind] == null ? "—" : `${s[kind]}${arrow}`));
    });
    table.append(row);
  }
  return table;
}

function renderTimeline(detail) {
  if (!detail) return el("div", {}, "…");
  const items = [
    ...(detail.versions ?? []).map((v) => ({ at: v.receivedAt, text: `${t("version")}${v.version} ${t("event.received")}`, kind: "version" })),
    ...(detail.events ?? []).filter((e) => e.status !== "received").map((e) => ({ at: e.at, text: `${t(`event.${e.status}`)}${e.reason ? ` (${t(`reason.${e.reason}`)})` : ""}`, kind: e.status })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  return el("ul", { class: "timeline" }, items.map((i) => el("li", { testid: "timeline-item", "data-kind": i.kind }, `${time(i.at)} ${i.text}`)));
}

function renderActions(p) {
  const open = p.status === "received" || p.status === "acknowledged";
  const wrap = el("div", {});
  wrap.append(el("div", { class: "actions" },
    el("button", { type: "button", class: "btn big ack", testid: "patient-ack", disabled: state.busy || p.status !== "received", onclick: () => act(p.set, "acknowledge") }, t("ack")),
    el("button", { type: "button", class: "btn big divert", testid: "patient-divert", disabled: state.busy || !open, onclick: () => { state.divertOpen = p.set; state.divertReason = null; state.divertNote = ""; render(); } }, t("divert")),
    el("button", { type: "button", class: "btn big arrived", testid: "patient-arrived", disabled: state.busy || !(open || p.status === "diverted"), onclick: () => act(p.set, "arrived") }, t("arrived"))));
  if (state.divertOpen === p.set) {
    const note = el("input", { testid: "divert-note", maxlength: 200, placeholder: t("divert.note"), value: state.divertNote });
    note.addEventListener("input", () => { state.divertNote = note.value; send.disabled = !ready(); });
    const ready = () => state.divertReason && (state.divertReason !== "other" || state.divertNote.trim().length > 0);
    const send = el("button", { type: "button", class: "btn divert", testid: "divert-send", disabled: !ready() || state.busy, onclick: () => act(p.set, "divert", { reason: state.divertReason, ...(state.divertNote.trim() ? { note: state.divertNote.trim() } : {}) }) }, t("divert.send"));
    wrap.append(el("div", { class: "divert-panel", testid: "divert-panel" },
      el("div", {}, t("divert.title")),
      el("div", { class: "reasons" }, REASONS.map((reason) => el("button", { type: "button", class: "btn", testid: `divert-reason-${reason}`, "aria-pressed": String(state.divertReason === reason), onclick: () => { state.divertReason = reason; render(); } }, t(`reason.${reason}`)))),
      note,
      el("div", { class: "actions" }, send, el("button", { type: "button", class: "btn", testid: "divert-cancel", onclick: () => { state.divertOpen = null; render(); } }, t("divert.cancel")))));
  }
  return wrap;
}

boot();
