#!/usr/bin/env python3
"""Renders a drill's report.json (format "kyukyu-drill/1", written by kyukyu-drill) as one HTML page (issue 10).

    drill-report.py REPORT_JSON [--html OUT]

OUT defaults to report.html beside REPORT_JSON. The page stands alone: no script, stylesheet, font or image from
anywhere else; the plots are matplotlib figures (Agg backend) inlined as SVG, so it works offline and prints.
It needs matplotlib, which the tools venv has:

    state/fhir-venv/bin/python3 scripts/drill-report.py state/drill/<run>/report.json

Exit status: 0 the page was written; 2 the report is missing, is not JSON, is not "kyukyu-drill/1" or lacks a
required key (the one-line message on stderr names the problem); 1 matplotlib is missing or the page could not be
written. Null values, empty lists and a drill with no incidents render (as "—" or a sentence saying there is nothing).
"""
from __future__ import annotations

import argparse
import html
import io
import itertools
import json
import math
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator
except ImportError:  # reported in main(), after the input has been checked
    plt = None

FORMAT = "kyukyu-drill/1"
REQUIRED_KEYS = ("format", "scenario", "startedAt", "wallSeconds", "national", "incidents", "summary", "goals",
                 "reconciliation", "ok")
TIMELINE_CAP = 60
DASH = "—"

# Plain-English meaning of each cause and condition, in the order the tables and the bar chart use.
CAUSES = {
    "card": "My Number card read at the scene",
    "android": "card function on an Android phone",
    "iphone": "card function on an iPhone",
    "no-card-four-fields": "no card; looked up by name, birth date, sex and address",
    "no-card": "no card and no look-up",
    "urgent-transport": "left at once, no time to read the card",
    "expired-certificate": "card's certificate expired",
    "revoked-certificate": "card's certificate revoked",
    "suspended-certificate": "card's certificate suspended",
    "refused-consent": "patient refused consent",
    "unconscious": "patient unconscious",
    "dead-zone": "no mobile signal at the scene",
    "onshi-fault": "onshi (eligibility service) failed",
    "maintenance": "onshi closed for maintenance",
    "divert": "diverted to another hospital",
    "gateway-restart": "ambulance gateway restarted",
    "card-removed": "card taken off the reader too early",
}
CATEGORIES = ("qualification", "visits", "diagnoses", "medications", "prescriptions", "surgery", "treatment",
              "checkups", "allergies")
# (summary key, label, colour) of the per-category arrival states, in stacking order.
ARRIVAL_STATES = (
    ("arrived", "arrived", "#2e7d32"),
    ("noneOnRecord", "none on record", "#9e9e9e"),
    ("late", "late", "#e6a100"),
    ("timedOut", "timed out", "#d9480f"),
    ("failed", "failed", "#b00020"),
)
# Timeline: the phase after each event (coloured), events drawn as markers, and on/off pairs drawn as bands.
PHASES = {
    "dispatched": ("since dispatch", "#bdbdbd"),
    "on-scene": ("since arrival on scene", "#90caf9"),
    "consent": ("since consent", "#42a5f5"),
    "card-touched": ("since the card was touched", "#1565c0"),
    "summary": ("since the summary", "#66bb6a"),
    "depart-scene": ("since leaving the scene", "#ffcc80"),
    "sent": ("since sent", "#ffb74d"),
    "received": ("since received", "#ff9800"),
    "acknowledged": ("since acknowledged", "#a1887f"),
    "diverted": ("since diverted", "#ce93d8"),
    "arrival": ("since arrival at hospital", "#616161"),
}
EXTRA_PHASE_COLOURS = ("#80cbc4", "#f48fb1", "#c5e1a5", "#b39ddb", "#ffe082", "#bcaaa4")
MARKERS = {
    "summary": ("D", "#1b5e20", "summary"),
    "arrival": ("s", "#000000", "arrival at hospital"),
    "diverted": ("^", "#6a1b9a", "diverted"),
    "gateway-killed": ("X", "#b00020", "gateway killed"),
}
BANDS = (("dead-zone-start", "dead-zone-end", "#455a64", "no signal (dead zone)"),
         ("gateway-killed", "gateway-back", "#b00020", "gateway down"))
BAND_EVENTS = {event for band in BANDS for event in band[:2]}
OBTAINED_COLOUR = "#1f5fa8"
TOTAL_COLOUR = "#d5dbe1"

SECTIONS = (
    ("goals", "Goals"),
    ("data", "Data obtained"),
    ("scene", "Time from arrival on scene to summary"),
    ("before", "Summary at the hospital before arrival"),
    ("taps", "Taps per incident"),
    ("delivery", "Delivery latency"),
    ("categories", "Arrival per category"),
    ("timelines", "Incident timelines"),
    ("reconciliation", "Reconciliation of the three ledgers"),
    ("incidents", "Incidents"),
)

CSS = """
body { font-family: "Noto Sans", "Noto Sans CJK JP", "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #111;
       background: #fff; max-width: 75rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 2px solid #333; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { border: 1px solid #777; padding: .25rem .5rem; vertical-align: top; }
th { background: #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.met { color: #1a7f37; font-weight: bold; white-space: nowrap; }
.unmet { color: #b42318; font-weight: bold; white-space: nowrap; }
.verdict { font-size: 1.15rem; padding: .5rem .8rem; border: 2px solid; display: inline-block; }
.verdict.met { background: #eaf6ec; } .verdict.unmet { background: #fdecea; }
tr.nodata td { background: #fdecea; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #333; max-width: 60rem; }
.note { color: #333; font-size: .9rem; }
.empty { font-style: italic; }
nav ol { columns: 2; }
.incidents { font-size: .85rem; }
.incidents td:nth-child(-n+4) { white-space: nowrap; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure, tr { break-inside: avoid; }
}
"""


class ReportError(Exception):
    """The report cannot be rendered; the message says why (exit status 2)."""


# ----------------------------------------------------------------------------------------------------------------
# Reading and checking the report

def load_report(path: Path) -> dict[str, Any]:
    """The parsed report, or ReportError naming the problem: no file, not JSON, wrong format, a missing key."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not JSON (not UTF-8 text)") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        report = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(report, dict):
        raise ReportError(f"{path}: not a kyukyu-drill report (the JSON is not an object)")
    if "format" not in report:
        raise ReportError(f"{path}: missing key 'format' (expected \"{FORMAT}\")")
    if report["format"] != FORMAT:
        raise ReportError(f"{path}: format is {json.dumps(report['format'])}, expected \"{FORMAT}\"")
    for key in REQUIRED_KEYS:
        if key not in report:
            raise ReportError(f"{path}: missing key '{key}'")
    for key, kind, name in (("scenario", dict, "an object"), ("national", dict, "an object"),
                            ("summary", dict, "an object"), ("reconciliation", dict, "an object"),
                            ("incidents", list, "a list"), ("goals", list, "a list")):
        if report[key] is not None and not isinstance(report[key], kind):
            raise ReportError(f"{path}: '{key}' is not {name}")
    for key in ("incidents", "goals"):
        for index, item in enumerate(report[key] or []):
            if not isinstance(item, dict):
                raise ReportError(f"{path}: '{key}[{index}]' is not an object")
    return report


def get(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]…, or None where a level is missing, null or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def number(value: Any) -> float | None:
    """A finite number, or None (null, text, booleans, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int:
    """A count: an integer, 0 for anything else."""
    n = number(value)
    return int(n) if n is not None else 0


def items(value: Any) -> list:
    return value if isinstance(value, list) else []


def mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def incidents_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [incident for incident in items(report.get("incidents")) if isinstance(incident, dict)]


# ----------------------------------------------------------------------------------------------------------------
# Formatting

def esc(value: Any) -> str:
    """Escaped text for HTML; "—" for null."""
    return DASH if value is None else html.escape(str(value))


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    n = number(value)
    if n is None:
        return DASH
    text = f"{n:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def pct(value: Any) -> str:
    return fmt(value, 1, "%")


def yes_no(value: Any) -> str:
    return {True: "yes", False: "no"}.get(value, DASH) if isinstance(value, bool) else DASH


def tick(value: Any, yes: str = "met", no: str = "not met") -> str:
    """✓/✗ with its word and colour (the word keeps it readable without colour); "—" for null."""
    if value is True:
        return f'<span class="met">✓ {yes}</span>'
    if value is False:
        return f'<span class="unmet">✗ {no}</span>'
    return DASH


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: set[int] = frozenset(),
          row_classes: Iterable[str] | None = None, css: str = "") -> str:
    """A bordered table; cells are already HTML. Columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    classes = iter(row_classes) if row_classes is not None else itertools.repeat("")
    for row, klass in zip(rows, classes):
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f'<tr class="{klass}">{cells}</tr>' if klass else f"<tr>{cells}</tr>")
    css_attr = f' class="{css}"' if css else ""
    return f"<table{css_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def empty(sentence: str) -> str:
    return f'<p class="empty">{esc(sentence)}</p>'


def started_at(value: Any) -> str:
    """The start in UTC and in Japan time, or the text as given when it is not an ISO 8601 time."""
    if not isinstance(value, str):
        return DASH
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return esc(value)
    if moment.tzinfo is None:
        return esc(value)
    utc = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    jst = moment.astimezone(timezone(timedelta(hours=9))).strftime("%Y-%m-%d %H:%M:%S JST")
    return f"{utc} ({jst})"


def duration(seconds: Any) -> str:
    s = number(seconds)
    if s is None:
        return DASH
    if s < 60:
        return f"{s:,.1f} s"
    minutes, rest = divmod(int(round(s)), 60)
    return f"{s:,.1f} s ({minutes} min {rest} s)"


def ordered(keys: Iterable[str], known: Iterable[str]) -> list[str]:
    """Known keys in their usual order, then the others alphabetically."""
    keys = list(keys)
    known = list(known)
    return [k for k in known if k in keys] + sorted(k for k in keys if k not in known)


# ----------------------------------------------------------------------------------------------------------------
# Figures

_figure_ids = itertools.count(1)


def plot_text(value: Any) -> str:
    """Text for a plot label: matplotlib would read $…$ as mathematics."""
    return str(value).replace("$", r"\$")


def new_figure(width: float, height: float):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def svg(fig, label: str) -> str:
    """The figure as inline SVG: no XML prolog or DTD, ids prefixed so that several figures share one page."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    prefix = f"fig{next(_figure_ids)}-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r'(href="#|url\(#)', lambda m: m.group(1) + prefix, text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def figure(svg_text: str, caption: str) -> str:
    return f"<figure>{svg_text}<figcaption>{caption}</figcaption></figure>"


def cdf_plot(values: list[float], xlabel: str, marks: dict[str, float | None], label: str) -> str:
    """Empirical CDF: the share of incidents at or below each x, with dashed lines at the given percentiles."""
    xs = sorted(values)
    n = len(xs)
    ys = [100.0 * (i + 1) / n for i in range(n)]
    fig, ax = new_figure(8, 3.6)
    ax.step([xs[0]] + xs, [0.0] + ys, where="post", color=OBTAINED_COLOUR, linewidth=1.8)
    if n > 1 and xs[0] > 0 and xs[-1] / xs[0] > 100:
        ax.set_xscale("log")
        xlabel += " (log scale)"
    same: dict[float, list[str]] = {}  # equal percentiles share one line and one label ("p90 = p99")
    for name, value in marks.items():
        if value is not None:
            same.setdefault(value, []).append(name)
    for index, (value, names) in enumerate(same.items()):
        ax.axvline(value, color="#555", linestyle="--", linewidth=0.9)
        ax.annotate(" = ".join(names), (value, 3 + 9 * index), xytext=(3, 0), textcoords="offset points",
                    fontsize=9, color="#333")
    ax.set_ylim(0, 101)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("% of incidents at or below")
    ax.grid(True, color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    return svg(fig, label)


def percentiles_text(stats: Any, unit: str, digits: int) -> str:
    return ", ".join(f"{name} {fmt(get(stats, name), digits, unit)}" for name in ("p50", "p90", "p99", "max"))


# ----------------------------------------------------------------------------------------------------------------
# The sections

def section_title(report: dict[str, Any]) -> str:
    scenario = mapping(report.get("scenario"))
    name = scenario.get("name")
    compression = number(scenario.get("compression"))
    compression_text = DASH if compression is None else (
        f"×{compression:g} (one second of wall time stands for {compression:g} s of scenario time)")
    rows = [
        ("Ran at", started_at(report.get("startedAt"))),
        ("Took (wall time)", duration(report.get("wallSeconds"))),
        ("Ambulances", fmt(scenario.get("ambulances"), 0)),
        ("Hospitals", fmt(scenario.get("hospitals"), 0)),
        ("Incidents", f"{fmt(scenario.get('incidents'), 0)} in the scenario, "
                      f"{len(incidents_of(report))} in this report"),
        ("Time compression", compression_text),
        ("Seed", esc(scenario.get("seed"))),
    ]
    facts = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    description = scenario.get("description")
    return (f"<h1>Drill report: {esc(name) if name is not None else 'unnamed scenario'}</h1>"
            + (f"<p>{esc(description)}</p>" if description else "")
            + f"<table>{facts}</table>")


def section_contents() -> str:
    links = "".join(f'<li><a href="#{anchor}">{esc(title)}</a></li>' for anchor, title in SECTIONS)
    return f"<nav><h2>Contents</h2><ol>{links}</ol></nav>"


def section_goals(report: dict[str, Any]) -> str:
    goals = [goal for goal in items(report.get("goals")) if isinstance(goal, dict)]
    ok = report.get("ok")
    met = sum(1 for goal in goals if goal.get("met") is True)
    unmet = [goal for goal in goals if goal.get("met") is False]
    if ok is True:
        verdict = '<p class="verdict met">Overall verdict: ✓ passed</p>'
    elif ok is False:
        verdict = '<p class="verdict unmet">Overall verdict: ✗ failed</p>'
    else:
        verdict = '<p class="verdict">Overall verdict: none given</p>'
    tally = f"<p>{met} of {len(goals)} goals met."
    if unmet:
        tally += " Not met: " + "; ".join(esc(goal.get("text") or goal.get("id")) for goal in unmet) + "."
    tally += "</p>"
    if not goals:
        return verdict + empty("The report sets no goals.")
    rows = [(esc(goal.get("text") or goal.get("id")), esc(goal.get("target")), esc(goal.get("value")),
             tick(goal.get("met"))) for goal in goals]
    return verdict + tally + table(("Goal", "Target", "Value", "Met"), rows)


def section_data(report: dict[str, Any]) -> str:
    summary = mapping(report.get("summary"))
    national = mapping(report.get("national"))
    incidents = incidents_of(report)
    obtained = sum(1 for incident in incidents if incident.get("dataObtained") is True)
    eligible = [incident for incident in incidents if incident.get("eligible") is True]
    eligible_obtained = sum(1 for incident in eligible if incident.get("dataObtained") is True)
    overall = number(summary.get("dataObtainedPercent"))
    national_percent = number(national.get("dataObtainedPercent"))
    source = national.get("source")
    parts = [
        f"<p>Medical data was obtained from onshi for <strong>{pct(overall)}</strong> of the incidents "
        f"({obtained} of {len(incidents)}). The national figure is <strong>{pct(national_percent)}</strong>"
        + (f" (source: {esc(source)})" if source else "") + ".</p>",
        f"<p>Among the {fmt(summary.get('eligible'), 0)} incidents the drill counts as eligible: "
        f"<strong>{pct(summary.get('eligibleObtainedPercent'))}</strong> "
        f"({eligible_obtained} of {len(eligible)} in the incident list).</p>",
    ]
    if overall is not None and national_percent is not None:
        parts.append(figure(comparison_plot(overall, national_percent),
                            "The share of incidents with data obtained, in this drill and nationally."))
    by_cause = {cause: mapping(value) for cause, value in mapping(summary.get("byCause")).items()}
    if not by_cause:
        parts.append(empty("No per-cause figures in the report."))
        return "".join(parts)
    causes = ordered(by_cause, CAUSES)
    totals = [count(by_cause[c].get("incidents")) for c in causes]
    got = [count(by_cause[c].get("dataObtained")) for c in causes]
    parts.append(figure(cause_plot(causes, totals, got),
                        "Each bar is the number of incidents with that main cause; the dark part is those for "
                        "which data was obtained. The label gives both counts."))
    rows = []
    for cause, total, n in zip(causes, totals, got):
        rows.append((f"<code>{esc(cause)}</code>", esc(CAUSES.get(cause, "")), str(total), str(n),
                     pct(100.0 * n / total) if total else DASH))
    parts.append(table(("Main cause", "Meaning", "Incidents", "Data obtained", "Share"), rows, numeric={2, 3, 4}))
    return "".join(parts)


def comparison_plot(drill: float, national: float) -> str:
    fig, ax = new_figure(6, 1.4)
    ax.barh([0, 1], [drill, national], color=[OBTAINED_COLOUR, "#8c8c8c"], height=0.6)
    ax.set_yticks([0, 1], ["this drill", "national"])
    ax.invert_yaxis()
    top = max(100.0, drill, national)
    for y, value in ((0, drill), (1, national)):
        ax.text(value + top * 0.01, y, f"{value:.1f} %", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.08)
    ax.set_xlabel("% of incidents with data obtained")
    return svg(fig, "Data obtained: this drill against the national figure")


def cause_plot(causes: list[str], totals: list[int], got: list[int]) -> str:
    fig, ax = new_figure(8, 0.38 * len(causes) + 1.0)
    y = range(len(causes))
    ax.barh(y, totals, color=TOTAL_COLOUR, edgecolor="#888", linewidth=0.5, label="incidents")
    ax.barh(y, got, color=OBTAINED_COLOUR, label="data obtained")
    ax.set_yticks(list(y), [plot_text(c) for c in causes])
    ax.invert_yaxis()
    most = max(totals + [1])
    for i, (total, n) in enumerate(zip(totals, got)):
        ax.text(total + most * 0.01, i, f"{n} of {total}", va="center", fontsize=9)
    ax.set_xlim(0, most * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("incidents")
    ax.legend(loc="lower right", frameon=False, fontsize=9)
    return svg(fig, "Incidents per main cause, and how many had data obtained")


def section_scene(report: dict[str, Any]) -> str:
    stats = get(report, "summary", "sceneToSummarySeconds")
    values = [v for v in (number(i.get("sceneToSummarySeconds")) for i in incidents_of(report)) if v is not None]
    text = (f"<p>From the ambulance's arrival on scene to the summary on the crew's tablet, over "
            f"{fmt(get(stats, 'n'), 0)} incidents with a summary: {percentiles_text(stats, 's', 1)}.</p>")
    if not values:
        return text + empty("No incident has a time from scene to summary; there is nothing to plot.")
    marks = {name: number(get(stats, name)) for name in ("p50", "p90", "p99")}
    plot = cdf_plot(values, "seconds from arrival on scene to summary", marks,
                    "Cumulative distribution of the time from arrival on scene to summary")
    return text + figure(plot, "How to read: a point (x, y) on the curve means y % of these incidents had their "
                               "summary within x seconds of arriving on scene. The steeper and further left, the "
                               "better. Dashed lines: p50, p90, p99.")


def section_before(report: dict[str, Any]) -> str:
    summary = mapping(report.get("summary"))
    incidents = incidents_of(report)
    before = sum(1 for i in incidents if i.get("summaryBeforeArrival") is True)
    after = sum(1 for i in incidents if i.get("summaryBeforeArrival") is False)
    unknown = len(incidents) - before - after
    text = (f"<p>Summaries stored at the receiving hospital before the ambulance arrived: "
            f"<strong>{pct(summary.get('beforeArrivalPercent'))}</strong> "
            f"({fmt(summary.get('beforeArrival'), 0)} of {fmt(summary.get('sent'), 0)} summaries sent).</p>")
    rows = [("Stored before arrival", str(before)),
            ("Stored after arrival, or not stored", str(after)),
            ("Not applicable (no summary sent)", str(unknown))]
    return text + "<p>Per incident:</p>" + table(("Incidents", "Count"), rows, numeric={1})


def section_taps(report: dict[str, Any]) -> str:
    taps = mapping(get(report, "summary", "taps"))
    histogram = mapping(taps.get("histogram"))
    text = (f"<p>Taps on the crew's tablet from touching the card to the summary on screen: "
            f"max {fmt(taps.get('max'), 0)}, mean {fmt(taps.get('mean'), 2)}.</p>")
    bins = []
    for key, value in histogram.items():
        try:
            bins.append((int(key), count(value)))
        except ValueError:
            continue
    if not bins:
        return text + empty("No taps histogram in the report.")
    bins.sort()
    fig, ax = new_figure(5, 2.6)
    xs = [b[0] for b in bins]
    ys = [b[1] for b in bins]
    ax.bar(xs, ys, color=OBTAINED_COLOUR, width=0.7)
    for x, y in bins:
        ax.text(x, y, str(y), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(xs)
    ax.set_xlabel("taps")
    ax.set_ylabel("incidents")
    ax.set_ylim(0, max(ys + [1]) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return text + figure(svg(fig, "Histogram of taps per incident"),
                         "Number of incidents (bar height) for each number of taps.")


def section_delivery(report: dict[str, Any]) -> str:
    stats = get(report, "summary", "deliveryLatencyMs")
    values = [v for v in (number(i.get("deliveryLatencyMs")) for i in incidents_of(report)) if v is not None]
    text = (f"<p>From the crew tapping Send to the summary stored at the hospital, over "
            f"{fmt(get(stats, 'n'), 0)} deliveries: {percentiles_text(stats, 'ms', 0)}.</p>")
    if not values:
        return text + empty("No incident has a delivery latency; there is nothing to plot.")
    marks = {name: number(get(stats, name)) for name in ("p50", "p90", "p99")}
    plot = cdf_plot(values, "milliseconds from Send to stored at the hospital", marks,
                    "Cumulative distribution of the delivery latency")
    return text + figure(plot, "How to read: a point (x, y) means y % of the summaries were stored at the hospital "
                               "within x ms of Send. A long tail to the right shows the slow deliveries (a dead "
                               "zone or a restart holds a summary until the link is back). Dashed lines: p50, p90, "
                               "p99.")


def section_categories(report: dict[str, Any]) -> str:
    arrival = {k: mapping(v) for k, v in mapping(get(report, "summary", "categoryArrival")).items()}
    if not arrival:
        return empty("No per-category figures in the report.")
    categories = ordered(arrival, CATEGORIES)
    fig, ax = new_figure(8, 0.38 * len(categories) + 1.2)
    left = [0] * len(categories)
    y = list(range(len(categories)))
    for key, label, colour in ARRIVAL_STATES:
        widths = [count(arrival[c].get(key)) for c in categories]
        ax.barh(y, widths, left=left, color=colour, label=label, edgecolor="white", linewidth=0.5)
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(y, [plot_text(c) for c in categories])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("incidents")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9)
    plot = figure(svg(fig, "Arrival state per data category"),
                  "For each category of medical data, how many fetches arrived, found nothing on record, arrived "
                  "late, timed out or failed.")
    rows = []
    for c in categories:
        row = arrival[c]
        rows.append([f"<code>{esc(c)}</code>"] + [str(count(row.get(key))) for key, _, _ in ARRIVAL_STATES]
                    + [fmt(row.get("p50Ms"), 0), fmt(row.get("p90Ms"), 0)])
    headers = ["Category"] + [label for _, label, _ in ARRIVAL_STATES] + ["p50 ms", "p90 ms"]
    return plot + table(headers, rows, numeric=set(range(1, len(headers))))


def section_timelines(report: dict[str, Any]) -> str:
    incidents = incidents_of(report)
    if not incidents:
        return empty("No incidents; there is nothing to plot.")
    shown = incidents[:TIMELINE_CAP]
    note = (f'<p class="note">Showing the first {len(shown)} of {len(incidents)} incidents.</p>'
            if len(incidents) > TIMELINE_CAP else "")
    return note + figure(timeline_plot(shown),
                         "One row per incident; x is minutes from dispatch. Each coloured segment is the time since "
                         "the event at its left end, up to the next event; small ticks mark every event. Thin bands "
                         "under a row show a dead zone or the gateway down. Rows labelled in red, with a red "
                         "background, are incidents without data obtained.")


def timeline_events(incident: dict[str, Any]) -> list[tuple[str, float]]:
    """The incident's events with a time, as (event, minutes from dispatch), in the report's order."""
    events = []
    for entry in items(incident.get("timeline")):
        at = number(get(entry, "at"))
        if at is not None:
            events.append((str(get(entry, "event")), at / 60.0))
    return events


def timeline_plot(incidents: list[dict[str, Any]]) -> str:
    fig, ax = new_figure(10, 0.3 * len(incidents) + 1.4)
    phase_colours = {event: colour for event, (_, colour) in PHASES.items()}
    extra = itertools.cycle(EXTRA_PHASE_COLOURS)
    used_phases: dict[str, str] = {}
    used_markers: set[str] = set()
    used_bands: set[int] = set()
    labels = []
    end = 0.0
    for row, incident in enumerate(incidents):
        events = timeline_events(incident)
        if events:
            end = max(end, max(t for _, t in events))
        no_data = incident.get("dataObtained") is not True
        if no_data:
            ax.axhspan(row - 0.5, row + 0.5, color="#fdecea", zorder=0)
        labels.append(f"#{incident.get('number', '?')} {incident.get('cause') or ''}" + ("  no data" if no_data else ""))
        phases = [(e, t) for e, t in events if e not in BAND_EVENTS]
        for (event, start), (_, stop) in zip(phases, phases[1:]):
            if stop <= start:
                continue
            if event not in phase_colours:
                phase_colours[event] = next(extra)
            used_phases[event] = phase_colours[event]
            ax.barh(row, stop - start, left=start, height=0.55, color=phase_colours[event], zorder=2)
        for event, t in events:
            ax.plot([t], [row], marker="|", color="#222", markersize=7, zorder=3)
            if event in MARKERS:
                shape, colour, _ = MARKERS[event]
                ax.plot([t], [row], marker=shape, color=colour, markersize=5.5, linestyle="none", zorder=4)
                used_markers.add(event)
        last = events[-1][1] if events else 0.0
        for index, (on, off, colour, _) in enumerate(BANDS):
            start = None
            for event, t in events:
                if event == on and start is None:
                    start = t
                elif event == off and start is not None:
                    ax.plot([start, t], [row + 0.36, row + 0.36], color=colour, linewidth=2.2, zorder=3)
                    used_bands.add(index)
                    start = None
            if start is not None:  # never came back within the timeline
                ax.plot([start, max(last, start)], [row + 0.36, row + 0.36], color=colour, linewidth=2.2, zorder=3)
                used_bands.add(index)
    ax.set_yticks(range(len(incidents)), [plot_text(label) for label in labels], fontsize=8)
    for label, incident in zip(ax.get_yticklabels(), incidents):
        if incident.get("dataObtained") is not True:
            label.set_color("#b00020")
    ax.set_ylim(len(incidents) - 0.5, -0.5)
    ax.set_xlim(0, max(end, 1.0) * 1.02)
    ax.set_xlabel("minutes from dispatch")
    ax.grid(True, axis="x", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    handles = [Patch(color=colour, label=plot_text(PHASES.get(event, (f"since {event}",))[0]))
               for event, colour in used_phases.items()]
    handles += [Line2D([], [], marker=MARKERS[e][0], color=MARKERS[e][1], linestyle="none", label=MARKERS[e][2])
                for e in MARKERS if e in used_markers]
    handles += [Line2D([], [], color=BANDS[i][2], linewidth=2.2, label=BANDS[i][3]) for i in sorted(used_bands)]
    if any(incident.get("dataObtained") is not True for incident in incidents):
        handles.append(Patch(color="#fdecea", label="no data obtained"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    return svg(fig, "Timeline of each incident, in minutes from dispatch")


def section_reconciliation(report: dict[str, Any]) -> str:
    rec = mapping(report.get("reconciliation"))
    viewings = mapping(rec.get("viewings"))
    documents = mapping(rec.get("documents"))
    v_rows = [("Sessions in onshi's viewing log (one per card read or lookup)", fmt(viewings.get("sessions"), 0)),
              ("Sessions no incident of the drill accounts for", fmt(viewings.get("unaccounted"), 0)),
              ("Categories onshi answered (successful fetches)", fmt(viewings.get("onshi"), 0)),
              ("Categories the gateways stored (their audit trails)", fmt(viewings.get("gateways"), 0)),
              ("Stored categories backed by a fetch at onshi in the same incident", fmt(viewings.get("matched"), 0)),
              ("Repeats: a stored category fetched again (hedged or retried requests)", fmt(viewings.get("repeats"), 0)),
              ("Answers lost to a fault (onshi answered, the gateway never received it)",
               fmt(viewings.get("answersLost"), 0))]
    d_rows = [("Summaries sent by the gateways", fmt(documents.get("sent"), 0)),
              ("Stored by the hospitals", fmt(documents.get("stored"), 0)),
              ("Duplicates", fmt(documents.get("duplicates"), 0)),
              ("Missing (sent, never stored)", fmt(documents.get("missing"), 0))]
    checks = [("Gateway vaults empty after the drill (no patient data left on the ambulances)",
               tick(rec.get("vaultsEmpty"), "yes", "no")),
              ("Every audit trail verifies (hash chain and signed head)", tick(rec.get("auditsVerify"), "yes", "no"))]
    mismatches = items(rec.get("mismatches"))
    if mismatches:
        mismatch_html = "<ul>" + "".join(f"<li>{esc(m)}</li>" for m in mismatches) + "</ul>"
    elif rec.get("mismatches") is None:
        mismatch_html = "<p>Not in the report.</p>"
    else:
        mismatch_html = "<p>None.</p>"
    return ("<p>The drill compares three records of the same events: onshi's record of who viewed which patient's "
            "data, each ambulance gateway's audit trail, and each hospital's received documents.</p>"
            "<h3>Viewings</h3>" + table(("", "Count"), v_rows, numeric={1})
            + "<h3>Documents</h3>" + table(("", "Count"), d_rows, numeric={1})
            + "<h3>Checks</h3>" + table(("Check", "Result"), checks)
            + f"<h3>Mismatches ({len(mismatches)})</h3>" + mismatch_html)


def section_incidents(report: dict[str, Any]) -> str:
    incidents = incidents_of(report)
    if not incidents:
        return empty("The report has no incidents.")
    rows = []
    classes = []
    for i in incidents:
        rows.append((
            esc(i.get("number")),
            esc(i.get("ambulance")),
            esc(i.get("hospital")),
            esc(i.get("cause")),
            esc(", ".join(str(c) for c in items(i.get("conditions")))) if items(i.get("conditions")) else DASH,
            esc(i.get("identification")),
            tick(i.get("dataObtained"), "yes", "no"),
            yes_no(i.get("summaryBeforeArrival")),
            fmt(i.get("taps"), 0),
            fmt(i.get("sceneToSummarySeconds"), 1),
            fmt(i.get("deliveryLatencyMs"), 0),
            "; ".join(esc(p) for p in items(i.get("problems"))) or DASH,
        ))
        classes.append("" if i.get("dataObtained") is True else "nodata")
    headers = ("No.", "Ambulance", "Hospital", "Main cause", "Conditions", "Identification", "Data obtained",
               "Summary before arrival", "Taps", "Scene → summary (s)", "Delivery (ms)", "Problems")
    return ('<p class="note">Rows with a red background: no data obtained.</p>'
            + table(headers, rows, numeric={0, 8, 9, 10}, row_classes=classes, css="incidents"))


# ----------------------------------------------------------------------------------------------------------------
# The page

def render(report: dict[str, Any], source_name: str) -> str:
    """The whole page as HTML text."""
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "kyukyu-drill", "font.size": 10,
                         "font.family": "DejaVu Sans"})
    bodies = {
        "goals": section_goals, "data": section_data, "scene": section_scene, "before": section_before,
        "taps": section_taps, "delivery": section_delivery, "categories": section_categories,
        "timelines": section_timelines, "reconciliation": section_reconciliation, "incidents": section_incidents,
    }
    sections = "".join(f'<section id="{anchor}"><h2>{esc(title)}</h2>{bodies[anchor](report)}</section>'
                       for anchor, title in SECTIONS)
    name = get(report, "scenario", "name")
    title = f"Drill report: {name}" if name is not None else "Drill report"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            + section_title(report) + section_contents() + sections
            + f'<p class="note">Rendered by scripts/drill-report.py from {esc(source_name)} '
              f"({esc(FORMAT)}).</p></body></html>\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drill-report.py",
                                     description="Render a drill's report.json as one self-contained HTML page.")
    parser.add_argument("report", type=Path, help="the drill's report.json")
    parser.add_argument("--html", type=Path, help="where to write the page (default: report.html beside the report)")
    args = parser.parse_args(argv)
    try:
        report = load_report(args.report)
    except ReportError as error:
        print(f"drill-report: {error}", file=sys.stderr)
        return 2
    if plt is None:
        print("drill-report: matplotlib is missing: run it with the tools venv, state/fhir-venv/bin/python3",
              file=sys.stderr)
        return 1
    out = args.html or args.report.with_name("report.html")
    page = render(report, args.report.name)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as error:
        print(f"drill-report: {out}: cannot be written ({error.strerror})", file=sys.stderr)
        return 1
    print(f"drill-report: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
