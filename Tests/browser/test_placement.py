"""The live hospital picker and a placement request (issue 12), end to end: a region's hub (`kyukyu-drill hub`: a
private PostgreSQL, a `kyukyu-hospital serve` instance on it behind HAProxy, three fictitious hospitals 9999999991-3
with a staff account each) and an ambulance's stack sending to it (`scripts/stack.sh` with KYUKYU_STACK_HUB). The
hospitals' staff act through the hub's staff API over HTTPS (sign-in with password and TOTP, CSRF token).

The patient is the card simulator's holder 6, on dialysis. The picker puts the hospital accepting dialysis first,
the one declining it last with its reason in words, the silent one in between as unknown; a hospital's publication
through the hub re-ranks the tablet with no tap; a placement request to two hospitals, one staff accepts: the tablet
shows the patient placed there, the other hospital told, and the document goes there. Screenshots under
state/screenshots/placement-*.png.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from stack import BROWSER_STATE, REPO, bin_dir, port_base
from tablet import READ, Tablet, tid, totp

FIRST, SECOND, THIRD = "9999999991", "9999999992", "9999999993"


class Hub:
    """`kyukyu-drill hub` in state/browser/placement-hub: one instance, three hospitals, ambulance-01's certificate.
    Its ports are port_base()+97 (the balancer), +98 (the instance) and +99 (PostgreSQL)."""

    def __init__(self) -> None:
        self.dir = BROWSER_STATE / "placement-hub"
        self.port = port_base() + 97
        self.log = BROWSER_STATE / "placement-hub.log"
        self.process: subprocess.Popen | None = None
        self.region: dict = {}

    def start(self, timeout: float = 180) -> "Hub":
        executable = bin_dir() / "kyukyu-drill"
        if not os.access(executable, os.X_OK):
            pytest.skip(f"{executable} is not built")
        region = self.dir / "region.json"
        if region.exists():
            region.unlink()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(executable), "hub", "--dir", str(self.dir), "--port", str(self.port), "--instances", "1",
                 "--hospitals", "3", "--device", "ambulance-01"],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "KYUKYU_BIN_DIR": str(bin_dir())}, start_new_session=True,
            )
        # region.json is written once every part answers (as scripts/region.sh waits for it).
        deadline = time.monotonic() + timeout
        while not (region.exists() and region.stat().st_size > 0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the hub did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)  # polling a starting process, not timing a test
        self.region = json.loads((self.dir / "region.json").read_text())
        # The balancer lets requests through once its health check has seen the instance up twice.
        parts = urlsplit(self.region["url"])
        context = ssl.create_default_context(cafile=self.region["ca"])
        while True:
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=5)
            try:
                connection.request("GET", "/health/live")
                if connection.getresponse().status == 200:
                    break
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the hub's balancer does not answer: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)  # polling a starting process, not timing a test
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)

    def staff(self, hospital: str) -> "Staff":
        account = next(s for s in self.region["staff"] if s["hospital"] == hospital)
        return Staff(self.region["url"], self.region["ca"], account)


class Staff:
    """One hospital's staff member signed in to the hub's staff API (HTTPS with the region's CA)."""

    def __init__(self, url: str, ca: str, account: dict) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.context = ssl.create_default_context(cafile=ca)
        self.cookie = ""
        self.csrf = ""
        status, session = self.request("POST", "/api/v1/session", {
            "staffId": account["id"], "password": account["password"], "totp": totp(account["totpSecret"]),
        })
        assert status == 200 and self.cookie, f"staff sign-in refused: {status} {session}"
        self.csrf = session["csrfToken"]

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=15)
        headers = {"Content-Type": "application/json"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        try:
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            raw = response.read()
            cookie = response.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";")[0]
            return response.status, (json.loads(raw) if raw.strip() else {})
        finally:
            connection.close()

    def publish(self, conditions: dict) -> dict:
        status, view = self.request("PUT", "/api/v1/acceptance", {"conditions": conditions})
        assert status == 200, f"the publication was refused: {status} {view}"
        return view


@pytest.fixture
def hub():
    started = Hub().start()
    try:
        yield started
    finally:
        started.stop()


def rows(tablet: Tablet) -> list[dict]:
    """The picker's rows, in order: code, tier, rank, answer, published."""
    return tablet.js(
        "return [...document.querySelectorAll('[data-testid=\"picker-row\"]')].map(e => Object.assign({}, e.dataset))"
    )


def order(tablet: Tablet) -> list[str]:
    return [row["code"] for row in rows(tablet)]


def row(tablet: Tablet, code: str) -> dict:
    return next((r for r in rows(tablet) if r["code"] == code), {})


def test_live_picker_and_placement(stacks, tablet_for, hub):
    scenario = "placement"
    nurse1, nurse2, nurse3 = hub.staff(FIRST), hub.staff(SECOND), hub.staff(THIRD)
    # Before the ambulance connects: the first hospital has no dialysis beds, the third takes dialysis, the second
    # says nothing. The gateway's feed brings them as the hub's snapshot.
    nurse1.publish({"dialysis": {"accepting": False, "reason": "no-beds", "note": "透析ベッド満床"}})
    nurse3.publish({"dialysis": {"accepting": True}, "stroke": {"accepting": True}})

    stack = stacks(scenario, holder=6, extra_env={
        "KYUKYU_STACK_HUB": str(hub.dir), "KYUKYU_STACK_TERMINAL_ID": "ambulance-01", "KYUKYU_STACK_RECEIVER": "0",
    })
    assert stack.env.get("KYUKYU_STACK_HUB_URL") == hub.region["url"], stack.env
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    incident = tablet.new_incident()
    tablet.tap("consent-verbal")
    tablet.wait_summary()
    tablet.wait(lambda: tablet.count(tid("redflag-item", '[data-kind="dialysis"]')) == 1, "the dialysis red flag")
    tablet.tap("to-transport")
    tablet.wait_view("transport")

    # The dialysis patient's picker: the hospital accepting dialysis first, the silent one unknown, the declining
    # one last with its reason in words and its staff's note.
    tablet.wait(lambda: order(tablet) == [THIRD, SECOND, FIRST], "the ranked picker", READ)
    assert [r["tier"] for r in rows(tablet)] == ["accepts-all", "unknown", "declines"], rows(tablet)
    assert row(tablet, SECOND)["published"] == "no"
    needs = tablet.js("return [...document.querySelectorAll('[data-testid=\"picker-need\"]')].map(e => e.dataset.condition)")
    assert needs == ["dialysis"], needs
    declined = tablet.query(tid("picker-row", f'[data-code="{FIRST}"]') + " " + tid("picker-chip"))
    assert declined["data"]["state"] == "declined" and declined["data"]["reason"] == "no-beds", declined
    assert "満床" in declined["text"] and "透析ベッド満床" in declined["text"], declined
    assert tablet.query(tid("picker-row", f'[data-code="{SECOND}"]') + " " + tid("picker-unpublished"))["visible"]
    age = tablet.query(tid("picker-row", f'[data-code="{THIRD}"]') + " " + tid("picker-age"))
    assert age is not None and age["data"].get("seconds") is not None, age
    tablet.shot("ranked")

    # The second hospital's staff publish through the hub: the tablet re-ranks by itself (no tap).
    tablet.taps = 0
    nurse2.publish({"dialysis": {"accepting": True}})
    tablet.wait(lambda: order(tablet) == [SECOND, THIRD, FIRST], "re-ranked after the second's publication", READ)
    assert row(tablet, SECOND)["tier"] == "accepts-all" and row(tablet, SECOND)["published"] == "yes"
    assert tablet.taps == 0
    # In English too: the reason in words.
    tablet.tap("lang-toggle")
    tablet.wait(
        lambda: "No beds" in (tablet.query(tid("picker-row", f'[data-code="{FIRST}"]') + " " + tid("picker-chip")) or {}).get("text", ""),
        "the reason in English",
    )
    tablet.shot("live-en")
    tablet.tap("lang-toggle")

    # One request to the second and the third; the hub stores it.
    tablet.tap(f"picker-select-{SECOND}")
    tablet.tap(f"picker-select-{THIRD}")
    tablet.taps = 0
    tablet.tap("placement-send")
    tablet.wait_data(tid("placement-status"), "stored", "yes", READ)
    assert tablet.data(tid("placement-status"), "open") == "yes"
    tablet.wait(lambda: row(tablet, SECOND).get("answer") == "pending" and row(tablet, THIRD).get("answer") == "pending",
                "both asked")
    assert row(tablet, FIRST).get("answer") == "", "the first was not asked"
    assert tablet.taps == 1
    tablet.shot("asked")
    placement = tablet.api_get(f"/api/v1/incidents/{incident}")["placement"]
    assert [h["code"] for h in placement["hospitals"]] == [SECOND, THIRD], placement

    # The third's staff accept; the second's accept comes too late.
    status, answered = nurse3.request("POST", f"/api/v1/placements/{placement['id']}/accept")
    assert status == 200, (status, answered)
    status, _ = nurse2.request("POST", f"/api/v1/placements/{placement['id']}/accept")
    assert status == 409, status

    # The tablet: placed at the third, the second told the patient went elsewhere, and the document goes there.
    tablet.wait_data(tid("placement-status"), "acceptedBy", THIRD, READ)
    tablet.wait(lambda: row(tablet, SECOND).get("answer") == "placed-elsewhere", "the second told", READ)
    assert row(tablet, THIRD).get("answer") == "accepted"
    tablet.wait_data(tid("handoff-strip"), "hospital", THIRD, READ)
    tablet.wait_data(tid("handoff-strip"), "status", {"sent", "received", "acknowledged"}, READ)
    assert tablet.query(tid("placement-send")) is None, "no second request once placed"
    tablet.shot("placed")

    view = tablet.api_get(f"/api/v1/incidents/{incident}")
    assert view["handoff"]["hospital"] == THIRD and view["observations"]["hospital"] == THIRD, view["handoff"]
    assert view["placement"]["acceptedBy"] == THIRD and view["placement"]["open"] is False
    # The hub holds the document for the third hospital: its staff see the patient.
    status, patients = nurse3.request("GET", "/api/v1/patients")
    assert status == 200 and len(patients.get("patients", [])) == 1, (status, patients)
