// The gateway's HTTP API (docs: notes/api.md / docs/openapi): one fetch wrapper that sends cookies
// same-origin, the X-CSRF-Token on every state-changing request, a timeout (never a wait without an end),
// turns RFC 9457 problem+json answers into ApiError, and shows the "working… N s" strip for anything slower
// than 300 ms. Hooks let main.js react to 401 unauthenticated (sign in again) and 423 session-locked (PIN pad).

import { t } from "./i18n.js";

/** An API failure: `status` (0 for network/timeout), `slug` (the problem type's last segment), `problem`. */
export class ApiError extends Error {
  constructor(status, slug, problem = {}) {
    super(slug);
    this.status = status;
    this.slug = slug;
    this.problem = problem;
  }
}

let csrfToken = null;
const hooks = { unauthenticated: () => {}, locked: () => {} };
let lastActivityAt = Date.now();

/** Sets the CSRF token from a SessionView (null after sign-out). */
export function setCsrfToken(token) {
  csrfToken = token ?? null;
}

/** Registers `unauthenticated(problem)` and `locked(problem)` callbacks. */
export function setHooks(newHooks) {
  Object.assign(hooks, newHooks);
}

/** When the last request that counts as crew activity on the server (anything but the session routes) ran. */
export function lastServerActivity() {
  return lastActivityAt;
}

const busyThresholdMs = 300;
const inFlight = new Map();
let nextRequestId = 1;
let busyTimer = null;

function busyElement() {
  return document.querySelector('[data-testid="busy-indicator"]');
}

function updateBusy() {
  const el = busyElement();
  if (!el) return;
  const now = Date.now();
  const visible = [...inFlight.values()].filter((r) => !r.quiet && now - r.startedAt >= busyThresholdMs);
  if (visible.length === 0) {
    el.hidden = true;
    el.textContent = "";
    if (inFlight.size === 0 && busyTimer) {
      clearInterval(busyTimer);
      busyTimer = null;
    }
    return;
  }
  const oldest = Math.min(...visible.map((r) => r.startedAt));
  el.hidden = false;
  el.textContent = t("busy", { s: ((now - oldest) / 1000).toFixed(1) });
}

function track(quiet) {
  const id = nextRequestId++;
  inFlight.set(id, { startedAt: Date.now(), quiet });
  if (!busyTimer) busyTimer = setInterval(updateBusy, 100);
  return () => {
    inFlight.delete(id);
    updateBusy();
  };
}

function slugOf(problem) {
  const type = typeof problem?.type === "string" ? problem.type : "";
  return type.split("/").pop() || "error";
}

/**
 * Calls the API. Resolves with the parsed JSON body (null for 204), rejects with ApiError.
 * options: `timeoutMs` (default 15 s), `quiet` (no busy strip), `hooks` (false: the caller handles 401/423).
 */
export async function request(method, path, body = undefined, { timeoutMs = 15000, quiet = false, hooks: useHooks = true, csrfRetried = false } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const done = track(quiet);
  if (!path.startsWith("/api/v1/session")) lastActivityAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
      signal: controller.signal,
    });
  } catch (err) {
    const timedOut = controller.signal.aborted;
    throw new ApiError(0, timedOut ? "timeout" : "network", { timeoutSeconds: Math.round(timeoutMs / 1000) });
  } finally {
    clearTimeout(timer);
    done();
  }
  if (response.status === 204) return null;
  const contentType = response.headers.get("Content-Type") || "";
  let data = null;
  if (contentType.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const problem = data && typeof data === "object" ? data : { status: response.status };
  const slug = contentType.includes("problem+json") || problem.type ? slugOf(problem) : `http-${response.status}`;
  if (response.status === 403 && slug === "csrf" && !csrfRetried && method !== "GET" && path !== "/api/v1/session") {
    // The token may have changed under us (a restarted gateway): read the session again and retry once.
    try {
      const session = await request("GET", "/api/v1/session", undefined, { hooks: false, quiet: true });
      setCsrfToken(session?.csrfToken);
      return await request(method, path, body, { timeoutMs, quiet, hooks: useHooks, csrfRetried: true });
    } catch (err) {
      if (useHooks && err instanceof ApiError && err.status === 401 && err.slug === "unauthenticated") hooks.unauthenticated(err.problem);
      throw err;
    }
  }
  const error = new ApiError(response.status, slug, problem);
  if (useHooks && response.status === 401 && slug === "unauthenticated") hooks.unauthenticated(problem);
  if (useHooks && response.status === 423 && slug === "session-locked") hooks.locked(problem);
  throw error;
}

/** What went wrong, in words, for any error a request threw. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return t("err.generic");
  if (err.slug === "network") return t("err.network");
  if (err.slug === "timeout") return t("err.timeout", { s: err.problem.timeoutSeconds ?? 15 });
  if (err.slug === "csrf") return t("err.csrf");
  const detail = typeof err.problem.detail === "string" && err.problem.detail ? err.problem.detail : null;
  const headline = err.slug === "conflict" ? t("err.conflict") : err.slug === "not-found" ? t("err.notFound") : t("err.generic");
  if (!detail) return typeof err.problem.title === "string" && err.problem.title ? `${headline} ${t("err.detail", { detail: err.problem.title })}` : headline;
  return `${headline} ${t("err.detail", { detail })}`;
}

/** The API calls the screens use, one per route of the contract. */
export const api = {
  getSession: (quiet = true) => request("GET", "/api/v1/session", undefined, { hooks: false, quiet }),
  signIn: (crewId, password, totp) => request("POST", "/api/v1/session", { crewId, password, totp }, { hooks: false }),
  unlock: (pin) => request("POST", "/api/v1/session/unlock", { pin }, { hooks: false }),
  lock: () => request("POST", "/api/v1/session/lock", undefined, { hooks: false, quiet: true }),
  signOut: () => request("DELETE", "/api/v1/session", undefined, { hooks: false }),
  reader: (quiet = true) => request("GET", "/api/v1/reader", undefined, { quiet }),
  listIncidents: (quiet = false) => request("GET", "/api/v1/incidents", undefined, { quiet }),
  createIncident: () => request("POST", "/api/v1/incidents", {}),
  getIncident: (id, quiet = false) => request("GET", `/api/v1/incidents/${encodeURIComponent(id)}`, undefined, { quiet }),
  activate: (id) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/activate`, undefined, { quiet: true }),
  consent: (id, basis) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/consent`, { basis }),
  cardPin: (id, pin, confirmLastTry) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/pin`, { pin, confirmLastTry }),
  lookup: (id, query) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/lookup`, query),
  close: (id) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/close`, {}),
  details: (id, category) => request("GET", `/api/v1/incidents/${encodeURIComponent(id)}/details/${encodeURIComponent(category)}`),
  hospitals: () => request("GET", "/api/v1/hospitals", undefined, { quiet: true }),
  patchObservations: (id, patch) => request("PATCH", `/api/v1/incidents/${encodeURIComponent(id)}/observations`, patch),
  addVitals: (id, set) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/vitals`, set),
  deleteVitals: (id, index) => request("DELETE", `/api/v1/incidents/${encodeURIComponent(id)}/vitals/${Number(index)}`),
  addTreatment: (id, treatment) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/treatments`, treatment),
  deleteTreatment: (id, index) => request("DELETE", `/api/v1/incidents/${encodeURIComponent(id)}/treatments/${Number(index)}`),
  sendHandoff: (id, hospital) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/handoff`, { hospital }),
  rankHospitals: (id) => request("GET", `/api/v1/incidents/${encodeURIComponent(id)}/hospitals`, undefined, { quiet: true }),
  sendPlacement: (id, hospitals) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/placements`, { hospitals }),
  cancelPlacement: (id) => request("POST", `/api/v1/incidents/${encodeURIComponent(id)}/placements/cancel`, {}),
  eventsURL: (id) => `/api/v1/incidents/${encodeURIComponent(id)}/events`,
};
