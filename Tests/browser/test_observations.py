"""The crew's transport record on the tablet (issue 9, "What the crew adds on the tablet"), end to end through the
real gateway process: the priority is recorded from the card view before the card is touched (the card then gives
the summary with no tap); one tap from the summary opens the transport view; complaint, two timed vital-sign sets on
the number pad (JCS and GCS as buttons), a treatment, the ETA, the hospital, a note and the onset are entered by
taps; a heart rate of 400 is refused by the gateway with its message next to the field; after a reload of the page
everything is there again, read back from the vault. Screenshots under state/screenshots/transport-*.png.
"""
from __future__ import annotations

from tablet import READ, SHORT, Tablet, tid

# A distinctive note (synthetic): the PHI-at-rest test looks for it in every state file, as for the patients' data.
NOTE = "階段で胸部圧迫感ZQ7テスト"


def pressed(tablet: Tablet, testid: str) -> str | None:
    return tablet.js("return document.querySelector(arguments[0])?.getAttribute('aria-pressed') ?? null", tid(testid))


def wait_pressed(tablet: Tablet, testid: str, value: str = "true") -> None:
    tablet.wait(lambda: pressed(tablet, testid) == value, f"{testid} aria-pressed={value}")


def pad(tablet: Tablet, field: str, digits: str) -> None:
    """Picks a field of the vitals pad and taps its digits."""
    tablet.tap(f"vital-field-{field}")
    for digit in digits:
        tablet.tap(f"vpad-key-{digit}")
    tablet.wait(lambda: tablet.query(tid(f"vital-value-{field}"))["text"] == digits, f"{field} shows {digits}")


def rows(tablet: Tablet) -> int:
    return tablet.count(tid("vitals-row"))


def test_transport_record(stacks, tablet_for, used):
    scenario = "transport"
    stack = stacks(scenario, holder=3)
    stack.remove_card()  # the patient's card comes later: the crew records before the patient is identified
    used.notes.add(NOTE)
    tablet = tablet_for(stack, scenario)
    tablet.sign_in()
    incident = tablet.new_incident()
    tablet.tap("consent-verbal")
    tablet.wait_view("card")
    tablet.shot("card-view")

    # Before the card: the transport record is a tap away from the card view too.
    tablet.tap("card-to-transport")
    tablet.wait_view("transport")
    tablet.tap("priority-red")
    wait_pressed(tablet, "priority-red")
    tablet.tap("transport-back")
    tablet.wait_view("card")

    # The card touches the reader: the summary comes with no tap (the record adds none to that path).
    tablet.taps = 0
    stack.put_card(3)
    tablet.wait_summary()
    assert tablet.taps == 0, f"{tablet.taps} taps from the card to the summary"
    tablet.wait_visible(tid("transport-digest"))  # the priority recorded before the card

    # One tap from the summary.
    tablet.taps = 0
    tablet.tap("to-transport")
    tablet.wait_view("transport")
    assert tablet.taps == 1
    tablet.wait_visible(tid("vitals-pad"))
    tablet.wait_visible(tid("vitals-none"))
    tablet.shot("transport-from-summary")
    small = tablet.js(
        """
        return [...document.querySelectorAll('[data-testid="view-transport"] button')]
          .filter(b => b.offsetWidth || b.offsetHeight)
          .filter(b => { const r = b.getBoundingClientRect(); return r.width < 48 || r.height < 48; })
          .map(b => b.dataset.testid);
        """
    )
    assert small == [], f"touch targets under 48 px: {small}"

    wait_pressed(tablet, "priority-red")
    tablet.tap("complaint-chest-pain")
    wait_pressed(tablet, "complaint-chest-pain")

    # The first set: HR 120, BP 160/90, RR 22, SpO2 94, JCS II-10, GCS E3V4M6.
    pad(tablet, "heartRate", "120")
    tablet.tap("vpad-next")
    tablet.wait(lambda: pressed(tablet, "vital-field-systolic") == "true", "the pad moves on to the systolic")
    for digit in "160":
        tablet.tap(f"vpad-key-{digit}")
    pad(tablet, "diastolic", "90")
    pad(tablet, "respiratoryRate", "22")
    pad(tablet, "spo2", "94")
    for testid in ("jcs-10", "gcs-eye-3", "gcs-verbal-4", "gcs-motor-6"):
        tablet.tap(testid)
        wait_pressed(tablet, testid)
    tablet.shot("vitals-pad-filled")
    tablet.tap("vitals-save")
    tablet.wait(lambda: rows(tablet) == 1, "the first set listed")
    assert tablet.query(tid("vital-value-heartRate"))["text"] == "—", "the pad is cleared after a save"

    # The second set: HR 110, SpO2 97; listed first (newest), with its trend against the first.
    pad(tablet, "heartRate", "110")
    pad(tablet, "spo2", "97")
    tablet.tap("vitals-save")
    tablet.wait(lambda: rows(tablet) == 2, "the second set listed")
    first_row = tablet.js(
        """
        const row = document.querySelector('[data-testid="vitals-row"]');
        const cell = (k) => row.querySelector(`[data-testid="vrow-${k}"]`);
        return {hr: cell('heartRate')?.innerText, hrTrend: cell('heartRate')?.dataset.trend,
                spo2Trend: cell('spo2')?.dataset.trend};
        """
    )
    assert "110" in first_row["hr"] and first_row["hrTrend"] == "down" and first_row["spo2Trend"] == "up", first_row

    # A bad value: the gateway refuses it, the message stands next to the pad, nothing is added.
    pad(tablet, "heartRate", "400")
    tablet.tap("vitals-save")
    error = tablet.wait_visible(tid("vital-error"))
    assert error["data"]["field"] == "heartRate", error
    assert error["text"].strip(), "the refusal is said in words"
    assert rows(tablet) == 2
    assert tablet.query(tid("vital-value-heartRate"))["text"] == "400", "the pad keeps the value to correct"
    tablet.shot("vitals-refused")
    tablet.tap("vitals-clear")
    tablet.wait(lambda: tablet.query(tid("vital-error")) is None, "the refusal goes with the correction")

    tablet.tap("treatment-oxygen")
    tablet.wait(lambda: tablet.count(tid("treatment-row", '[data-kind="oxygen"]')) == 1, "oxygen listed")

    for testid in ("eta-plus-5", "eta-plus-5", "eta-plus", "eta-plus"):
        tablet.tap(testid)
    tablet.wait_data(tid("eta-value"), "minutes", "12")
    tablet.tap("eta-save")
    tablet.wait_visible(tid("eta-recorded"))

    tablet.tap("hospital-9999999999", timeout=READ)
    wait_pressed(tablet, "hospital-9999999999")

    tablet.type("complaint-note", NOTE)
    tablet.tap("complaint-note-save")
    tablet.wait(
        lambda: (tablet.api_get(f"/api/v1/incidents/{incident}").get("observations") or {}).get("complaintNote") == NOTE,
        "the note stored",
    )
    tablet.tap("onset-kind-last-known-well")
    tablet.wait_data(tid("onset-value"), "set", "yes")
    tablet.tap("onset-minus-30")
    tablet.wait(lambda: "30" in tablet.query(tid("onset-value"))["text"], "last known well 30 minutes ago")
    tablet.shot("transport-filled")

    # A reload: the same incident, and the transport record as it was (read back from the vault).
    tablet.browser.refresh()
    tablet.wait_screen("incident", READ)
    tablet.wait_summary(settled=False)
    tablet.wait_visible(tid("transport-digest"))
    tablet.tap("to-transport")
    tablet.wait_view("transport")
    tablet.wait(lambda: rows(tablet) == 2, "both sets after the reload")
    for testid in ("complaint-chest-pain", "priority-red", "hospital-9999999999", "onset-kind-last-known-well"):
        wait_pressed(tablet, testid)
    assert tablet.count(tid("treatment-row", '[data-kind="oxygen"]')) == 1
    assert tablet.data(tid("eta-value"), "minutes") == "12"
    assert tablet.js("return document.querySelector(arguments[0]).value", tid("complaint-note")) == NOTE
    observations = tablet.api_get(f"/api/v1/incidents/{incident}")["observations"]
    vitals = observations["vitals"]
    assert [v.get("heartRate") for v in vitals] == [120, 110], vitals
    assert vitals[0]["systolic"] == 160 and vitals[0]["diastolic"] == 90 and vitals[0]["jcsLabel"] == "II-10"
    assert vitals[0]["gcs"] == {"eye": 3, "verbal": 4, "motor": 6, "total": 13}
    assert observations["priority"] == "red" and observations["chiefComplaint"] == "chest-pain"
    assert observations["etaMinutes"] == 12 and observations["hospital"] == "9999999999"
    assert [t["kind"] for t in observations["treatments"]] == ["oxygen"]
    assert observations["onset"]["kind"] == "last-known-well"
    tablet.shot("transport-reloaded")

    # The night theme, for the screenshot (the same view, readable in the dark).
    tablet.tap("theme-toggle")
    tablet.wait(lambda: tablet.js("return document.documentElement.dataset.theme") == "night", "night theme")
    tablet.shot("transport-night")
    tablet.tap("transport-back", timeout=SHORT)
    tablet.wait_view("summary")
