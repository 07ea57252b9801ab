// Sign-in, once a shift: crew ID, password, and the TOTP code on a numeric keypad. Failures say so plainly
// (never which factor was wrong); a locked account shows the wait, counting down.

import { api, describeError, ApiError } from "./api.js";
import { h, notice, waitText, fill } from "./dom.js";
import { t } from "./i18n.js";

/** The sign-in screen. ctx: {signedIn(session)}; message: an info line to show first (e.g. why we are here). */
export function signInScreen(ctx, { message = null } = {}) {
  const form = { crewId: "", password: "", totp: "" };
  let errorText = null;
  let infoText = message;
  let lockedUntil = null;
  let busy = false;
  let el = null;
  let countdown = null;

  function lockMessage() {
    const left = (lockedUntil - Date.now()) / 1000;
    return left > 0 ? t("signin.locked", { wait: waitText(left) }) : t("signin.unlockedNow");
  }

  function startCountdown() {
    if (countdown) clearInterval(countdown);
    countdown = setInterval(() => {
      const msg = el?.querySelector('[data-testid="signin-locked"] span');
      if (msg) msg.textContent = lockMessage();
      if (lockedUntil !== null && Date.now() >= lockedUntil) {
        clearInterval(countdown);
        countdown = null;
        render();
      }
    }, 1000);
  }

  async function submit(e) {
    e.preventDefault();
    if (busy) return;
    const crewId = form.crewId.trim();
    const totp = form.totp.normalize("NFKC").replace(/\s/g, "");
    if (!crewId || !form.password || !totp) {
      errorText = t("signin.missing");
      lockedUntil = null;
      render();
      return;
    }
    busy = true;
    errorText = null;
    infoText = null;
    render();
    try {
      const session = await api.signIn(crewId, form.password, totp);
      form.password = "";
      form.totp = "";
      busy = false;
      ctx.signedIn(session);
      return;
    } catch (err) {
      form.totp = "";
      if (err instanceof ApiError && err.slug === "account-locked") {
        lockedUntil = Date.now() + (Number(err.problem.retryAfterSeconds) || 60) * 1000;
        errorText = null;
        startCountdown();
      } else if (err instanceof ApiError && err.slug === "sign-in-failed") {
        lockedUntil = null;
        errorText = t("signin.failed");
      } else {
        lockedUntil = null;
        errorText = describeError(err);
      }
    }
    busy = false;
    render();
  }

  const input = (name, testid, attrs) =>
    h("input", {
      class: "input",
      testid,
      value: form[name],
      spellcheck: "false",
      autocapitalize: "off",
      autocorrect: "off",
      ...attrs,
      on: {
        input: (e) => {
          form[name] = e.target.value;
        },
      },
    });

  function render() {
    if (!el) return;
    const locked = lockedUntil !== null && Date.now() < lockedUntil;
    fill(el,
      h(
        "form",
        { class: "card-box signin", testid: "signin-form", novalidate: true, on: { submit } },
        h("h1", { class: "view-title" }, t("signin.title")),
        h("p", { class: "view-sub" }, t("signin.sub")),
        infoText ? notice(infoText, { kind: "info", testid: "signin-notice", iconName: "info" }) : null,
        h("label", { class: "field" }, h("span", { class: "field-label" }, t("signin.crewId")), input("crewId", "signin-crew-id", { autocomplete: "username", name: "username" })),
        h("label", { class: "field" }, h("span", { class: "field-label" }, t("signin.password")), input("password", "signin-password", { type: "password", autocomplete: "current-password", name: "password" })),
        h(
          "label",
          { class: "field" },
          h("span", { class: "field-label" }, t("signin.totp")),
          input("totp", "signin-totp", { inputmode: "numeric", pattern: "[0-9]*", maxlength: "8", autocomplete: "one-time-code", name: "totp", class: "input input-code" }),
        ),
        errorText ? notice(errorText, { testid: "signin-error" }) : null,
        lockedUntil !== null ? notice(lockMessage(), { testid: "signin-locked", kind: locked ? "error" : "info" }) : null,
        h("button", { type: "submit", class: "btn btn-huge btn-primary", testid: "signin-submit", disabled: busy || locked }, t("signin.submit")),
      ),
    );
  }

  return {
    mount(root) {
      el = h("section", { class: "screen screen-signin", testid: "screen-signin" });
      root.append(el);
      render();
      el.querySelector('[data-testid="signin-crew-id"]')?.focus();
    },
    render,
    dispose() {
      if (countdown) clearInterval(countdown);
      form.password = "";
    },
  };
}
