"""The tablet's whole flow in a real headless browser, against the real stack (issue 8, "Tested in a real headless
browser"): each scenario end to end from sign-in to the summary (or the right end state), one fresh stack each,
a screenshot of each meaningful state under state/screenshots/.

Assertions are on data-testids and data-* values (TESTIDS.md), never on words, and on what the card simulator's
control and the eligibility stub's admin API report from their side.
"""
from __future__ import annotations

import pytest

from stack import patient
from tablet import READ, SHORT, Tablet, now, tid

# The simulator's PIN: simulators/KyukyuCardSim/Configuration.swift, `authPIN: String = "1234"` (stack.sh does not
# change it, and PUT /card below does not pass one).
SIM_PIN = "1234"
WRONG_PIN = "9999"

SETTLED = {"arrived", "none-on-record"}
CATEGORIES = {"qualification", "visits", "diagnoses", "medications", "prescriptions", "surgery", "treatment", "checkups", "allergies"}


def report(scenario: str, text: str) -> None:
    print(f"\n[browser] {scenario}: {text}")


def wait_viewing(tablet: Tablet, predicate, what: str, timeout: float = SHORT) -> dict:
    """Polls the stub's viewing log (bounded) until a viewing matches."""
    return tablet.wait(lambda: next((v for v in tablet.stack.viewings() if predicate(v)), None), what, timeout)


def assert_all_arrived(tablet: Tablet) -> dict[str, str]:
    statuses = tablet.statuses()
    assert set(statuses) == CATEGORIES, statuses
    assert set(statuses.values()) <= SETTLED, statuses
    return statuses


def test_1_card_holder(stacks, tablet_for):
    """Card already on the reader: sign in, new incident, one consent tap, and the summary comes by itself."""
    scenario = "card-holder"
    stack = stacks(scenario, holder=3)
    holder = patient(3)  # af-apixaban: an anticoagulant red flag
    card = stack.card()
    assert card["present"] and card["holder"] == 3 and card["profile"] == "card", card
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    incident = tablet.new_incident()
    tablet.wait_data(tid("reader-status"), "state", {"card-present", "reading"})
    tablet.shot("consent")

    tablet.taps = 0  # from here (the card on the reader) to the summary
    started = now()
    tablet.tap("consent-verbal")
    tablet.wait_summary()
    elapsed = now() - started
    taps = tablet.taps
    tablet.shot("summary")
    assert tablet.taps <= 2, f"{tablet.taps} taps from card to summary"
    assert tablet.taps == 1, "the consent tap only"

    assert tablet.data(tid("screen-incident"), "incidentId") == incident
    tablet.wait_data(tid("incident-phase"), "phase", "summary")
    assert tablet.data(tid("incident-consent"), "basis") == "verbal"
    tablet.assert_patient(holder)
    assert tablet.query(tid("identification"))["visible"]
    assert tablet.data(tid("auth-status"), "status") in {"ok", None}
    assert_all_arrived(tablet)
    assert tablet.data(tid("redflags"), "state") == "present"
    kinds = tablet.js("return [...document.querySelectorAll('[data-testid=\"redflag-item\"]')].map(e => e.dataset.kind)")
    assert "anticoagulant" in kinds, kinds
    assert tablet.count(tid("med-row", '[data-drug-class="anticoagulant"]')) >= 1
    assert tablet.count(tid("diagnosis-row")) >= 1

    # Details are one tap away (after the summary; not counted above).
    tablet.tap("details-medications")
    tablet.wait(lambda: tablet.count(tid("details-record", '[data-category="medications"]')) > 0, "medication records")
    tablet.shot("details")

    viewing = wait_viewing(tablet, lambda v: v.get("patientNumber") == 3, "onshi's viewing of patient 3")
    assert viewing["method"] == "card" and viewing["consent"] == "verbal", viewing
    report(scenario, f"consent tap to summary settled in {elapsed:.2f} s, {taps} tap(s) from card to summary")


def test_2_android_token_with_pin(stacks, tablet_for):
    """An Android token: the PIN pad with tries left, a wrong PIN shows one try less, the right PIN gives the summary."""
    scenario = "android-pin"
    stack = stacks(scenario, holder=3)
    stack.put_card(2, "android")  # insulin-diabetic
    card = stack.card()
    assert card["profile"] == "android" and card["holder"] == 2 and card["authPinTriesLeft"] == 3, card
    holder = patient(2)
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    tablet.new_incident()
    tablet.tap("consent-verbal")

    tablet.wait_visible(tid("card-pin"), READ)
    tablet.wait_data(tid("card-pin-tries"), "tries", "3")
    assert tablet.query(tid("card-pin-last-try")) is None
    assert not tablet.query(tid("card-title"))["visible"]
    tablet.shot("pin-pad")

    tablet.pin("card-pin", WRONG_PIN)
    tablet.wait_visible(tid("card-pin-error"))
    tablet.wait_data(tid("card-pin-tries"), "tries", "2")
    tablet.shot("wrong-pin")
    assert stack.card()["authPinTriesLeft"] == 2
    assert tablet.data(tid("incident-phase"), "phase") in {"created", "consent-recorded"}

    tablet.pin("card-pin", SIM_PIN)
    tablet.wait_summary()
    tablet.shot("summary")
    tablet.assert_patient(holder)
    assert_all_arrived(tablet)
    kinds = tablet.js("return [...document.querySelectorAll('[data-testid=\"redflag-item\"]')].map(e => e.dataset.kind)")
    assert "insulin" in kinds, kinds
    assert stack.card()["authPinTriesLeft"] == 3, "the right PIN resets the tries"
    viewing = wait_viewing(tablet, lambda v: v.get("patientNumber") == 2, "onshi's viewing of patient 2")
    assert viewing["method"] == "card", viewing


def test_3_refused_consent(stacks, tablet_for):
    """A refused consent: onshi records the attempt, the incident closes, the tablet goes back to the list."""
    scenario = "refused-consent"
    stack = stacks(scenario, holder=4)
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    incident = tablet.new_incident()
    tablet.tap("consent-refused")

    tablet.wait_view("closed", READ)
    assert tablet.data(tid("view-closed"), "closure") == "consent-refused"
    tablet.wait_data(tid("incident-phase"), "phase", "closed")
    assert tablet.query(tid("closed-body"))["visible"]
    assert tablet.query(tid("patient-name")) is None
    tablet.shot("closed")

    tablet.tap("closed-to-list")
    tablet.wait_screen("incidents")
    tablet.wait(lambda: tablet.query(tid("incidents-empty")) or tablet.query(tid("incident-list")), "the list")
    assert tablet.count(tid("incident-row", f'[data-incident-id="{incident}"]')) == 0
    tablet.shot("list")

    viewing = wait_viewing(tablet, lambda v: v.get("patientNumber") == 4, "onshi's viewing of the refused attempt")
    assert viewing["consent"] == "refused" and viewing["method"] == "card", viewing
    assert not any(f.get("records") for f in viewing.get("fetches") or []), viewing
    # The gateway's own answer agrees: closed, nothing about the patient left in it.
    view = tablet.api_get(f"/api/v1/incidents/{incident}")
    assert view["phase"] == "closed" and view["closure"] == "consent-refused" and view.get("summary") is None, view


def _katakana_to_hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


def test_4_cardless_lookup(stacks, tablet_for, used):
    """No card: lookup by the four fields (kana typed as hiragana), then another incident by the insurance card.

    The insurance lookup uses patient 10 (a 健保組合 card with a symbol): a 後期高齢者 card has no symbol (記号), and
    the gateway refuses an empty insuredSymbol (422 "the insured symbol is empty"; reported to the lead)."""
    scenario = "cardless-lookup"
    stack = stacks(scenario, holder=3)
    stack.remove_card()
    assert stack.card()["present"] is False
    by_demographics, by_insurance = patient(5), patient(10)
    used.patients.update({5, 10})
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    first = tablet.new_incident()
    tablet.tap("consent-verbal")
    tablet.wait_view("card")
    tablet.wait_data(tid("card-status"), "state", "waiting")
    tablet.wait_data(tid("reader-status"), "state", "empty")
    tablet.shot("no-card")

    tablet.tap("card-no-card")
    tablet.wait_view("lookup")
    assert tablet.query(tid("lookup-tab-demographics"))
    tablet.shot("lookup-form")
    p = by_demographics
    tablet.type("lookup-family-name", p.family_name)
    tablet.type("lookup-given-name", p.given_name)
    tablet.type("lookup-family-kana", _katakana_to_hiragana(p.family_kana))
    tablet.type("lookup-given-kana", _katakana_to_hiragana(p.given_kana))
    tablet.type("lookup-birth-year", p.birth[:4])
    assert tablet.js("return document.querySelector(arguments[0]).value", tid("lookup-given-kana")) == p.given_kana, \
        "hiragana becomes katakana on blur"
    tablet.type("lookup-birth-month", str(int(p.birth[4:6])))
    tablet.type("lookup-birth-day", str(int(p.birth[6:])))
    tablet.tap(f"lookup-sex-{p.sex_name}")
    tablet.type("lookup-address", p.address)
    tablet.shot("lookup-demographics-filled")
    tablet.tap("lookup-submit")
    tablet.wait_summary()
    tablet.shot("summary-by-demographics")
    tablet.assert_patient(p)
    assert_all_arrived(tablet)
    wait_viewing(tablet, lambda v: v.get("patientNumber") == 5 and v.get("method") == "lookup", "onshi's lookup of 5")

    # Close it (asks first), back to the list, then a second incident identified by the insurance card.
    tablet.tap("incident-close")
    tablet.tap("close-confirm-yes")
    tablet.wait_screen("incidents")
    tablet.wait_visible(tid("incidents-flash"))
    assert tablet.count(tid("incident-row", f'[data-incident-id="{first}"]')) == 0
    tablet.shot("closed-to-list")

    second = tablet.new_incident()
    assert second != first
    tablet.tap("consent-verbal")
    tablet.tap("card-no-card")
    tablet.wait_view("lookup")
    tablet.tap("lookup-tab-insurance")
    tablet.wait_visible(tid("lookup-insurer-number"))
    q = by_insurance
    tablet.type("lookup-insurer-number", q.insurer_number)
    if q.insured_symbol:
        tablet.type("lookup-insured-symbol", q.insured_symbol)
    tablet.type("lookup-insured-number", q.insured_number)
    tablet.shot("lookup-insurance-filled")
    tablet.tap("lookup-submit")
    tablet.wait_summary()
    tablet.shot("summary-by-insurance")
    tablet.assert_patient(q)
    wait_viewing(tablet, lambda v: v.get("patientNumber") == 10 and v.get("method") == "lookup", "onshi's lookup of 10")


def test_5_stalled_onshi(stacks, tablet_for):
    """onshi stalls on some categories: at the deadline the summary shows what arrived, the others pending, then
    late or timed out; every waiting state ends."""
    scenario = "stalled-onshi"
    stack = stacks(scenario, holder=6)  # dialysis: every category has records
    # The gateway's defaults: summary at fetch.deadline-ms 3000, a category timed out at category-deadline-ms 6000.
    stack.put_faults(
        {
            "seed": 8,
            "endpoints": {
                "checkups": {"latency": {"kind": "fixed", "ms": 4500}},
                "surgery": {"failures": [{"kind": "stall", "stallMs": 8000}]},
            },
        }
    )
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    incident = tablet.new_incident()
    started = now()
    tablet.tap("consent-verbal")

    tablet.wait_data(tid("incident-phase"), "phase", "summary", READ)
    at_deadline = tablet.statuses()
    shown = now() - started
    tablet.shot("summary-at-deadline")
    tablet.wait_data(tid("patient-header"), "state", "present")
    assert at_deadline.get("surgery") == "pending", at_deadline
    assert at_deadline.get("checkups") == "pending", at_deadline
    others = {c: s for c, s in at_deadline.items() if c not in {"surgery", "checkups"}}
    assert set(others.values()) <= SETTLED, others
    # A pending category counts its seconds (progress with an end), it is not a bare spinner.
    assert tablet.count(tid("status-surgery") + " .chip-progress") == 1 or tablet.statuses()["surgery"] != "pending"

    tablet.wait(lambda: tablet.statuses().get("checkups") == "late", "checkups late", 15)
    tablet.shot("checkups-late")
    tablet.wait(lambda: tablet.statuses().get("surgery") == "timed-out", "surgery timed out", 15)
    ended = now() - started
    tablet.shot("surgery-timed-out")
    # The gateway's own view agrees: surgery gave up at the category deadline (6 s), checkups came late.
    view = tablet.api_get(f"/api/v1/incidents/{incident}")
    assert view["categories"]["surgery"]["status"] == "timed-out", view["categories"]["surgery"]
    assert (view["categories"]["surgery"].get("milliseconds") or 0) >= 5000, view["categories"]["surgery"]
    assert view["categories"]["checkups"]["status"] == "late", view["categories"]["checkups"]
    final = tablet.statuses()
    assert not {"pending", "retrying"} & set(final.values()), final
    assert tablet.summary_settled()
    tablet.wait(lambda: not (tablet.query(tid("busy-indicator")) or {}).get("visible"), "no busy indicator")
    spinners = tablet.js(
        "return [...document.querySelectorAll('.progress-bar.indeterminate, .chip-progress')]"
        ".filter(e => e.offsetParent !== null).length"
    )
    assert spinners == 0, "something still spins after every category ended"
    report(scenario, f"summary at {shown:.2f} s after the consent tap, every category ended at {ended:.2f} s")


def test_6_card_removed_mid_read(stacks, tablet_for):
    """The card goes out in the middle of the read: the tablet says "removed", then the read resumes by itself."""
    scenario = "card-removed"
    stack = stacks(scenario, holder=2)
    stack.remove_card()
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    tablet.new_incident()
    tablet.tap("consent-verbal")
    tablet.wait_view("card")
    tablet.wait_data(tid("card-status"), "state", "waiting")
    tablet.shot("waiting-for-card")
    taps = tablet.taps

    armed = stack.remove_after_apdus(2, 2500)
    assert armed["removeAfterApdus"] == 2, armed
    stack.put_card(2)
    tablet.wait_data(tid("card-status"), "state", "removed", READ)
    tablet.shot("removed")
    assert stack.card()["present"] is False or stack.card()["removeAfterApdus"] is None
    tablet.wait_summary()
    tablet.shot("summary")
    assert tablet.taps == taps, "the read resumed without a tap"
    tablet.assert_patient(patient(2))
    assert_all_arrived(tablet)


def test_7_network_lost_and_back(stacks, tablet_for):
    """onshi unreachable when the fetch is due: the tablet says it will retry; when it is back the summary comes."""
    scenario = "network-lost"
    stack = stacks(scenario, holder=5)
    stack.stop_stub()
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    tablet.new_incident()
    tablet.tap("consent-verbal")
    taps = tablet.taps

    banner = tablet.wait_visible(tid("retry-banner"), READ)
    assert banner["data"].get("reason") == "no-network", banner
    assert tablet.query(tid("retry-text"))["visible"]
    assert tablet.query(tid("retry-countdown")) is not None
    tablet.wait_data(tid("incident-phase"), "phase", "retry-pending")
    tablet.shot("will-retry")

    started = now()
    stack.start_stub()
    tablet.wait_summary(timeout=60)
    back = now() - started
    tablet.shot("summary")
    assert tablet.query(tid("retry-banner")) is None
    assert tablet.taps == taps, "the summary came without a tap"
    tablet.assert_patient(patient(5))
    assert_all_arrived(tablet)
    report(scenario, f"summary {back:.2f} s after the stub was started again (stub start included)")


def test_8_gateway_kill9_mid_incident(stacks, tablet_for):
    """kill -9 of the gateway with an incident open: after the restart the tablet reloads and the incident is where
    it was (same id, same phase, the summary back from the vault)."""
    scenario = "gateway-kill9"
    stack = stacks(scenario, holder=4)
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    incident = tablet.new_incident()
    tablet.tap("consent-verbal")
    tablet.wait_summary()
    tablet.shot("summary-before")
    before = {
        "phase": tablet.data(tid("incident-phase"), "phase"),
        "name": tablet.query(tid("patient-name"))["text"],
        "statuses": tablet.statuses(),
        "meds": tablet.count(tid("med-row")),
        "flags": tablet.count(tid("redflag-item")),
    }
    assert before["phase"] == "summary" and before["meds"] > 0

    stack.kill_gateway()
    tablet.wait_visible(tid("sse-banner"), 20)
    tablet.shot("gateway-gone")
    stack.restart_gateway()
    # By itself, the tablet reconnects and reads the incident again.
    tablet.wait(lambda: tablet.query(tid("sse-banner")) is None, "reconnected", 30)
    tablet.shot("reconnected")

    tablet.browser.refresh()
    tablet.wait_screen("incident", 30)
    assert tablet.data(tid("screen-incident"), "incidentId") == incident
    tablet.wait_summary()
    tablet.shot("after-reload")
    after = {
        "phase": tablet.data(tid("incident-phase"), "phase"),
        "name": tablet.query(tid("patient-name"))["text"],
        "statuses": tablet.statuses(),
        "meds": tablet.count(tid("med-row")),
        "flags": tablet.count(tid("redflag-item")),
    }
    assert after == before
    tablet.assert_patient(patient(4))
