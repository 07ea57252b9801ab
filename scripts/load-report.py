#!/usr/bin/env python3
"""The HTML report of kyukyu-load's sweeps (issue 10): one self-contained page, plots as inline SVG (matplotlib),
nothing from a CDN.

    state/fhir-venv/bin/python3 scripts/load-report.py [state/bench/load] [--out state/bench/load-report.html]

Reads each <folder>/<target>/sweep.json, its rate-*/result.json and rate-*/{corrected,uncorrected}.hgrm, and, for
the http target, wrk.json (wrk's closed-loop runs on the same endpoint, from scripts/bench-load.py). Per target:
  - the percentile spectrum, HdrHistogram style (x: 1/(1-p) on a log axis), from the due time and from the send,
    at the knee and at the highest rate, with wrk's percentiles beside them;
  - answers per second over time, at every rate;
  - latency against offered load (p50 and p99 from the due time, p99 from the send), the knee marked, wrk's p99 at
    its closed-loop rate.
"""
from __future__ import annotations

import argparse
import html
import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
matplotlib.rcParams["font.size"] = 9


def svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def read_hgrm(path: Path) -> list[tuple[float, float]]:
    """(value in ms, 1/(1-percentile)) rows of an HdrHistogram percentile distribution (the last row, p = 1, has
    no finite 1/(1-p) and is left out)."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4 or line.lstrip().startswith("#"):
            continue
        try:
            value, percentile, inverse = float(parts[0]), float(parts[1]), float(parts[3])
        except ValueError:
            continue  # the header line
        if percentile < 1 and inverse != float("inf"):
            rows.append((value, inverse))
    return rows


def spectrum_axis(axis) -> None:
    axis.set_xscale("log")
    ticks = [1, 10, 100, 1000, 10000, 100000]
    labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
    axis.xaxis.set_major_locator(FixedLocator(ticks))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: dict(zip(ticks, labels)).get(value, "")))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.set_xlabel("percentile (axis: 1/(1-p), log)")
    axis.set_ylabel("latency (ms)")
    axis.grid(True, which="major", alpha=0.3)


def wrk_inverse(percentile: float) -> float:
    return 1 / (1 - percentile / 100)


def spectrum_plot(folder: Path, sweep: dict, wrk: list[dict] | None) -> str:
    points = sweep["points"]
    rates = [point["offered"] for point in points]
    chosen = []
    if sweep.get("knee") is not None:
        chosen.append((sweep["knee"], "knee"))
    if rates and (not chosen or rates[-1] != chosen[0][0]):
        chosen.append((rates[-1], "highest rate"))
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for axis, log_scale in zip(axes, (False, True)):
        for rate, label in chosen:
            directory = folder / f"rate-{int(rate)}"
            for name, style in (("corrected", "-"), ("uncorrected", "--")):
                path = directory / f"{name}.hgrm"
                if not path.exists():
                    continue
                rows = read_hgrm(path)
                what = "from due time" if name == "corrected" else "from send"
                axis.plot([row[1] for row in rows], [row[0] for row in rows], style,
                          label=f"kyukyu-load {rate:.0f}/s ({label}), {what}")
        if wrk:
            for number, run in enumerate(wrk):
                keys = [key for key in ("p50", "p75", "p90", "p99") if run.get(key) is not None]
                axis.plot([wrk_inverse(float(key[1:])) for key in keys], [run[key] for key in keys], "o:",
                          label=f"wrk closed loop, {run['throughput']:.0f}/s ({'before' if number == 0 else 'after'})")
        spectrum_axis(axis)
        if log_scale:
            axis.set_yscale("log")
            axis.set_title("the same, log latency")
        else:
            axis.set_title("latency by percentile")
    axes[0].legend(fontsize=7, loc="upper left")
    return svg(figure)


def throughput_plot(folder: Path, sweep: dict) -> str:
    figure, axis = plt.subplots(figsize=(11, 3.2))
    for point in sweep["points"]:
        result = folder / f"rate-{int(point['offered'])}" / "result.json"
        if not result.exists():
            continue
        per_second = json.loads(result.read_text()).get("answersPerSecond", [])
        axis.step(range(len(per_second)), per_second, where="post", label=f"offered {point['offered']:.0f}/s")
        axis.axhline(point["offered"], color=axis.lines[-1].get_color(), alpha=0.25, linewidth=0.8)
    axis.set_xlabel("second of the run")
    axis.set_ylabel("answers in that second")
    axis.set_title("throughput over time (faint lines: the offered rate)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7, ncol=4)
    return svg(figure)


def offered_plot(sweep: dict, wrk: list[dict] | None) -> str:
    points = sweep["points"]
    offered = [point["offered"] for point in points]
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    latency, answered = axes
    latency.plot(offered, [point["p99"] for point in points], "o-", label="p99 from due time (open loop)")
    latency.plot(offered, [point["p50"] for point in points], "s-", label="p50 from due time")
    latency.plot(offered, [point["p99FromSend"] for point in points], "^--", label="p99 from send")
    latency.axhline(sweep["boundMilliseconds"], color="grey", linestyle=":", label="knee bound (p99)")
    answered.plot(offered, [point["answered"] for point in points], "o-", label="answered (successes/s)")
    answered.plot(offered, offered, ":", color="grey", label="offered")
    if sweep.get("knee") is not None:
        for axis in axes:
            axis.axvline(sweep["knee"], color="red", alpha=0.6, label=f"knee {sweep['knee']:.0f}/s")
    if wrk:
        for number, run in enumerate(wrk):
            latency.plot([run["throughput"]], [run["p99"]], "kx", markersize=9,
                         label="wrk p99 at its closed-loop rate" if number == 0 else None)
            answered.plot([run["throughput"]], [run["throughput"]], "kx", markersize=9,
                          label="wrk's closed-loop rate" if number == 0 else None)
    latency.set_yscale("log")
    latency.set_xlabel("offered rate (requests/s)")
    latency.set_ylabel("latency (ms, log)")
    latency.set_title("latency against offered load")
    answered.set_xlabel("offered rate (requests/s)")
    answered.set_ylabel("answered (/s)")
    answered.set_title("answered against offered")
    for axis in axes:
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    return svg(figure)


def table(sweep: dict, wrk: list[dict] | None) -> str:
    rows = ["<tr><th>tool</th><th>offered (/s)</th><th>answered (/s)</th><th>p50 (ms)</th><th>p99 (ms)</th>"
            "<th>p99 from send (ms)</th><th>late</th><th>failed</th></tr>"]
    for run in wrk or []:
        rows.append(f"<tr><td>wrk (closed loop)</td><td>—</td><td>{run['throughput']:,.0f}</td>"
                    f"<td>{run['p50']:.2f}</td><td>{run['p99']:.2f}</td><td>—</td><td>—</td><td>—</td></tr>")
    for point in sweep["points"]:
        knee = " class=knee" if point["offered"] == sweep.get("knee") else ""
        rows.append(f"<tr{knee}><td>kyukyu-load{' (knee)' if knee else ''}</td><td>{point['offered']:,.0f}</td>"
                    f"<td>{point['answered']:,.0f}</td><td>{point['p50']:.2f}</td><td>{point['p99']:.2f}</td>"
                    f"<td>{point['p99FromSend']:.2f}</td><td>{point['late']:,}</td><td>{point['failed']:,}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def section(folder: Path) -> str:
    sweep = json.loads((folder / "sweep.json").read_text())
    wrk_path = folder / "wrk.json"
    wrk = json.loads(wrk_path.read_text()) if wrk_path.exists() else None
    rule = sweep["rule"]
    bound = (f"p99 ≤ {rule['sloMilliseconds']} ms (SLO)" if rule.get("sloMilliseconds")
             else f"p99 ≤ {rule['factor']}× the lowest rate's p99 = {sweep['boundMilliseconds']:.2f} ms")
    knee = f"{sweep['knee']:,.0f} requests/s" if sweep.get("knee") is not None else "none (the lowest rate breaks it)"
    parts = [
        f"<h2>{html.escape(sweep['target'])}</h2>",
        f"<p>{sweep['connections']} connections, {sweep['durationSeconds']:g} s per rate, at {html.escape(sweep['at'])}."
        f" Knee: <b>{knee}</b>: the highest offered rate, going up, with {bound} and at least "
        f"{rule['keepUp'] * 100:.0f} % of the offer answered successfully.</p>",
    ]
    if wrk:
        mean = sum(run["throughput"] for run in wrk) / len(wrk)
        best = max(point["answered"] for point in sweep["points"])
        parts.append(f"<p>Throughput at saturation: kyukyu-load {best:,.0f}/s against wrk's {mean:,.0f}/s "
                     f"(mean of its runs before and after): <b>{best / mean:.3f}</b>. wrk measures from the send "
                     f"and sends nothing while it waits (closed loop), so its latencies leave out the queueing that "
                     f"the open loop's, from the due time, include.</p>")
    parts += [table(sweep, wrk), spectrum_plot(folder, sweep, wrk), throughput_plot(folder, sweep),
              offered_plot(sweep, wrk)]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="state/bench/load")
    parser.add_argument("--out", default="state/bench/load-report.html")
    arguments = parser.parse_args()
    folder = Path(arguments.folder)
    targets = sorted(path.parent for path in folder.glob("*/sweep.json"))
    if not targets:
        print(f"load-report: no */sweep.json under {folder}", file=sys.stderr)
        return 1
    body = "\n".join(section(target) for target in targets)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kyukyu-load report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.knee {{ background: #fee; font-weight: bold; }}
svg {{ max-width: 100%; height: auto; display: block; margin: 1em 0; }}
</style></head><body>
<h1>kyukyu-load: open-loop load tests</h1>
<p>Requests are due at a constant rate; latency from the due time is corrected for coordinated omission, latency
from the send is what a closed-loop tool reports. Plots are inline SVG; nothing is fetched from elsewhere.</p>
{body}
</body></html>
"""
    Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.out).write_text(page)
    print(f"load-report: {arguments.out} ({len(page) // 1024} KiB, {len(targets)} targets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
