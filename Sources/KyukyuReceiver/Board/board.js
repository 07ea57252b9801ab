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
/** The conditions a hospital publishes its acceptance for (docs/receiver-api.yaml, Acceptance). */
const CONDITIONS = ["stroke", "stemi", "trauma", "burns", "paediatrics", "dialysis"];
/** Seconds between two reads of the acceptance, besides the stream's `acceptance` events (a fallback). */
const ACCEPTANCE_POLL_SECONDS = 30;

const state = {
  csrf: null, staff: null, events: null, patients: new Map(), details: new Map(), seen: new Map(),
  lastAlert: new Map(), alerts: 0, audio: null, divertOpen: null, divertReason: null, divertNote: "", busy: false,
  // Patients the ambulance withdrew (another hospital, or the crew closed the incident): their card leaves the
  // board, and a notice says why until a member of staff dismisses it.
  withdrawn: [],
  // The hospital's acceptance (GET/PUT /api/v1/acceptance) and its editor: one condition open at a time.
  hospital: null, acceptance: null, acceptanceRead: 0, editing: null, editReason: null, editNote: "",
  acceptanceBusy: false, acceptanceFailed: false,
  // Placement requests (GET /api/v1/placements): `watched` are those seen pending here, shown after their answer
  // changed until dismissed; `placementAlert` the time of each one's last alert.
  placements: new Map(), watched: new Set(), dismissed: new Set(), placementAlert: new Map(),
  declineOpen: null, declineReason: null, declineNote: "", placementBusy: null, placementErrors: new Map(),
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
  state.placements.clear(); state.watched.clear(); state.dismissed.clear(); state.placementAlert.clear();
  state.placementErrors.clear(); state.acceptance = null; state.editing = null; state.declineOpen = null;
  state.csrf = null; state.hospital = null;
  connection("off");
  show("signin");
}

async function start(session) {
  state.csrf = session.csrfToken;
  state.staff = session.staffId;
  state.hospital = session.hospital ?? null;
  $("board-staff").textContent = session.staffId;
  $("board-sound").hidden = !!state.audio && state.audio.state === "running";
  show("board");
  await Promise.all([refresh(null, { quiet: true }), loadAcceptance(), refreshPlacements()]);
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
  source.onopen = () => {
    connection("live");
    refreshPlacements(); // anything missed while the stream was down (Last-Event-ID also replays)
    loadAcceptance(); // a publication made meanwhile on another screen (the stream does not replay them)
  };
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
  source.addEventListener("acceptance", (message) => {
    // This hospital's publication changed (on another screen, or through another instance): read it again.
    let event = null;
    try { event = JSON.parse(message.data); } catch { return; }
    if (state.hospital && event.hospital && event.hospital !== state.hospital) return;
    if ((event.revision ?? 0) > (state.acceptance?.revision ?? 0)) loadAcceptance();
  });
  source.addEventListener("placement", (message) => {
    let event = null;
    try { event = JSON.parse(message.data); } catch { return; }
    if (state.hospital && event.hospital && event.hospital !== state.hospital) return;
    if (event.answer !== "pending" && state.declineOpen === event.placement) state.declineOpen = null;
    refreshPlacements();
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

let placing = Promise.resolve();
function refreshPlacements() {
  placing = placing.then(loadPlacements).catch(() => {});
  return placing;
}

/** This hospital's answer in a placement request (the session's hospital; the only one when it is not known). */
function answerOf(p) {
  const answers = p.answers ?? {};
  if (state.hospital) return answers[state.hospital];
  const values = Object.values(answers);
  return values.length === 1 ? values[0] : undefined;
}

async function loadPlacements() {
  const data = await api("GET", "/api/v1/placements");
  const next = new Map();
  for (const p of data.placements ?? []) next.set(p.placement, p);
  state.placements = next;
  const fresh = [];
  for (const [id, p] of next) {
    if (answerOf(p) !== "pending" || state.watched.has(id)) continue;
    state.watched.add(id);
    fresh.push(id);
  }
  render();
  for (const id of fresh) alertPlacement(id);
}

/** Keeps `next` unless the board already shows a later revision (a read and a stream event may cross). */
function adoptAcceptance(next) {
  const current = state.acceptance;
  if (!next) return false;
  if (current && current.hospital === next.hospital && (next.revision ?? 0) <= (current.revision ?? 0)) return false;
  state.acceptance = next;
  return true;
}

async function loadAcceptance() {
  state.acceptanceRead = Date.now();
  try {
    const next = await api("GET", "/api/v1/acceptance");
    if (!adoptAcceptance(next)) return;
    render();
  } catch { /* kept; read again later */ }
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

/** Sounds (or notes that the browser would not let it) and counts one alert on the board. */
function sound() {
  state.alerts += 1;
  const sounded = beep();
  const board = $("board");
  board.dataset.alerts = String(state.alerts);
  board.dataset.lastBeep = sounded ? "sounded" : "muted";
}

function flash(card) {
  if (!card) return;
  card.classList.remove("flash");
  void card.offsetWidth; // restart the animation
  card.classList.add("flash");
  card.dataset.alerts = String(Number(card.dataset.alerts ?? 0) + 1);
}

function alertFor(set) {
  state.lastAlert.set(set, Date.now());
  sound();
  flash(document.querySelector(`[data-testid="patient-card"][data-set="${set}"]`));
}

/** A placement request waiting for this hospital's answer: alerts as a new patient does. */
function alertPlacement(id) {
  state.placementAlert.set(id, Date.now());
  sound();
  flash(document.querySelector(`[data-testid="placement-card"][data-placement="${id}"]`));
}

function tick() {
  tickClock();
  const now = Date.now();
  for (const node of document.querySelectorAll('[data-testid="patient-eta"], [data-testid="placement-eta"]')) paintEta(node, now);
  for (const node of document.querySelectorAll('[data-testid="placement-waiting"]')) paintWaiting(node, now);
  paintAcceptanceAge($("acceptance-age"), now);
  for (const [set, patient] of state.patients) {
    if (patient.status !== "received") continue;
    const last = state.lastAlert.get(set) ?? 0;
    if (now - last >= REALERT_SECONDS * 1000) alertFor(set);
  }
  for (const [id, p] of state.placements) {
    if (answerOf(p) !== "pending" || !state.placementAlert.has(id)) continue;
    if (now - state.placementAlert.get(id) >= REALERT_SECONDS * 1000) alertPlacement(id);
  }
  if (state.csrf && !state.acceptanceBusy && now - state.acceptanceRead >= ACCEPTANCE_POLL_SECONDS * 1000) loadAcceptance();
}

function tickClock() {
  $("board-clock").textContent = new Date().toLocaleTimeString(currentLang() === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function paintEta(node, now) {
  const left = node.dataset.givenAt && node.dataset.minutes ? etaLeft({ givenAt: node.dataset.givenAt, minutes: Number(node.dataset.minutes) }, now) : null;
  if (left == null) { node.textContent = t("eta.none"); node.dataset.overdue = "false"; return; }
  const total = Math.round(Math.abs(left) / 1000);
  const clock = `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
  node.dataset.overdue = String(left < 0);
  node.dataset.secondsLeft = String(Math.round(left / 1000));
  node.textContent = left >= 0 ? `${t("eta.in")} ${clock}` : `${t("eta.over")} +${clock}`;
}

/** "waiting 2:13" since the request was made. */
function paintWaiting(node, now) {
  const since = Date.parse(node.dataset.since);
  if (Number.isNaN(since)) { node.textContent = ""; return; }
  const total = Math.max(0, Math.round((now - since) / 1000));
  node.dataset.seconds = String(total);
  node.textContent = `${t("placement.waiting")} ${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

/** "updated 3 min ago" for the acceptance (or "never published" at revision 0). */
function paintAcceptanceAge(node, now) {
  const a = state.acceptance;
  const at = Date.parse(a?.updatedAt ?? "");
  if (!a || !a.revision || Number.isNaN(at)) { node.textContent = a ? t("acceptance.never") : ""; return; }
  const minutes = Math.max(0, Math.floor((now - at) / 60000));
  node.dataset.minutes = String(minutes);
  node.textContent = minutes < 1 ? t("acceptance.just")
    : minutes < 60 ? `${minutes}${t("acceptance.min")}` : `${Math.floor(minutes / 60)}${t("acceptance.hour")}`;
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

/** Publishes one condition: `{accepting: true}`, `{accepting: false, reason, note?}`, or null (unknown again). */
async function publish(condition, value) {
  state.acceptanceBusy = true;
  state.acceptanceFailed = false;
  render();
  try {
    adoptAcceptance(await api("PUT", "/api/v1/acceptance", { conditions: { [condition]: value } }));
    state.acceptanceRead = Date.now();
    state.editing = null; state.editReason = null; state.editNote = "";
  } catch {
    state.acceptanceFailed = true;
  } finally {
    state.acceptanceBusy = false;
    render();
  }
}

/** Accepts or declines a placement request; a 409 means another hospital accepted first or the crew withdrew. */
async function answer(id, path, body) {
  state.placementBusy = id;
  state.placementErrors.delete(id);
  render();
  try {
    const view = await api("POST", `/api/v1/placements/${encodeURIComponent(id)}/${path}`, body ?? {});
    const old = state.placements.get(id);
    if (view?.placement) state.placements.set(id, { ...old, ...view, summary: view.summary ?? old?.summary });
    state.declineOpen = null; state.declineReason = null; state.declineNote = "";
  } catch (failure) {
    state.placementErrors.set(id, failure.status === 409 ? "conflict" : "failed");
  } finally {
    state.placementBusy = null;
    render();
    await refreshPlacements();
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
  renderPlacements();
  renderAcceptance();
  const focusedId = document.activeElement?.dataset?.testid;
  const focused = ["divert-note", "acceptance-note", "placement-note"].includes(focusedId);
  const flashing = new Map([...cards.querySelectorAll('[data-testid="patient-card"]')].map((c) => [c.dataset.set, c]));
  cards.replaceChildren(...patients.map((p) => {
    const card = renderCard(p);
    const old = flashing.get(p.set);
    if (old?.classList.contains("flash")) card.classList.add("flash");
    if (old?.dataset.alerts) card.dataset.alerts = old.dataset.alerts;
    return card;
  }));
  if (focused) document.querySelector(`[data-testid="${focusedId}"]`)?.focus();
}

// MARK: placement requests

const ANSWER_RANK = { pending: 0 };

function renderPlacements() {
  const shown = [...state.placements.values()]
    .filter((p) => answerOf(p) === "pending" || (state.watched.has(p.placement) && !state.dismissed.has(p.placement)))
    .sort((a, b) => (ANSWER_RANK[answerOf(a)] ?? 1) - (ANSWER_RANK[answerOf(b)] ?? 1)
      || (PRIORITY_RANK[a.summary?.priority] ?? 3) - (PRIORITY_RANK[b.summary?.priority] ?? 3)
      || String(a.createdAt).localeCompare(String(b.createdAt)));
  const pending = shown.filter((p) => answerOf(p) === "pending").length;
  const panel = $("board-placements");
  panel.hidden = shown.length === 0;
  panel.dataset.pending = String(pending);
  $("placements-count").textContent = pending ? `${pending}${currentLang() === "ja" ? "" : " "}${t("placements.pending")}` : "";
  const list = $("placements-list");
  const old = new Map([...list.querySelectorAll('[data-testid="placement-card"]')].map((c) => [c.dataset.placement, c]));
  list.replaceChildren(...shown.map((p) => {
    const card = renderPlacement(p);
    const before = old.get(p.placement);
    if (before?.classList.contains("flash") && answerOf(p) === "pending") card.classList.add("flash");
    if (before?.dataset.alerts) card.dataset.alerts = before.dataset.alerts;
    return card;
  }));
}

function ageBand(decade) {
  if (typeof decade !== "number") return null;
  if (decade >= 11) return t("placement.age.max");
  return `${decade * 10}-${decade * 10 + 9}${t("placement.age")}`;
}

function renderPlacement(p) {
  const s = p.summary ?? {};
  const mine = answerOf(p) ?? "pending";
  const id = p.placement;
  const card = el("article", { class: "placement-card", testid: "placement-card", "data-placement": id, "data-answer": mine, "data-priority": s.priority ?? "none" });
  const eta = el("span", { class: "eta small", testid: "placement-eta", "data-given-at": s.etaMinutes != null ? p.createdAt : null, "data-minutes": s.etaMinutes });
  paintEta(eta, Date.now());
  const waiting = el("span", { class: "waiting", testid: "placement-waiting", "data-since": p.createdAt });
  paintWaiting(waiting, Date.now());
  const sex = s.sex === "male" ? t("male") : s.sex === "female" ? t("female") : null;
  card.append(el("div", { class: "head" },
    el("span", { class: "priority", testid: "placement-priority", "data-priority": s.priority ?? "none" }, t(`priority.${s.priority ?? "none"}`)),
    el("span", { class: "status", testid: "placement-status", "data-answer": mine }, t(`answer.short.${mine}`)),
    ageBand(s.ageDecade) ? el("span", { class: "who", testid: "placement-age", "data-decade": s.ageDecade }, ageBand(s.ageDecade)) : null,
    sex ? el("span", { class: "who", testid: "placement-sex", "data-sex": s.sex }, sex) : null,
    mine === "pending" ? waiting : null, eta));
  card.append(el("div", { class: "complaint", testid: "placement-complaint", "data-complaint": s.chiefComplaint },
    s.chiefComplaint ? t(`complaint.${s.chiefComplaint}`) : t("placement.complaint.none")));
  if ((s.needs ?? []).length) {
    card.append(el("div", { class: "needs", testid: "placement-needs" }, el("span", { class: "dim" }, t("placement.needs")),
      s.needs.map((need) => el("span", { class: "chip", testid: "placement-need", "data-need": need }, t(`cond.${need}`)))));
  }
  const error = state.placementErrors.get(id);
  card.append(el("div", { class: "error", testid: "placement-error", "data-kind": error, role: "alert", hidden: !error },
    !error ? "" : error === "conflict" && (mine === "placed-elsewhere" || mine === "cancelled") ? t(`placement.conflict.${mine}`) : t(`placement.${error}`)));
  if (mine === "pending") {
    const busy = state.placementBusy === id;
    card.append(el("div", { class: "actions" },
      el("button", { type: "button", class: "btn big ack", testid: "placement-accept", disabled: busy, onclick: () => answer(id, "accept") }, t("placement.accept")),
      el("button", { type: "button", class: "btn big divert", testid: "placement-decline", disabled: busy, "aria-pressed": String(state.declineOpen === id),
        onclick: () => { state.declineOpen = state.declineOpen === id ? null : id; state.declineReason = null; state.declineNote = ""; render(); } }, t("placement.decline"))));
    if (state.declineOpen === id) card.append(renderDecline(id, busy));
  } else {
    card.append(el("div", { class: "outcome", testid: "placement-outcome", "data-answer": mine },
      el("span", {}, t(`answer.${mine}`)),
      el("button", { type: "button", class: "btn", testid: "placement-dismiss", onclick: () => { state.dismissed.add(id); state.placementErrors.delete(id); render(); } }, t("dismiss"))));
  }
  return card;
}

function renderDecline(id, busy) {
  const ready = () => state.declineReason && (state.declineReason !== "other" || state.declineNote.trim().length > 0);
  const note = el("input", { testid: "placement-note", maxlength: 200, placeholder: t("divert.note"), value: state.declineNote });
  const send = el("button", { type: "button", class: "btn divert", testid: "placement-decline-send", disabled: !ready() || busy,
    onclick: () => answer(id, "decline", { reason: state.declineReason, ...(state.declineNote.trim() ? { note: state.declineNote.trim() } : {}) }) }, t("placement.decline.send"));
  note.addEventListener("input", () => { state.declineNote = note.value; send.disabled = !ready() || busy; });
  return el("div", { class: "divert-panel", testid: "placement-decline-panel" },
    el("div", {}, t("placement.decline.title")),
    el("div", { class: "reasons" }, REASONS.map((reason) => el("button", { type: "button", class: "btn", testid: `placement-reason-${reason}`, "aria-pressed": String(state.declineReason === reason), onclick: () => { state.declineReason = reason; render(); } }, t(`reason.${reason}`)))),
    note,
    el("div", { class: "actions" }, send, el("button", { type: "button", class: "btn", testid: "placement-decline-cancel", onclick: () => { state.declineOpen = null; render(); } }, t("divert.cancel"))));
}

// MARK: acceptance

function renderAcceptance() {
  const a = state.acceptance;
  const panel = $("acceptance-panel");
  panel.dataset.revision = String(a?.revision ?? 0);
  panel.dataset.updatedAt = a?.updatedAt ?? "";
  panel.dataset.busy = String(state.acceptanceBusy);
  $("acceptance-revision").textContent = a?.revision ? `${t("acceptance.revision")}${currentLang() === "ja" ? "" : " "}${a.revision}` : "";
  paintAcceptanceAge($("acceptance-age"), Date.now());
  $("acceptance-error").hidden = !state.acceptanceFailed;
  $("acceptance-conditions").replaceChildren(...CONDITIONS.map((condition) => {
    const entry = a?.conditions?.[condition];
    const which = entry == null ? "unknown" : entry.accepting ? "accepting" : "refusing";
    return el("button", {
      type: "button", class: "condition", testid: "acceptance-condition", "data-condition": condition, "data-state": which,
      "data-reason": entry?.reason, "aria-pressed": String(state.editing === condition), disabled: state.acceptanceBusy,
      onclick: () => { state.editing = state.editing === condition ? null : condition; state.editReason = null; state.editNote = ""; state.acceptanceFailed = false; render(); },
    },
    el("span", { class: "name", testid: "acceptance-condition-name" }, t(`cond.${condition}`)),
    el("span", { class: "state", testid: "acceptance-condition-state" }, which === "refusing" && entry.reason ? `${t("acc.refusing")}: ${t(`reason.${entry.reason}`)}` : t(`acc.${which}`)),
    entry?.note ? el("span", { class: "note", testid: "acceptance-condition-note" }, entry.note) : null);
  }));
  $("acceptance-edit-area").replaceChildren(...(state.editing ? [renderEditor(state.editing)] : []));
}

function renderEditor(condition) {
  const busy = state.acceptanceBusy;
  const current = state.acceptance?.conditions?.[condition];
  const wrap = el("div", { class: "acceptance-editor", testid: "acceptance-editor", "data-condition": condition },
    el("div", { class: "editor-title" }, t(`cond.${condition}`)));
  wrap.append(el("div", { class: "reasons" },
    el("button", { type: "button", class: "btn big arrived", testid: "acceptance-accept", disabled: busy, "aria-pressed": String(current?.accepting === true), onclick: () => publish(condition, { accepting: true }) }, t("acceptance.accept")),
    el("span", { class: "dim" }, t("acceptance.refuse")),
    REASONS.map((reason) => el("button", {
      type: "button", class: "btn big divert", testid: `acceptance-refuse-${reason}`, disabled: busy,
      "aria-pressed": String(state.editReason === reason || (state.editReason == null && current?.accepting === false && current.reason === reason)),
      // One tap publishes; "other" first asks for its note.
      onclick: () => { if (reason === "other") { state.editReason = "other"; render(); } else publish(condition, { accepting: false, reason }); },
    }, t(`reason.${reason}`)))));
  if (state.editReason === "other") {
    const ready = () => state.editNote.trim().length > 0;
    const note = el("input", { testid: "acceptance-note", maxlength: 200, placeholder: t("acceptance.note"), value: state.editNote });
    const send = el("button", { type: "button", class: "btn big divert", testid: "acceptance-send", disabled: !ready() || busy,
      onclick: () => publish(condition, { accepting: false, reason: "other", note: state.editNote.trim() }) }, t("acceptance.send"));
    note.addEventListener("input", () => { state.editNote = note.value; send.disabled = !ready() || busy; });
    wrap.append(el("div", { class: "note-row" }, note, send));
  }
  wrap.append(el("div", { class: "actions" },
    el("button", { type: "button", class: "btn", testid: "acceptance-clear", disabled: busy || current == null, onclick: () => publish(condition, null) }, t("acceptance.clear")),
    el("button", { type: "button", class: "btn", testid: "acceptance-cancel", onclick: () => { state.editing = null; state.editReason = null; render(); } }, t("divert.cancel"))));
  return wrap;
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
