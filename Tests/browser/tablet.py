"""The paramedic's tablet, driven through Debian's headless chromium: taps (counted), bounded waits on the
`data-testid`s of Sources/KyukyuGateway/UI/TESTIDS.md, and a screenshot of each meaningful state under
state/screenshots/<scenario>-<n>-<state>.png.

Every wait is a WebDriverWait with a time limit (polling the page); nothing sleeps for timing.
"""
from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from stack import REPO, SCREENSHOTS, Stack

# browser-smoke.py sets SE_OFFLINE=true before it imports selenium: load it first, then use its driver().
_spec = importlib.util.spec_from_file_location("browser_smoke", REPO / "scripts" / "browser-smoke.py")
browser_smoke = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser_smoke)

from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

IGNORED = (StaleElementReferenceException, NoSuchElementException, ElementNotInteractableException)

# Time limits (seconds). The flows themselves take well under a second each on this machine (card to summary
# ~0.2 s); the limits leave room for a loaded 2-core CI box, and every wait names what it waited for.
SHORT = 10
READ = 30


def tid(testid: str, extra: str = "") -> str:
    """The CSS selector of a data-testid (plus an attribute filter such as `[data-state="read"]`)."""
    return f'[data-testid="{testid}"]{extra}'


def totp(secret: str) -> str:
    """The current TOTP code, from scripts/totp.py (standard library; the same one `make run` prints)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "totp.py"), secret],
        capture_output=True, text=True, timeout=10, check=True, stdin=subprocess.DEVNULL,
    )
    return done.stdout.strip()


class Tablet:
    """One browser on one stack, for one scenario."""

    def __init__(self, browser: WebDriver, stack: Stack, scenario: str) -> None:
        self.browser = browser
        self.stack = stack
        self.scenario = scenario
        self.taps = 0
        self.shots: list[Path] = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{scenario}-*.png"):
            old.unlink()

    # MARK: - seeing

    def js(self, script: str, *args: object) -> object:
        return self.browser.execute_script(script, *args)

    def query(self, css: str) -> dict | None:
        """What one element shows now: present, visible, its text and data-* values; None when absent."""
        return self.js(
            """
            const el = document.querySelector(arguments[0]);
            if (!el) return null;
            const visible = !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length) && !el.closest('[hidden]');
            return {visible, text: el.innerText, data: Object.assign({}, el.dataset),
                    disabled: !!el.disabled, ariaExpanded: el.getAttribute('aria-expanded')};
            """,
            css,
        )

    def data(self, css: str, key: str) -> str | None:
        found = self.query(css)
        return None if found is None else found["data"].get(key)

    def api_get(self, path: str) -> object:
        """GET a gateway API path from inside the page (the tablet's own session cookie), as JSON."""
        return self.js("return fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.json())", path)

    def count(self, css: str) -> int:
        return int(self.js("return document.querySelectorAll(arguments[0]).length", css))

    def wait(self, condition: Callable[[], object], what: str, timeout: float = SHORT) -> object:
        """Polls `condition` until it returns something truthy, for at most `timeout` seconds."""
        try:
            return WebDriverWait(self.browser, timeout, poll_frequency=0.05, ignored_exceptions=IGNORED).until(
                lambda _: condition(), message=what
            )
        except TimeoutException:
            self.shot("timeout")
            raise

    def wait_visible(self, css: str, timeout: float = SHORT) -> dict:
        return self.wait(lambda: (q := self.query(css)) and q["visible"] and q, f"{css} visible", timeout)

    def wait_data(self, css: str, key: str, values: set[str] | str, timeout: float = SHORT) -> str:
        wanted = {values} if isinstance(values, str) else values
        return self.wait(
            lambda: (v := self.data(css, key)) in wanted and v,
            f"{css} data-{key} in {sorted(wanted)} (last: {self.data(css, key)!r})",
            timeout,
        )

    def screen(self) -> str | None:
        return self.data(tid("screen"), "screen")

    def wait_screen(self, name: str, timeout: float = SHORT) -> None:
        self.wait_data(tid("screen"), "screen", name, timeout)

    def incident_view(self) -> str | None:
        return self.data(tid("screen-incident"), "view")

    def wait_view(self, name: str, timeout: float = SHORT) -> None:
        self.wait_data(tid("screen-incident"), "view", name, timeout)

    def shot(self, state: str) -> Path:
        """A screenshot of what the tablet shows now: state/screenshots/<scenario>-<n>-<state>.png."""
        path = SCREENSHOTS / f"{self.scenario}-{len(self.shots) + 1}-{state}.png"
        try:  # the whole page (the summary is taller than the screen), through the DevTools protocol
            width, height = self.js(
                "const d = document.documentElement; return [d.clientWidth, Math.min(d.scrollHeight, 8000)]"
            )
            shot = self.browser.execute_cdp_cmd(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True,
                 "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
            )
            path.write_bytes(base64.b64decode(shot["data"]))
        except Exception:  # noqa: BLE001 (a screenshot is evidence, not the test: fall back to the viewport)
            self.browser.save_screenshot(str(path))
        self.shots.append(path)
        return path

    # MARK: - touching

    def tap(self, testid: str, extra: str = "", timeout: float = SHORT) -> None:
        """One tap on a visible, enabled element (counted in `taps`)."""
        css = tid(testid, extra)

        def attempt() -> bool:
            element = self.browser.find_element(By.CSS_SELECTOR, css)
            if not element.is_displayed() or not element.is_enabled():
                return False
            try:
                element.click()
            except ElementClickInterceptedException:
                return False
            return True

        self.wait(attempt, f"tap {css}", timeout)
        self.taps += 1

    def type(self, testid: str, text: str) -> None:
        """Types into an input (keyboard, not a tap: not counted)."""
        css = tid(testid)

        def attempt() -> bool:
            element = self.browser.find_element(By.CSS_SELECTOR, css)
            element.clear()
            element.send_keys(text)
            return element.get_attribute("value") == text

        self.wait(attempt, f"type into {css}", SHORT)

    def pin(self, prefix: str, digits: str) -> None:
        """Taps a PIN on the pad `<prefix>-key-N`, then OK."""
        for digit in digits:
            self.tap(f"{prefix}-key-{digit}")
        self.wait_data(tid(f"{prefix}-display"), "length", str(len(digits)))
        self.tap(f"{prefix}-ok")

    # MARK: - the flow's common steps

    def open(self) -> None:
        self.browser.get(self.stack.url)
        self.wait(lambda: self.screen() in {"signin", "incidents", "incident", "lock"}, "the app's first screen", 30)

    def sign_in(self) -> None:
        """Sign-in at the start of the shift: crew ID, password and the current TOTP code."""
        self.open()
        self.wait_screen("signin")
        self.shot("signin")
        env = self.stack.env
        self.type("signin-crew-id", env["KYUKYU_DEMO_CREW_ID"])
        self.type("signin-password", env["KYUKYU_DEMO_CREW_PASSWORD"])
        self.type("signin-totp", totp(env["KYUKYU_DEMO_CREW_TOTP_SECRET"]))
        self.tap("signin-submit")
        self.wait_screen("incidents", 20)
        self.wait_visible(tid("incident-new"))
        self.wait_visible(tid("crew-id"))
        assert env["KYUKYU_DEMO_CREW_ID"] in self.query(tid("crew-id"))["text"]
        self.shot("incidents")

    def new_incident(self) -> str:
        """New incident (one tap): the consent view of a new incident; returns its id."""
        self.tap("incident-new")
        self.wait_screen("incident")
        self.wait_view("consent")
        incident_id = self.data(tid("screen-incident"), "incidentId")
        assert incident_id and len(incident_id) >= 8, incident_id
        assert self.browser.current_url.endswith(f"#/incident/{incident_id}")
        # A card already on the reader is read at once (before the consent tap): created, then identified.
        self.wait_data(tid("incident-phase"), "phase", {"created", "identified"})
        return incident_id

    def statuses(self) -> dict[str, str]:
        """Every category's status chip now (one read of the page)."""
        return self.js(
            """
            const out = {};
            for (const el of document.querySelectorAll('[data-testid^="status-"]')) {
              out[el.dataset.testid.slice(7)] = el.dataset.status;
            }
            return out;
            """
        )

    def summary_settled(self) -> bool:
        """Every category ended: arrived, none on record or late (`data-done`), or failed, timed out or cancelled
        (`data-failed`)."""
        progress = self.query(tid("summary-progress"))
        if not progress or progress["data"].get("total") is None:
            return False
        data = progress["data"]
        return int(data.get("done") or 0) + int(data.get("failed") or 0) == int(data["total"])

    def wait_summary(self, timeout: float = READ, settled: bool = True) -> dict:
        """The summary view with the patient present (and, when `settled`, every category finished)."""
        self.wait_view("summary", timeout)
        self.wait_data(tid("patient-header"), "state", "present", timeout)
        if settled:
            self.wait(self.summary_settled, "every category finished", timeout)
        return self.query(tid("patient-name"))

    def assert_patient(self, expected) -> None:
        """The summary shows the synthetic patient `expected` (a stack.Patient)."""
        name = self.query(tid("patient-name"))["text"]
        kana = self.query(tid("patient-kana"))["text"]
        squash = lambda s: s.replace("\u3000", "").replace(" ", "")  # noqa: E731
        assert squash(name) == squash(expected.name), (name, expected.name)
        assert squash(kana) == squash(expected.kana), (kana, expected.kana)
        assert self.query(tid("synthetic-badge"))["visible"]


def now() -> float:
    return time.monotonic()
