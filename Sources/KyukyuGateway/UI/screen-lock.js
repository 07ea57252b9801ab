// The lock screen: after 5 minutes without a touch (or when the gateway answers 423 session-locked) a big crew
// PIN pad unlocks the shift session. A wrong PIN shows the tries left; after too many the gateway ends the
// session and the app returns to sign-in. Nothing of the incident stays on screen behind it.

import { api, describeError, ApiError } from "./api.js";
import { h, icon, notice, fill, confirmDialog } from "./dom.js";
import { t, tn } from "./i18n.js";
import { pinPad } from "./pinpad.js";

/** The lock screen. ctx: {session, unlocked(session), signedOut(message), signOut()}. */
export function lockScreen(ctx) {
  const buffer = { digits: "" };
  let errorText = null;
  let busy = false;
  let el = null;

  async function submit(pin) {
    if (busy) return;
    busy = true;
    errorText = null;
    render();
    try {
      const session = await api.unlock(pin);
      buffer.digits = "";
      busy = false;
      ctx.unlocked(session);
      return;
    } catch (err) {
      if (err instanceof ApiError && err.slug === "wrong-pin") errorText = tn("lock.wrong", err.problem.triesLeft ?? "?");
      else if (err instanceof ApiError && err.slug === "unauthenticated") {
        busy = false;
        ctx.signedOut(t("signin.ended"));
        return;
      } else errorText = describeError(err);
    }
    buffer.digits = "";
    busy = false;
    render();
  }

  async function signOut() {
    if (await confirmDialog(t("menu.signout.confirm"), { yes: t("menu.signout"), testid: "signout-confirm" })) ctx.signOut();
  }

  function render() {
    if (!el) return;
    fill(el,
      h(
        "div",
        { class: "lock-box" },
        h("h1", { class: "view-title" }, icon("clock", "icon icon-big"), t("lock.title")),
        ctx.session?.crewId ? h("p", { class: "lock-crew", testid: "lock-crew" }, t("top.crew", { crew: ctx.session.crewId })) : null,
        h("p", { class: "view-sub" }, t("lock.hint")),
        errorText ? notice(errorText, { testid: "lock-error" }) : null,
        pinPad({ buffer, minLength: 4, maxLength: 8, prefix: "lock-pin", disabled: busy, onSubmit: submit }),
        h("button", { type: "button", class: "btn btn-big", testid: "lock-signout", on: { click: signOut } }, t("lock.signout")),
      ),
    );
  }

  return {
    mount(root) {
      el = h("section", { class: "screen screen-lock", testid: "screen-lock" });
      root.append(el);
      render();
    },
    render,
    dispose() {
      buffer.digits = "";
    },
  };
}
