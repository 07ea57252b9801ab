"""The ER board's region panels in Debian's headless chromium against a real `kyukyu-hospital serve` (board_receiver.py:
its own CA, device certificate, staff account with TOTP; HTTPS on loopback), the ambulance's side over mutual TLS:

(a) acceptance: staff publish "dialysis: not accepting (no beds)" in two taps and "stroke: accepting"; the receiver's
    `GET /api/v1/acceptance` (with the board's session cookie) has revision ≥ 1 and exactly those two; then "other"
    needs its note, and a condition is made unknown again; another screen's publication shows live (the stream's
    `event: acceptance`);
(b) an ambulance asks (POST /ambulance/v1/placements) → the request appears live with its summary (70-79, sex,
    complaint, triage colour, needs as chips, ETA, waiting time) and alerts as a new patient does; staff accept → the
    request shows accepted and the ambulance's GET /ambulance/v1/placements/<id> says accepted;
(c) a second request, withdrawn by the crew → the board shows "withdrawn by the crew";
(d) a third, declined with the reason "other" and a note → the ambulance's own stream carries both;
(e) a fourth, withdrawn while the board's event stream is held back (CDP Fetch after a reload): accept → 409, shown
    in words (placed elsewhere: "another hospital accepted first"; here: "the crew withdrew"), and the request as withdrawn.
Screenshots: state/screenshots/board_region-<n>-<state>.png (not `board-*`: test_board.py clears those). Every wait
is a bounded WebDriverWait.
"""
from __future__ import annotations

import uuid

import pytest
from selenium.webdriver.common.by import By

from board_page import BoardPage
from board_receiver import HOSPITAL, Receiver
from tablet import browser_smoke, tid, totp

SUMMARY = {"ageDecade": 7, "sex": "male", "needs": ["dialysis"], "priority": "red", "chiefComplaint": "dyspnoea",
           "etaMinutes": 12}


@pytest.fixture
def receiver():
    started = Receiver("board-region")
    try:
        started.start()
        yield started
    finally:
        started.stop()


class Board(BoardPage):
    """The board in one browser: bounded waits, counted taps, screenshots board_region-<n>-<state>.png."""

    def __init__(self, browser) -> None:
        super().__init__(browser, "board_region")

    def enabled(self, css: str) -> bool:
        return self.js("const e = document.querySelector(arguments[0]); return !!e && !e.disabled", css)

    def condition(self, name: str) -> dict | None:
        return self.js("""
            const c = document.querySelector(`[data-testid="acceptance-condition"][data-condition="${arguments[0]}"]`);
            return c && {state: c.dataset.state, reason: c.dataset.reason ?? null,
                         text: c.querySelector('[data-testid="acceptance-condition-state"]').innerText,
                         note: c.querySelector('[data-testid="acceptance-condition-note"]')?.innerText ?? null};
        """, name)

    def panel(self) -> dict:
        return self.js("""
            const p = document.querySelector('[data-testid="acceptance-panel"]');
            return {revision: Number(p.dataset.revision), busy: p.dataset.busy,
                    age: document.querySelector('[data-testid="acceptance-age"]').innerText,
                    editor: !!document.querySelector('[data-testid="acceptance-editor"]')};
        """)

    def request(self, placement: str) -> dict | None:
        """What one placement request's card shows."""
        return self.js("""
            const card = document.querySelector(`[data-testid="placement-card"][data-placement="${arguments[0]}"]`);
            if (!card) return null;
            const one = (id) => card.querySelector(`[data-testid="${id}"]`);
            return {
              answer: card.dataset.answer, priority: card.dataset.priority, flash: card.classList.contains('flash'),
              alerts: Number(card.dataset.alerts ?? 0), age: one('placement-age')?.innerText ?? null,
              sex: one('placement-sex')?.dataset.sex ?? null, complaint: one('placement-complaint')?.innerText,
              complaintCode: one('placement-complaint')?.dataset.complaint ?? null,
              needs: [...card.querySelectorAll('[data-testid="placement-need"]')].map((n) => n.dataset.need),
              eta: Object.assign({}, one('placement-eta')?.dataset), etaText: one('placement-eta')?.innerText,
              waiting: one('placement-waiting')?.innerText, waitingSeconds: one('placement-waiting')?.dataset.seconds,
              outcome: one('placement-outcome')?.innerText ?? null,
              error: one('placement-error')?.hidden === false ? one('placement-error').dataset.kind : null,
              errorText: one('placement-error')?.innerText ?? null,
              accept: !!one('placement-accept'),
            };
        """, placement)


    def __init__(self, browser) -> None:
        super().__init__(browser, "board_region")

def sign_in(board: Board, receiver: Receiver) -> None:
    browser = board.browser
    board.wait(lambda: board.js("return document.querySelector('main').dataset.screen") == "signin", "sign-in")
    browser.find_element(By.CSS_SELECTOR, tid("board-signin-staff")).send_keys("nurse-01")
    browser.find_element(By.CSS_SELECTOR, tid("board-signin-password")).send_keys("board-test-password")
    browser.find_element(By.CSS_SELECTOR, tid("board-signin-totp")).send_keys(totp(receiver.totp_secret))
    board.tap(tid("board-signin-submit"))
    board.wait(lambda: board.js("return document.querySelector('main').dataset.screen") == "board", "the board")
    board.wait(lambda: board.js(f"return document.querySelector('{tid('board-connection')}').dataset.state") == "live",
               "the event stream connected")


def test_board_region(receiver: Receiver):
    browser = receiver.browser(browser_smoke)
    board = Board(browser)
    try:
        browser.set_page_load_timeout(30)
        browser.set_script_timeout(10)
        browser.get(f"{receiver.base}/board/?realert=5")
        sign_in(board, receiver)

        # (a) Never published: six conditions, all unknown, revision 0.
        board.wait(lambda: board.condition("dialysis") is not None, "the acceptance panel")
        assert board.panel()["revision"] == 0
        for name in ("stroke", "stemi", "trauma", "burns", "paediatrics", "dialysis"):
            assert board.condition(name)["state"] == "unknown", name
        assert board.js(f"return document.querySelector('{tid('board-placements')}').hidden") is True
        board.shot("acceptance-unpublished")

        # "dialysis: no beds" in two taps; then "stroke: accepting".
        board.taps = 0
        board.tap(f'{tid("acceptance-condition")}[data-condition="dialysis"]')
        board.wait(lambda: board.panel()["editor"], "the choices for dialysis")
        board.shot("acceptance-choices")
        board.tap(tid("acceptance-refuse-no-beds"))
        board.wait(lambda: (board.condition("dialysis") or {}).get("state") == "refusing", "dialysis not accepting")
        assert board.taps == 2, board.taps
        assert board.condition("dialysis")["reason"] == "no-beds" and "満床" in board.condition("dialysis")["text"]
        board.wait(lambda: not board.panel()["editor"], "the editor closes once published")
        board.tap(f'{tid("acceptance-condition")}[data-condition="stroke"]')
        board.tap(tid("acceptance-accept"))
        board.wait(lambda: (board.condition("stroke") or {}).get("state") == "accepting", "stroke accepting")
        panel = board.wait(lambda: (p := board.panel())["revision"] >= 1 and p["busy"] == "false" and p, "a revision")
        assert "更新" in panel["age"], panel
        board.shot("acceptance-published")

        cookies = browser.get_cookies()
        published = receiver.staff_get("/api/v1/acceptance", cookies)
        assert published["hospital"] == HOSPITAL and published["revision"] >= 1, published
        conditions = published["conditions"]
        assert set(conditions) == {"dialysis", "stroke"}, conditions
        assert conditions["dialysis"]["accepting"] is False and conditions["dialysis"]["reason"] == "no-beds", conditions
        assert conditions["stroke"]["accepting"] is True, conditions

        # "other" needs a note; then the condition is made unknown again.
        board.tap(f'{tid("acceptance-condition")}[data-condition="burns"]')
        board.tap(tid("acceptance-refuse-other"))
        board.wait(lambda: board.js(f"return !!document.querySelector('{tid('acceptance-note')}')"), "the note field")
        assert board.enabled(tid("acceptance-send")) is False
        board.type(tid("acceptance-note"), "熱傷ユニット改修中")
        board.tap(tid("acceptance-send"))
        board.wait(lambda: (board.condition("burns") or {}).get("reason") == "other", "burns not accepting (other)")
        assert board.condition("burns")["note"] == "熱傷ユニット改修中"
        board.tap(f'{tid("acceptance-condition")}[data-condition="burns"]')
        board.tap(tid("acceptance-clear"))
        board.wait(lambda: (board.condition("burns") or {}).get("state") == "unknown", "burns unknown again")
        again = receiver.staff_get("/api/v1/acceptance", cookies)
        assert set(again["conditions"]) == {"dialysis", "stroke"} and again["revision"] > published["revision"], again

        # Another screen of the hospital publishes: the board shows it from its event stream, long before its own
        # 30-second re-read (its last read was its own publication, just now).
        other = receiver.staff_put("/api/v1/acceptance", {"conditions": {"stemi": {"accepting": True}}}, cookies)
        assert other["revision"] > again["revision"], other
        board.wait(lambda: (board.condition("stemi") or {}).get("state") == "accepting", "stemi, from another screen",
                   timeout=5)
        assert board.panel()["revision"] == other["revision"]

        # (b) An ambulance asks: the request appears live with its summary, and alerts.
        alerts_before = int(board.js(f"return document.querySelector('{tid('board')}').dataset.alerts ?? '0'"))
        first = str(uuid.uuid4())
        receiver.place(first, str(uuid.uuid4()), SUMMARY)
        shown = board.wait(lambda: (r := board.request(first)) and r["flash"] and r, "the request appears and flashes")
        assert shown["answer"] == "pending" and shown["priority"] == "red", shown
        assert shown["age"].startswith("70-79") and shown["sex"] == "male", shown
        assert shown["complaintCode"] == "dyspnoea" and shown["complaint"] == "呼吸困難", shown
        assert shown["needs"] == ["dialysis"] and shown["eta"]["minutes"] == "12" and shown["accept"], shown
        assert "待機" in shown["waiting"], shown
        assert int(board.js(f"return document.querySelector('{tid('board')}').dataset.alerts")) > alerts_before
        assert board.js(f"return document.querySelector('{tid('board')}').dataset.lastBeep") == "sounded"
        assert board.js(f"return document.querySelector('{tid('board-placements')}').dataset.pending") == "1"
        board.shot("request-arrived")
        # Nobody answers: it alerts again after the page's interval (5 s here).
        board.wait(lambda: (board.request(first) or {}).get("alerts", 0) >= 2, "the repeated alert", 12)

        board.tap(f'{tid("placement-card")}[data-placement="{first}"] {tid("placement-accept")}')
        board.wait(lambda: (board.request(first) or {}).get("answer") == "accepted", "the request accepted")
        assert "受入決定" in board.request(first)["outcome"]
        view = receiver.placement(first)
        assert view["answers"] == {HOSPITAL: "accepted"} and view.get("placedAt") == HOSPITAL, view
        board.shot("request-accepted")

        # (c) A second request, withdrawn by the crew.
        second = str(uuid.uuid4())
        receiver.place(second, str(uuid.uuid4()), {"ageDecade": 3, "sex": "female", "needs": ["trauma", "burns"],
                                                   "priority": "yellow", "chiefComplaint": "burn"})
        board.wait(lambda: (board.request(second) or {}).get("answer") == "pending", "the second request")
        assert board.request(second)["needs"] == ["trauma", "burns"]
        assert board.request(second)["etaText"] == "到着予定 未入力"
        receiver.cancel_placement(second)
        withdrawn = board.wait(lambda: (r := board.request(second)) and r["answer"] == "cancelled" and r,
                               "the second request withdrawn")
        assert "救急隊が取り下げ" in withdrawn["outcome"] and not withdrawn["accept"], withdrawn
        board.js("window.scrollTo(0, 0)")
        board.shot("request-withdrawn")
        board.tap(f'{tid("placement-card")}[data-placement="{second}"] {tid("placement-dismiss")}')
        board.wait(lambda: board.request(second) is None, "the withdrawn request dismissed")

        # (d) A third, declined with "other": the note is required.
        third = str(uuid.uuid4())
        receiver.place(third, str(uuid.uuid4()), {"ageDecade": 8, "needs": ["stroke"], "priority": "red",
                                                  "chiefComplaint": "stroke-symptoms", "etaMinutes": 20})
        card = f'{tid("placement-card")}[data-placement="{third}"]'
        board.wait(lambda: (board.request(third) or {}).get("answer") == "pending", "the third request")
        board.tap(f"{card} {tid('placement-decline')}")
        board.tap(f"{card} {tid('placement-reason-other')}")
        assert board.enabled(f"{card} {tid('placement-decline-send')}") is False
        note = "血管内治療医 不在（試験）"
        board.type(f"{card} {tid('placement-note')}", note)
        board.wait(lambda: board.enabled(f"{card} {tid('placement-decline-send')}"), "send enabled with a note")
        board.shot("decline-panel")
        board.tap(f"{card} {tid('placement-decline-send')}")
        board.wait(lambda: (board.request(third) or {}).get("answer") == "declined", "the third request declined")
        assert receiver.placement(third)["answers"] == {HOSPITAL: "declined"}
        events = receiver.device_events(lambda es: any(
            e.get("placement") == third and e.get("answer") == "declined" for e in es))
        declined = [e for e in events if e.get("placement") == third and e.get("answer") == "declined"][0]
        assert declined["reason"] == "other" and declined["note"] == note, declined
        board.shot("request-declined")

        # (e) The crew withdraws a request while this board does not hear it (its event stream held back by the
        # browser after a reload): accepting is refused (409) and the board says so in words.
        fourth = str(uuid.uuid4())
        receiver.place(fourth, str(uuid.uuid4()), {"ageDecade": 5, "needs": ["stemi"], "priority": "red",
                                                   "chiefComplaint": "chest-pain", "etaMinutes": 8})
        board.wait(lambda: (board.request(fourth) or {}).get("answer") == "pending", "the fourth request")
        browser.execute_cdp_cmd("Fetch.enable", {"patterns": [{"urlPattern": "*/api/v1/board/events*"}]})
        try:
            browser.refresh()
            board.wait(lambda: (board.request(fourth) or {}).get("answer") == "pending", "the fourth request again")
            assert board.js(f"return document.querySelector('{tid('board-connection')}').dataset.state") != "live"
            assert board.request(first) is None, "only pending requests after a reload"
            receiver.cancel_placement(fourth)
            board.tap(f'{tid("placement-card")}[data-placement="{fourth}"] {tid("placement-accept")}')
            refused = board.wait(lambda: (r := board.request(fourth)) and r["error"] == "conflict"
                                 and r["answer"] == "cancelled" and r, "the 409, then the request shown withdrawn")
            assert "受け入れできません" in refused["errorText"] and "取り下げ" in refused["errorText"], refused
            assert "救急隊が取り下げ" in refused["outcome"] and not refused["accept"], refused
            board.js("window.scrollTo(0, 0)")
            board.shot("accept-conflict")
        finally:
            browser.execute_cdp_cmd("Fetch.disable", {})
        board.wait(lambda: board.js(f"return document.querySelector('{tid('board-connection')}').dataset.state") == "live",
                   "the event stream back", 20)

        # English.
        board.tap(tid("board-lang"))
        board.wait(lambda: board.js("return document.documentElement.lang") == "en", "English")
        assert board.condition("dialysis")["text"] == "Not accepting: No beds", board.condition("dialysis")
        english = board.request(fourth)
        assert english["age"] == "50-59 y" and "Withdrawn by the crew" in english["outcome"], english
        assert english["errorText"] == "Not accepted: the crew withdrew the request", english
        board.shot("english")

        # No patient data in the page's URL or the receiver's log; no error in the page's console.
        assert browser.current_url == f"{receiver.base}/board/?realert=5"
        log = receiver.log.read_text(encoding="utf-8")
        for value in (note, "熱傷ユニット改修中", "dyspnoea"):
            assert value not in log, f"{value!r} in the receiver's log"
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "status of 401" not in e["message"]
                  and not ("status of 409" in e["message"] and "/accept" in e["message"])]
        assert not severe, severe
    except Exception:
        board.shot("failed")
        raise
    finally:
        browser.quit()
