"""The ER board in one browser, for the board's tests: bounded waits, taps once an element is enabled (counted),
typing, and numbered screenshots state/screenshots/<prefix>-<n>-<state>.png (the old ones of the prefix removed)."""
from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from stack import SCREENSHOTS
from tablet import IGNORED

WAIT = 15


class BoardPage:
    def __init__(self, browser, prefix: str) -> None:
        self.browser = browser
        self.prefix = prefix
        self.shots = 0
        self.taps = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{prefix}-*.png"):
            old.unlink()

    def js(self, script: str, *args):
        return self.browser.execute_script(script, *args)

    def wait(self, condition, what: str, timeout: float = WAIT):
        try:
            return WebDriverWait(self.browser, timeout, poll_frequency=0.05, ignored_exceptions=IGNORED).until(
                lambda _: condition(), message=what)
        except Exception:
            self.shot("timeout")
            raise

    def tap(self, css: str) -> None:
        """Clicks the element once it is enabled (found again if a re-render replaced it meanwhile)."""
        def clicked() -> bool:
            element = self.browser.find_element(By.CSS_SELECTOR, css)
            if not element.is_enabled():
                return False
            element.click()
            return True
        self.wait(clicked, f"{css} enabled and clicked")
        self.taps += 1

    def type(self, css: str, text: str) -> None:
        def typed() -> bool:
            self.browser.find_element(By.CSS_SELECTOR, css).send_keys(text)
            return True
        self.wait(typed, f"typed into {css}")

    def shot(self, state: str) -> None:
        self.shots += 1
        self.browser.save_screenshot(str(SCREENSHOTS / f"{self.prefix}-{self.shots}-{state}.png"))
