#!/usr/bin/env python3
"""The region's figures for `make bench` (issue 12): ingest and acknowledgement latency of a region's hub with 1, 2
and 3 `kyukyu-hospital serve` instances on one PostgreSQL behind HAProxy, against one receiver on SQLite, each
measured by kyukyu-load (open loop: latency from each request's due time, coordinated omission corrected).

1. receiver-ingest: 16 ambulances over mutual TLS post full pre-arrival documents at fixed rates.
2. receiver-ack: a staff member acknowledges documents at fixed rates; the latency runs until the ambulance's own
   event stream carries the acknowledgement (through the balancer, so on a hub the acknowledgement and the stream
   often meet different instances: PostgreSQL's LISTEN/NOTIFY carries it across).
3. acceptance-feed: a hospital's staff change its acceptance at fixed rates while 100 ambulances hold the acceptance
   feed open (spread over the instances); the latency runs until the last of them has the new revision.

Everything (PostgreSQL, the instances, HAProxy and the load generator) shares this machine's 2 cores: that is part of
what is measured. The load average is recorded before each part.

    scripts/bench-region.py --bin-dir .build/release [--configs sqlite,1,2,3] [--port 20940]

Writes state/bench/region/<config>/<part>/ (each rate's spectra, result.json, sweep.json) and
state/bench/region.json, and prints Markdown tables.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_load", REPO / "scripts/bench-load.py")
bench_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_load)

INGEST_RATES = "100,200,400,600,800"
ACK_RATES = "10,50,100,200"
FEED_RATES = "1,5,20"


def run_config(bin_dir: Path, config: str, port: int, state: Path) -> dict:
    hub = [] if config == "sqlite" else ["--hub-instances", config]
    name = "sqlite" if config == "sqlite" else f"postgresql-{config}"
    bench_load.log(f"{name}: {bench_load.machine()}")
    ingest = bench_load.kyukyu_load(bin_dir, [
        "receiver-ingest", "--bin-dir", str(bin_dir), "--state-dir", str(state / name / "ingest-state"),
        "--port", str(port), *hub, "--rates", INGEST_RATES, "--duration", "5", "--connections", "16",
        "--threads", "2",
    ], state / name / "receiver-ingest", timeout=1800)
    bench_load.log(f"{name} (ack): {bench_load.machine()}")
    ack = bench_load.kyukyu_load(bin_dir, [
        "receiver-ack", "--bin-dir", str(bin_dir), "--state-dir", str(state / name / "ack-state"),
        "--port", str(port + 10), *hub, "--rates", ACK_RATES, "--duration", "5", "--connections", "4",
    ], state / name / "receiver-ack", timeout=1800)
    bench_load.log(f"{name} (acceptance feed): {bench_load.machine()}")
    feed = bench_load.kyukyu_load(bin_dir, [
        "acceptance-feed", "--bin-dir", str(bin_dir), "--state-dir", str(state / name / "feed-state"),
        "--port", str(port + 20), *hub, "--ambulances", "100", "--rates", FEED_RATES, "--duration", "5",
        "--connections", "2",
    ], state / name / "acceptance-feed", timeout=1800)
    return {"name": name, "ingest": ingest, "ack": ack, "feed": feed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default=str(REPO / ".build/release"))
    parser.add_argument("--configs", default="sqlite,1,2,3")
    parser.add_argument("--port", type=int, default=20940)
    arguments = parser.parse_args()
    bin_dir = Path(arguments.bin_dir).resolve()
    state = REPO / "state/bench/region"
    state.mkdir(parents=True, exist_ok=True)
    results = [run_config(bin_dir, config, arguments.port, state) for config in arguments.configs.split(",")]
    (REPO / "state/bench/region.json").write_text(json.dumps(
        {"machine": bench_load.machine(), "configs": results}, indent=2, sort_keys=True))
    for part, title in (("ingest", "ingest: 16 ambulances post documents"),
                        ("ack", "acknowledgement: staff acknowledge; until the ambulance's stream has it"),
                        ("feed", "acceptance: staff publish; until every one of 100 ambulances' feeds has it")):
        print(f"\n## {title}\n")
        print("| receiver | offered (/s) | answered (/s) | p50 (ms) | p99 (ms) | p99 from send (ms) | late | failed |")
        print("|---|---|---|---|---|---|---|---|")
        for result in results:
            for point in result[part]["points"]:
                print(f"| {result['name']} | {point['offered']:.0f} | {point['answered']:.0f} | {point['p50']:.2f} | "
                      f"{point['p99']:.2f} | {point['p99FromSend']:.2f} | {point['late']} | {point.get('failed', 0)} |")
            print(f"| {result['name']}: knee | {result[part]['knee']} | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
