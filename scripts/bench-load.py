#!/usr/bin/env python3
"""kyukyu-load against wrk on the same endpoint (issue 10): wrk's closed loop at saturation, then kyukyu-load's
open loop at rates around it, to find the knee and compare throughput and latency.

The endpoint is a neutral one, cheap and plain HTTP on loopback: the network simulator's control API
(`kyukyu-netsim`'s GET /health), so that the two clients, not the server, are what differs. Everything shares this
machine's cores, the clients too: that is part of what is measured, and said in the output.

    scripts/bench-load.py --bin-dir .build/release [--seconds 10] [--connections 8] [--port 20970]

Prints a Markdown table and writes state/bench/load.json (and each run's spectra under state/bench/load/).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench-load: {url} did not answer within {timeout} s")


def wrk(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    percentiles = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    return {"throughput": rate, "p50": percentiles.get("50"), "p99": percentiles.get("99"), "raw": out}


def load(bin_dir: Path, url: str, rate: float, seconds: int, connections: int, out: Path) -> dict:
    run = subprocess.run(
        [str(bin_dir / "kyukyu-load"), "http", "--url", url, "--rate", f"{rate:.0f}", "--duration", str(seconds),
         "--connections", str(connections), "--out", str(out)],
        capture_output=True, text=True, timeout=seconds + 120,
    )
    if run.returncode not in (0, 3):
        raise SystemExit(f"bench-load: kyukyu-load failed ({run.returncode}): {run.stderr}")
    figures = json.loads((out / "result.json").read_text())
    return {
        "offered": rate,
        "throughput": figures["throughput"],
        "late": figures["late"],
        "failed": figures["failed"],
        "corrected": figures["correctedMilliseconds"],
        "uncorrected": figures["uncorrectedMilliseconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default=str(REPO / ".build/release"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=20970)
    arguments = parser.parse_args()
    bin_dir = Path(arguments.bin_dir).resolve()
    state = REPO / "state/bench"
    (state / "load").mkdir(parents=True, exist_ok=True)

    server = subprocess.Popen(
        [str(bin_dir / "kyukyu-netsim"), "--link", "idle,0,127.0.0.1:9", "--control-port", str(arguments.port),
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{arguments.port}/health"
        wait_ready(url)
        print(f"bench-load: {url}, {arguments.connections} connections, {arguments.seconds} s per run, "
              f"load now {os.getloadavg()}", file=sys.stderr)
        peer = wrk(url, arguments.seconds, arguments.connections)
        print(f"bench-load: wrk {peer['throughput']:.0f} requests/s", file=sys.stderr)
        runs = []
        for fraction in (0.25, 0.5, 0.75, 0.9, 1.0, 1.25):
            rate = max(1.0, peer["throughput"] * fraction)
            result = load(bin_dir, url, rate, arguments.seconds, arguments.connections,
                          state / "load" / f"rate-{int(fraction * 100)}")
            result["fractionOfWrk"] = fraction
            runs.append(result)
            print(f"bench-load: offered {rate:.0f}/s -> {result['throughput']:.0f}/s, "
                  f"p99 {result['corrected']['p99.0']:.2f} ms corrected / {result['uncorrected']['p99.0']:.2f} ms "
                  f"from send, {result['late']} late", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)

    best = max(run["throughput"] for run in runs)
    report = {"url": url, "connections": arguments.connections, "seconds": arguments.seconds, "wrk": peer,
              "kyukyuLoad": runs, "bestThroughput": best, "ratioToWrk": best / peer["throughput"],
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (state / "load.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"| tool | offered (/s) | answered (/s) | p50 (ms) | p99 (ms) | p99 from send (ms) | late |")
    print(f"|---|---|---|---|---|---|---|")
    print(f"| wrk (closed loop) | — | {peer['throughput']:.0f} | {peer['p50']:.2f} | {peer['p99']:.2f} | — | — |")
    for run in runs:
        print(f"| kyukyu-load | {run['offered']:.0f} | {run['throughput']:.0f} | {run['corrected']['p50.0']:.2f} | "
              f"{run['corrected']['p99.0']:.2f} | {run['uncorrected']['p99.0']:.2f} | {run['late']} |")
    print(f"\nBest kyukyu-load throughput / wrk: {best / peer['throughput']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
