#!/usr/bin/env python3
"""Checks that the browser tests' setup works here: Debian's headless chromium, driven over WebDriver by
Debian's chromedriver through selenium, takes a screenshot of a page with Japanese text.

Nothing is downloaded: the driver is /usr/bin/chromedriver and SE_OFFLINE=true keeps selenium-manager from
fetching a browser or a driver. This is also the setup the browser tests use (see `driver()` below).

    scripts/browser-smoke.py [OUT.png]      # default state/browser-smoke.png; prints the PNG's size
"""
import os
import sys

os.environ["SE_OFFLINE"] = "true"  # before selenium is imported: selenium-manager never downloads anything

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def driver(width: int = 1280, height: int = 800) -> webdriver.Chrome:
    """A headless chromium (Debian's), sized like a 10-inch tablet in landscape, run as root without a sandbox."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=ja-JP",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else "state/browser-smoke.png"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    browser = driver()
    try:
        browser.get(
            "data:text/html;charset=utf-8,<html lang=ja><body style='font:32px sans-serif'>"
            "<h1 id=t>救急 テスト（SYNTHETIC）</h1></body></html>"
        )
        title = browser.find_element("id", "t").text
        if "救急" not in title:
            print(f"browser-smoke: unexpected text {title!r}", file=sys.stderr)
            return 1
        if not browser.save_screenshot(out):
            print("browser-smoke: no screenshot", file=sys.stderr)
            return 1
        print(f"browser-smoke: {browser.capabilities.get('browserVersion')} screenshot {out} "
              f"({os.path.getsize(out)} bytes)")
    finally:
        browser.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
