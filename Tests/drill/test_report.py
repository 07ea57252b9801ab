"""Tests of scripts/drill-report.py, the renderer of a drill's report.json ("kyukyu-drill/1") as one HTML page.

Each test writes a synthetic report (make_report below) to a temporary folder and runs the renderer as a
subprocess with the tools python, the one with matplotlib:

    KYUKYU_TOOLS_PYTHON=state/fhir-venv/bin/python3 python3 -m pytest Tests/drill

Without KYUKYU_TOOLS_PYTHON, the tests use state/fhir-venv/bin/python3 of this checkout or, in a git worktree, of
the main checkout. pytest itself may run under another python: only the renderer needs matplotlib.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "drill-report.py"

HEADINGS = (
    "Goals",
    "Data obtained",
    "Time from arrival on scene to summary",
    "Summary at the hospital before arrival",
    "Taps per incident",
    "Delivery latency",
    "Arrival per category",
    "Incident timelines",
    "Reconciliation of the three ledgers",
    "Incidents",
)
CAUSES = ("card", "card", "card", "android", "iphone", "no-card-four-fields", "no-card", "urgent-transport",
          "expired-certificate", "refused-consent", "unconscious", "dead-zone", "onshi-fault", "divert",
          "gateway-restart", "card-removed")
CATEGORIES = ("qualification", "visits", "diagnoses", "medications", "prescriptions", "surgery", "treatment",
              "checkups", "allergies")
UNMET_GOAL = "Summary stored at the hospital before arrival in 90 % of incidents"
MET_GOAL = "Medical data obtained in more than the national 17.4 %"
MISMATCH = "viewing of incident 7 in onshi only <b>injected</b>"


def tools_python() -> str:
    """The python with matplotlib: $KYUKYU_TOOLS_PYTHON, else state/fhir-venv of this checkout or of the main one."""
    if os.environ.get("KYUKYU_TOOLS_PYTHON"):
        return os.environ["KYUKYU_TOOLS_PYTHON"]
    candidates = [REPO / "state" / "fhir-venv" / "bin" / "python3"]
    try:
        common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
        candidates.append(Path(common).parent / "state" / "fhir-venv" / "bin" / "python3")
    except (OSError, subprocess.CalledProcessError):
        pass
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    pytest.fail("no tools python: set KYUKYU_TOOLS_PYTHON or run scripts/install-deps.sh (state/fhir-venv)")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def stats(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99),
            "max": max(values) if values else None, "n": len(values)}


def make_incident(number: int, rng: random.Random) -> dict:
    cause = CAUSES[number % len(CAUSES)]
    obtained = cause in ("card", "android", "iphone", "no-card-four-fields", "unconscious", "divert") \
        or (cause == "dead-zone" and number % 4 == 3)
    events = [("dispatched", 0.0), ("on-scene", rng.uniform(300, 700))]
    t = events[-1][1]
    if cause == "dead-zone":
        events.append(("dead-zone-start", t + 5))
    if obtained:
        for event in ("consent", "card-touched", "summary"):
            t += rng.uniform(10, 60)
            events.append((event, t))
    if cause == "dead-zone":
        t += 40
        events.append(("dead-zone-end", t))
    if cause == "gateway-restart":
        events += [("gateway-killed", t + 10), ("gateway-back", t + 50)]
        t += 50
    t += rng.uniform(60, 300)
    events.append(("depart-scene", t))
    if obtained:
        for event in ("sent", "received", "acknowledged"):
            t += rng.uniform(0.5, 30)
            events.append((event, t))
    if cause == "divert":
        t += 120
        events.append(("diverted", t))
    t += rng.uniform(300, 1200)
    events += [("arrival", t), ("closed", t + 600)]
    categories = {}
    for category in CATEGORIES:
        if not obtained:
            categories[category] = {"state": "not-fetched", "ms": None}
        else:
            state = rng.choice(("arrived", "arrived", "arrived", "none-on-record", "late", "timed-out", "failed"))
            categories[category] = {"state": state,
                                    "ms": None if state in ("timed-out", "failed") else rng.uniform(80, 4000)}
    delivery = rng.uniform(40, 900) if obtained else None
    if cause == "dead-zone" and obtained:
        delivery = 45000.0
    return {
        "number": number,
        "ambulance": f"ambulance-{number % 4 + 1}",
        "hospital": None if cause == "urgent-transport" else f"hospital-{number % 2 + 1}",
        "cause": cause,
        "conditions": [cause] + (["dead-zone"] if number % 7 == 0 and cause != "dead-zone" else []),
        "eligible": cause not in ("no-card", "refused-consent", "urgent-transport"),
        "dataObtained": obtained,
        "identification": {"card": "individual-number-card", "android": "android", "iphone": "iphone",
                           "no-card-four-fields": "lookup-demographics"}.get(cause,
                                                                          "individual-number-card" if obtained else None),
        "summaryBeforeArrival": (number % 5 != 0) if obtained else None,
        "taps": rng.choice((2, 3, 3, 4)) if obtained else None,
        "sceneToSummarySeconds": rng.uniform(40, 200) if obtained else None,
        "deliveryLatencyMs": delivery,
        "timeline": [{"event": event, "at": round(at, 1)} for event, at in events],
        "categories": categories,
        "problems": ["summary stored after arrival"] if obtained and number % 5 == 0 else [],
    }


def make_report(incidents: int = 30, seed: int = 10) -> dict:
    """A plausible "kyukyu-drill/1" report: a mix of causes, nulls where an incident got no data, one unmet goal."""
    rng = random.Random(seed)
    items = [make_incident(n, rng) for n in range(1, incidents + 1)]
    obtained = [i for i in items if i["dataObtained"]]
    eligible = [i for i in items if i["eligible"]]
    by_cause: dict[str, dict] = {}
    for i in items:
        row = by_cause.setdefault(i["cause"], {"incidents": 0, "dataObtained": 0})
        row["incidents"] += 1
        row["dataObtained"] += int(i["dataObtained"])
    histogram: dict[str, int] = {}
    for i in obtained:
        histogram[str(i["taps"])] = histogram.get(str(i["taps"]), 0) + 1
    arrival = {}
    for category in CATEGORIES:
        states = [i["categories"][category] for i in items]
        ms = [s["ms"] for s in states if s["state"] == "arrived"]
        arrival[category] = {"arrived": sum(s["state"] == "arrived" for s in states),
                             "noneOnRecord": sum(s["state"] == "none-on-record" for s in states),
                             "late": sum(s["state"] == "late" for s in states),
                             "timedOut": sum(s["state"] == "timed-out" for s in states),
                             "failed": sum(s["state"] == "failed" for s in states),
                             "p50Ms": percentile(ms, 50), "p90Ms": percentile(ms, 90)}
    before = sum(1 for i in obtained if i["summaryBeforeArrival"])
    eligible_obtained = sum(1 for i in eligible if i["dataObtained"])
    return {
        "format": "kyukyu-drill/1",
        "scenario": {"name": "night-shift", "description": "Four ambulances, two hospitals, a night of calls.",
                     "ambulances": 4, "hospitals": 2, "incidents": incidents, "compression": 60.0, "seed": seed},
        "startedAt": "2026-11-27T15:00:00Z",
        "wallSeconds": 312.5,
        "national": {"dataObtainedPercent": 17.4, "source": "FDMA, マイナ救急 2025 pilot"},
        "incidents": items,
        "summary": {
            "dataObtainedPercent": 100.0 * len(obtained) / incidents if incidents else 0.0,
            "eligible": len(eligible),
            "eligibleObtainedPercent": 100.0 * eligible_obtained / len(eligible) if eligible else None,
            "byCause": by_cause,
            "sceneToSummarySeconds": stats([i["sceneToSummarySeconds"] for i in obtained]),
            "beforeArrivalPercent": 100.0 * before / len(obtained) if obtained else None,
            "sent": len(obtained),
            "beforeArrival": before,
            "taps": {"max": max((i["taps"] for i in obtained), default=None),
                     "mean": sum(i["taps"] for i in obtained) / len(obtained) if obtained else None,
                     "histogram": histogram},
            "deliveryLatencyMs": stats([i["deliveryLatencyMs"] for i in obtained]),
            "categoryArrival": arrival,
        },
        "goals": [
            {"id": "data-obtained", "text": MET_GOAL, "target": "> 17.4 %", "value": "50.0 %", "met": True},
            {"id": "before-arrival", "text": UNMET_GOAL, "target": "≥ 90 %", "value": "80.0 %", "met": False},
        ],
        "reconciliation": {
            "viewings": {"sessions": 9, "onshi": 16, "gateways": 15, "matched": 15, "repeats": 0,
                         "answersLost": 1, "unaccounted": 0},
            "documents": {"sent": len(obtained), "stored": len(obtained), "duplicates": 0, "missing": 0},
            "vaultsEmpty": True, "auditsVerify": True,
            "mismatches": [MISMATCH],
        },
        "ok": False,
    }


def null_report() -> dict:
    """Every field the schema allows to be null is null, lists are empty, and one incident has nothing at all."""
    return {
        "format": "kyukyu-drill/1",
        "scenario": {"name": None, "description": None, "ambulances": None, "hospitals": None, "incidents": None,
                     "compression": None, "seed": None},
        "startedAt": None, "wallSeconds": None,
        "national": {"dataObtainedPercent": None, "source": None},
        "incidents": [{"number": 1, "ambulance": None, "hospital": None, "cause": None, "conditions": None,
                       "eligible": None, "dataObtained": None, "identification": None,
                       "summaryBeforeArrival": None, "taps": None, "sceneToSummarySeconds": None,
                       "deliveryLatencyMs": None, "timeline": None, "categories": None, "problems": None}],
        "summary": {"dataObtainedPercent": None, "eligible": None, "eligibleObtainedPercent": None, "byCause": None,
                    "sceneToSummarySeconds": None, "beforeArrivalPercent": None, "sent": None,
                    "beforeArrival": None, "taps": {"max": None, "mean": None, "histogram": None},
                    "deliveryLatencyMs": {"p50": None, "p90": None, "p99": None, "max": None, "n": 0},
                    "categoryArrival": None},
        "goals": [],
        "reconciliation": {"viewings": None, "documents": None, "vaultsEmpty": None, "auditsVerify": None,
                           "mismatches": None},
        "ok": None,
    }


def zero_report() -> dict:
    report = make_report(incidents=0)
    report["goals"] = []
    report["reconciliation"]["mismatches"] = []
    report["reconciliation"]["viewings"] = {"onshi": 0, "gateways": 0, "matched": 0}
    return report


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([tools_python(), str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def render(tmp_path: Path, report: dict | str) -> str:
    """Writes the report as tmp_path/report.json, renders it to the default place, returns the page."""
    source = tmp_path / "report.json"
    source.write_text(report if isinstance(report, str) else json.dumps(report, ensure_ascii=False),
                      encoding="utf-8")
    result = run(source)
    assert result.returncode == 0, result.stderr
    page = tmp_path / "report.html"
    assert page.exists(), "report.html was not written beside report.json"
    return page.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    return render(tmp_path_factory.mktemp("drill"), make_report())


def headings(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page, re.S)]


def row_with(page: str, text: str) -> str:
    rows = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", page, re.S) if text in row]
    assert len(rows) == 1, f"expected one table row with {text!r}, found {len(rows)}"
    return rows[0]


class Balance(HTMLParser):
    """Counts elements that must be closed (the page is parsed as HTML, not XML)."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
        else:
            self.stack.pop()


# ----------------------------------------------------------------------------------------------------------------

def test_every_section_heading(page):
    found = headings(page)
    for heading in HEADINGS:
        assert heading in found, f"no section heading {heading!r} (found {found})"
    assert "<h1>Drill report: night-shift</h1>" in page
    assert "Four ambulances, two hospitals, a night of calls." in page
    assert "×60" in page and "312.5 s" in page and "2026-11-27 15:00:00 UTC" in page


def test_plots_are_inline(page):
    assert page.count("<svg") >= 7, "expected at least 7 inline SVG figures"
    assert page.count("<svg") == page.count("</svg>")
    for label in ("Cumulative distribution of the time from arrival on scene to summary",
                  "Cumulative distribution of the delivery latency",
                  "Incidents per main cause, and how many had data obtained",
                  "Timeline of each incident, in minutes from dispatch",
                  "Arrival state per data category",
                  "Histogram of taps per incident"):
        assert f'aria-label="{label}"' in page, f"no figure {label!r}"
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_figure_ids_are_unique(page):
    ids = re.findall(r'\bid="([^"]+)"', page)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"ids used twice: {duplicates[:5]}"


def test_page_is_self_contained(page):
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", page, re.I)
    assert not external, f"external references: {external[:3]}"
    assert not re.search(r"url\(\s*[\"']?\s*(?:https?:)?//", page, re.I)


def test_page_is_balanced_html(page):
    parser = Balance()
    parser.feed(page)
    assert not parser.errors, parser.errors[:3]
    assert parser.stack == [], f"unclosed: {parser.stack[-3:]}"


def test_goals_show_met_and_unmet(page):
    assert "✗" in row_with(page, UNMET_GOAL) and "✓" not in row_with(page, UNMET_GOAL)
    assert "unmet" in row_with(page, UNMET_GOAL)
    assert "✓" in row_with(page, MET_GOAL) and "✗" not in row_with(page, MET_GOAL)
    assert "Overall verdict: ✗ failed" in page


def test_verdict_passed(tmp_path):
    report = make_report()
    report["ok"] = True
    assert "Overall verdict: ✓ passed" in render(tmp_path, report)


def test_data_obtained_against_national(page):
    report = make_report()
    percent = report["summary"]["dataObtainedPercent"]
    assert f"{percent:.1f} %" in page
    assert "17.4 %" in page
    assert "FDMA, マイナ救急 2025 pilot" in page
    cards = report["summary"]["byCause"]["card"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row_with(page, "<code>card</code>"))
    assert cells[2:4] == [str(cards["incidents"]), str(cards["dataObtained"])], cells


def test_mismatch_is_escaped(page):
    assert "&lt;b&gt;injected&lt;/b&gt;" in page
    assert "<b>injected</b>" not in page


def test_incident_table(page):
    rows = re.findall(r'<tr class="nodata">', page)
    report = make_report()
    assert len(rows) == sum(1 for i in report["incidents"] if not i["dataObtained"])
    assert "summary stored after arrival" in page


def test_html_option(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(make_report(5)), encoding="utf-8")
    out = tmp_path / "elsewhere" / "drill.html"
    out.parent.mkdir()
    result = run(source, "--html", out)
    assert result.returncode == 0, result.stderr
    assert out.exists() and not (tmp_path / "report.html").exists()


def test_zero_incidents(tmp_path):
    page = render(tmp_path, zero_report())
    found = headings(page)
    for heading in HEADINGS:
        assert heading in found
    assert "No incidents; there is nothing to plot." in page
    assert "<h3>Mismatches (0)</h3><p>None.</p>" in page


def test_nulls(tmp_path):
    page = render(tmp_path, null_report())
    for heading in HEADINGS:
        assert heading in headings(page)
    assert "Overall verdict: none given" in page
    assert "<h3>Mismatches (0)</h3><p>Not in the report.</p>" in page


def test_timelines_capped(tmp_path):
    page = render(tmp_path, make_report(incidents=75))
    assert "Showing the first 60 of 75 incidents." in page


def test_timelines_not_capped(page):
    assert "Showing the first" not in page


def bad(tmp_path: Path, content: str | None) -> subprocess.CompletedProcess:
    source = tmp_path / "report.json"
    if content is not None:
        source.write_text(content, encoding="utf-8")
    result = run(source)
    assert not (tmp_path / "report.html").exists()
    return result


def without(key: str) -> str:
    report = make_report(3)
    del report[key]
    return json.dumps(report)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not JSON"),
    ("[1, 2]", "not a kyukyu-drill report"),
    (json.dumps({**make_report(3), "format": "kyukyu-drill/2"}), 'format is "kyukyu-drill/2"'),
    (without("format"), "missing key 'format'"),
    (without("summary"), "missing key 'summary'"),
    (without("reconciliation"), "missing key 'reconciliation'"),
    (json.dumps({**make_report(3), "incidents": {"1": {}}}), "'incidents' is not a list"),
], ids=("missing-file", "not-json", "not-an-object", "wrong-format", "no-format", "no-summary",
        "no-reconciliation", "incidents-not-a-list"))
def test_bad_input(tmp_path, content, message):
    result = bad(tmp_path, content)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_report_is_not_modified(tmp_path):
    report = make_report(4)
    source = tmp_path / "report.json"
    text = json.dumps(report)
    source.write_text(text, encoding="utf-8")
    assert run(source).returncode == 0
    assert source.read_text(encoding="utf-8") == text
