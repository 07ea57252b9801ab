// The tablet app's entry: restores the session on load (GET /api/v1/session → sign-in, lock, or the screen the
// URL hash names: #/incident/<id>, else the incident list), switches screens, keeps the top bar (language,
// theme, menu with lock and sign-out), and locks the tablet after idleLockSeconds without a touch.
// Touches keep the gateway's own idle timer alive with a cheap GET /api/v1/reader at most once a minute.

import { api, setCsrfToken, setHooks, lastServerActivity, describeError } from "./api.js";
import { confirmDialog } from "./dom.js";
import { t, lang, setLang, onLangChange } from "./i18n.js";
import { signInScreen } from "./screen-signin.js";
import { lockScreen } from "./screen-lock.js";
import { incidentsScreen } from "./screen-incidents.js";
import { incidentScreen } from "./screen-incident.js";

const root = document.getElementById("screen");
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const app = {
  session: null,
  screen: null,
  screenKey: null,
  flash: null,
  lastTouch: Date.now(),
};

// ---- theme ----------------------------------------------------------------------------------------------
const themeKey = "kyukyu.theme";
const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

function storedTheme() {
  try {
    const v = localStorage.getItem(themeKey);
    return v === "day" || v === "night" ? v : null;
  } catch {
    return null;
  }
}

function applyTheme() {
  const theme = storedTheme() ?? (darkQuery.matches ? "night" : "day");
  document.documentElement.dataset.theme = theme;
  $("theme-toggle").textContent = theme === "night" ? t("top.theme.toDay") : t("top.theme.toNight");
  $("theme-toggle").dataset.theme = theme;
}

darkQuery.addEventListener("change", applyTheme);

// ---- chrome -------------------------------------------------------------------------------------------
function updateChrome() {
  document.documentElement.lang = lang();
  document.title = t("app.docTitle");
  $("app-title").textContent = t("app.title");
  $("lang-toggle").textContent = t("top.lang");
  $("lang-toggle").setAttribute("lang", lang() === "ja" ? "en" : "ja");
  $("menu-button").textContent = t("top.menu");
  $("menu-lock").textContent = t("menu.lock");
  $("menu-signout").textContent = t("menu.signout");
  const signedIn = app.session !== null;
  const unlocked = signedIn && !app.session.locked;
  $("menu-button").hidden = !signedIn;
  $("menu-lock").hidden = !unlocked;
  $("crew-id").hidden = !signedIn;
  $("crew-id").textContent = signedIn ? t("top.crew", { crew: app.session.crewId }) : "";
  if (!signedIn) closeMenu();
  applyTheme();
}

function openMenu() {
  $("menu").hidden = false;
  $("menu-button").setAttribute("aria-expanded", "true");
}

function closeMenu() {
  $("menu").hidden = true;
  $("menu-button").setAttribute("aria-expanded", "false");
}

$("lang-toggle").addEventListener("click", () => setLang(lang() === "ja" ? "en" : "ja"));
$("theme-toggle").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "night" ? "day" : "night";
  try {
    localStorage.setItem(themeKey, next);
  } catch {
    // Not persisted; applies to this page only.
  }
  document.documentElement.dataset.theme = next;
  applyTheme();
});
$("menu-button").addEventListener("click", (e) => {
  e.stopPropagation();
  if ($("menu").hidden) openMenu();
  else closeMenu();
});
document.addEventListener("click", (e) => {
  if (!$("menu").hidden && !$("menu").contains(e.target)) closeMenu();
});
$("menu-lock").addEventListener("click", () => {
  closeMenu();
  lockNow();
});
$("menu-signout").addEventListener("click", async () => {
  closeMenu();
  if (await confirmDialog(t("menu.signout.confirm"), { yes: t("menu.signout"), testid: "signout-confirm" })) signOut();
});

onLangChange(() => {
  updateChrome();
  app.screen?.render?.();
});

// ---- screens ------------------------------------------------------------------------------------------
function show(key, screen) {
  app.screen?.dispose?.();
  app.screen = screen;
  app.screenKey = key;
  root.replaceChildren();
  root.dataset.screen = key.split(":")[0];
  screen.mount(root);
  updateChrome();
  window.scrollTo(0, 0);
}

const ctx = {
  navigate(hash) {
    if (hash === "" || hash === "#") {
      if (location.hash) history.pushState(null, "", location.pathname);
      route();
    } else if (location.hash !== hash) location.hash = hash;
    else route();
  },
  flash(text) {
    app.flash = text;
  },
  takeFlash() {
    const text = app.flash;
    app.flash = null;
    return text;
  },
  signedIn(session) {
    setSession(session);
    route();
  },
  unlocked(session) {
    setSession(session);
    app.lastTouch = Date.now();
    route();
  },
  signedOut(message) {
    clearSession();
    showSignIn(message);
  },
  signOut,
  get session() {
    return app.session;
  },
};

function setSession(session) {
  app.session = session;
  setCsrfToken(session?.csrfToken);
  updateChrome();
}

function clearSession() {
  app.session = null;
  setCsrfToken(null);
  updateChrome();
}

function showSignIn(message = null) {
  show("signin", signInScreen(ctx, { message }));
}

function showLock() {
  if (app.screenKey === "lock") return;
  show("lock", lockScreen(ctx));
}

function incidentIdFromHash() {
  const m = location.hash.match(/^#\/incident\/([0-9A-Za-z-]{1,64})$/);
  return m ? m[1] : null;
}

function route() {
  if (!app.session) return showSignIn();
  if (app.session.locked) return showLock();
  const id = incidentIdFromHash();
  const key = id ? `incident:${id}` : "incidents";
  if (app.screenKey === key) return;
  if (id) show(key, incidentScreen(ctx, id));
  else show(key, incidentsScreen(ctx));
}

window.addEventListener("hashchange", route);
window.addEventListener("popstate", route);

async function signOut() {
  try {
    await api.signOut();
  } catch (err) {
    // The session may already be gone; the local state is cleared either way.
    app.flash = describeError(err);
  }
  clearSession();
  if (location.hash) history.replaceState(null, "", location.pathname);
  showSignIn();
}

function lockNow() {
  if (!app.session || app.session.locked) return;
  app.session.locked = true;
  showLock();
  api.lock().catch(() => {});
}

setHooks({
  unauthenticated() {
    if (!app.session) return;
    clearSession();
    showSignIn(t("signin.expired"));
  },
  locked() {
    if (!app.session) return;
    app.session.locked = true;
    showLock();
  },
});

// ---- idle lock and keep-alive -------------------------------------------------------------------------
const keepAliveMs = 60_000;

function touched() {
  app.lastTouch = Date.now();
  if (app.session && !app.session.locked && Date.now() - lastServerActivity() > keepAliveMs) api.reader().catch(() => {});
}

for (const event of ["pointerdown", "keydown", "touchstart", "wheel"]) document.addEventListener(event, touched, { capture: true, passive: true });

setInterval(() => {
  if (!app.session || app.session.locked) return;
  const idleMs = (Number(app.session.idleLockSeconds) || 300) * 1000;
  if (Date.now() - app.lastTouch >= idleMs) lockNow();
}, 1000);

// The gateway locks on its own clock too; ask now and then so the PIN pad appears without waiting for a 423.
setInterval(async () => {
  if (!app.session) return;
  try {
    const session = await api.getSession();
    const wasLocked = app.session?.locked === true;
    // Only the PIN unlocks: a tablet that locked itself stays locked even if the gateway missed the lock.
    setSession({ ...session, locked: session.locked || wasLocked });
    if (session.locked && !wasLocked) showLock();
    if (wasLocked && !session.locked) api.lock().catch(() => {});
  } catch (err) {
    if (err?.status === 401 && app.session) {
      clearSession();
      showSignIn(t("signin.expired"));
    }
  }
}, 30_000);

// ---- boot ---------------------------------------------------------------------------------------------
async function boot() {
  updateChrome();
  try {
    setSession(await api.getSession(false));
  } catch (err) {
    if (err?.status === 401) clearSession();
    else {
      // The gateway is not answering (restarting?): say so and try again.
      root.replaceChildren();
      const p = document.createElement("p");
      p.className = "notice notice-error";
      p.dataset.testid = "boot-error";
      p.setAttribute("role", "alert");
      p.textContent = describeError(err);
      root.append(p);
      setTimeout(boot, 2000);
      return;
    }
  }
  route();
}

boot();
