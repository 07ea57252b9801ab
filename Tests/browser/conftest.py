"""Fixtures of the browser tests: one real stack per scenario (scripts/stack.sh, fresh state folder under
state/browser/<scenario>, always stopped in teardown), one headless chromium per scenario (scripts/browser-smoke.py's
driver(): Debian's chromium and /usr/bin/chromedriver, SE_OFFLINE=true), and the record of every stack and synthetic
patient used, for the PHI-at-rest test that runs last.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import BROWSER_STATE, PKI_SEED, Stack, bin_dir  # noqa: E402
from tablet import Tablet, browser_smoke  # noqa: E402


class Used:
    """Every stack (its state folder), every synthetic patient number and every free-text note the scenarios used."""

    def __init__(self) -> None:
        self.stacks: list[Stack] = []
        self.patients: set[int] = set()
        self.notes: set[str] = set()


USED = Used()


@pytest.fixture(scope="session")
def used() -> Used:
    return USED


@pytest.fixture(scope="session", autouse=True)
def _clean_state():
    """Checks the prerequisites, then clears what an earlier run left under state/browser (stopping its stacks)."""
    for executable in ("kyukyu-gateway", "kyukyu-card-sim", "kyukyu-eligibility-sim"):
        path = bin_dir() / executable
        if not os.access(path, os.X_OK):
            pytest.exit(f"{path} is not built (swift build, or set KYUKYU_BIN_DIR)", returncode=2)
    if os.geteuid() != 0:
        pytest.exit("the stack needs root (a private pcscd in its own mount namespace)", returncode=2)
    if BROWSER_STATE.is_dir():
        for old in BROWSER_STATE.iterdir():
            if old == PKI_SEED or not old.is_dir():
                continue
            if (old / "run").is_dir():
                Stack(old.name)._run("stop", str(old), timeout=90)
            shutil.rmtree(old)
    BROWSER_STATE.mkdir(parents=True, exist_ok=True)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def stacks(request):
    """Starts stacks for one scenario: `stacks(name, holder=3, ...)`. Teardown stops each (nothing keeps running)."""
    started: list[Stack] = []

    def start(name: str, **options) -> Stack:
        stack = Stack(name, **options)
        started.append(stack)
        stack.start()
        USED.stacks.append(stack)
        USED.patients.add(stack.holder)
        return stack

    yield start
    errors = []
    for stack in reversed(started):
        try:
            stack.stop()
        except Exception as error:  # keep stopping the others; report at the end
            errors.append(error)
    for stack in started:
        print(f"\n[browser] stack {stack.name}: start {stack.start_seconds:.1f} s, stop {stack.stop_seconds:.1f} s")
        for note in stack.stop_notes:
            print(f"[browser] stack {stack.name}: {note}")
    if errors:
        raise errors[0]


@pytest.fixture
def tablet_for(request):
    """Opens a headless chromium for `tablet_for(stack, scenario)`; on a failure a last screenshot; always quits."""
    opened: list[Tablet] = []

    def open_tablet(stack: Stack, scenario: str) -> Tablet:
        browser = browser_smoke.driver()
        browser.set_page_load_timeout(30)
        browser.set_script_timeout(10)
        tablet = Tablet(browser, stack, scenario)
        opened.append(tablet)
        return tablet

    yield open_tablet
    for tablet in opened:
        try:
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                tablet.shot("failed")
        finally:
            tablet.browser.quit()
