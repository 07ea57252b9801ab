#!/usr/bin/env python3
"""kyukyu-load's runs for `make bench` (issue 10): wrk against kyukyu-load on one endpoint, then each target's sweep.

1. http: the network simulator's control API (`kyukyu-netsim`'s GET /health), plain HTTP on loopback and cheap, so
   that the two clients, not the server, are what differs. wrk's closed loop (2 threads) runs before and after
   kyukyu-load's sweep; the sweep runs at 25-125 % of wrk's first rate. Then --rounds interleaved saturation
   rounds: wrk, then kyukyu-load at 125 % of that wrk rate, so that both meet the same machine (it is shared:
   the rounds' ratios, and their median, are the comparison; one pair alone is noise).
2. receiver-ingest: a fresh `kyukyu-hospital serve` (set up by kyukyu-load itself), N ambulances over mutual TLS,
   full pre-arrival documents, at fixed rates around its known capacity.
3. receiver-ack: on a fresh receiver, a staff member acknowledges documents at fixed rates; latency until the
   ambulance's event stream carries each acknowledgement.
4. onshi: a fresh eligibility stub, 8 ambulances fetching through the gateway's client, at fixed rates.
5. gateway: the real stack (scripts/stack.sh, needs root), the crew's reads of its incidents, a sweep around the
   measured saturation rate.

Everything shares this machine's cores, the clients too: that is part of what is measured. The load average is
recorded before each part.

    scripts/bench-load.py --bin-dir .build/release [--seconds 10] [--connections 8] [--port 20970]
                          [--parts http,receiver-ingest,receiver-ack,onshi,gateway] [--rounds 3]

Writes state/bench/load/<part>/ (each rate's spectra and result.json, and sweep.json), state/bench/load.json, and
prints Markdown tables. scripts/load-report.py turns the folder into the HTML report.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"bench-load: {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    return {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load": list(os.getloadavg()),
            "cores": os.cpu_count()}


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
    return {"throughput": rate, "p50": percentiles.get("50"), "p75": percentiles.get("75"),
            "p90": percentiles.get("90"), "p99": percentiles.get("99"), "machine": machine(), "raw": out}


def kyukyu_load(bin_dir: Path, arguments: list[str], out: Path, timeout: int) -> dict:
    """Runs one kyukyu-load sweep into `out` and returns its sweep.json."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(bin_dir / "kyukyu-load"), *arguments, "--out", str(out)]
    log("$ " + re.sub(r"--password \S+ --totp-secret \S+", "--password … --totp-secret …", " ".join(command)))
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    print(run.stdout, file=sys.stderr)
    if run.returncode != 0:
        raise SystemExit(f"bench-load: kyukyu-load failed ({run.returncode}): {run.stderr}")
    sweep = json.loads((out / "sweep.json").read_text())
    sweep["command"] = "kyukyu-load " + " ".join(arguments) + f" --out {out.relative_to(REPO)}"
    sweep["table"] = run.stdout
    return sweep


def single_run(bin_dir: Path, arguments: list[str], out: Path, timeout: int) -> dict:
    """One kyukyu-load run into `out` (status 3, not clean, is expected above saturation); its result.json."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(bin_dir / "kyukyu-load"), *arguments, "--out", str(out)]
    log("$ " + " ".join(command))
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if run.returncode not in (0, 3):
        raise SystemExit(f"bench-load: kyukyu-load failed ({run.returncode}): {run.stderr}")
    result = json.loads((out / "result.json").read_text())
    result["answered"] = (result["sent"] - result["failed"]) / result["elapsedSeconds"]
    return result


def http_part(bin_dir: Path, arguments, state: Path) -> dict:
    server = subprocess.Popen(
        [str(bin_dir / "kyukyu-netsim"), "--link", "idle,0,127.0.0.1:9", "--control-port", str(arguments.port),
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{arguments.port}/health"
        wait_ready(url)
        log(f"http: {url}, {arguments.connections} connections, {arguments.seconds} s per run, {machine()}")
        before = wrk(url, arguments.seconds, arguments.connections)
        log(f"wrk (before) {before['throughput']:.0f} requests/s")
        sweep = kyukyu_load(bin_dir, [
            "http", "--url", url, "--rate", f"{before['throughput']:.0f}", "--sweep", "25,50,75,90,100,125",
            "--duration", str(arguments.seconds), "--connections", str(arguments.connections), "--threads", "2",
        ], state / "http", timeout=arguments.seconds * 6 + 300)
        after = wrk(url, arguments.seconds, arguments.connections)
        log(f"wrk (after) {after['throughput']:.0f} requests/s")
        # Saturation, interleaved: each round wrk, then kyukyu-load at 125 % of that wrk rate (every send late,
        # each connection sending as soon as its answer comes, as wrk does), so that both meet the same machine.
        rounds = []
        for number in range(arguments.rounds):
            peer = wrk(url, arguments.seconds, arguments.connections)
            ours = single_run(bin_dir, [
                "http", "--url", url, "--rate", f"{peer['throughput'] * 1.25:.0f}", "--duration",
                str(arguments.seconds), "--connections", str(arguments.connections), "--threads", "2",
            ], state / "http-saturation" / f"round-{number + 1}", timeout=arguments.seconds * 3 + 120)
            rounds.append({"wrk": peer["throughput"], "wrkP99": peer["p99"], "kyukyuLoad": ours["answered"],
                           "ratio": ours["answered"] / peer["throughput"], "machine": peer["machine"]})
            log(f"round {number + 1}: wrk {peer['throughput']:.0f}/s, kyukyu-load {ours['answered']:.0f}/s, "
                f"ratio {rounds[-1]['ratio']:.3f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    wrk_mean = (before["throughput"] + after["throughput"]) / 2
    best = max(point["answered"] for point in sweep["points"])
    ratios = sorted(round_["ratio"] for round_ in rounds)
    summary = {"url": url, "wrk": [before, after], "wrkMean": wrk_mean, "sweep": sweep, "bestThroughput": best,
               "ratioToWrk": best / wrk_mean, "saturationRounds": rounds,
               "medianRoundRatio": ratios[len(ratios) // 2] if ratios else None}
    (state / "http" / "wrk.json").write_text(json.dumps([before, after], indent=2))
    return summary


def receiver_ingest_part(bin_dir: Path, arguments, state: Path) -> dict:
    log(f"receiver-ingest: {machine()}")
    sweep = kyukyu_load(bin_dir, [
        "receiver-ingest", "--bin-dir", str(bin_dir), "--state-dir", str(state / "receiver-state"),
        "--port", str(arguments.port + 1), "--rates", "250,500,750,1000,1250,1500", "--duration", "5",
        "--connections", "16", "--threads", "2",
    ], state / "receiver-ingest", timeout=1800)
    return {"sweep": sweep}


def receiver_ack_part(bin_dir: Path, arguments, state: Path) -> dict:
    log(f"receiver-ack: {machine()}")
    sweep = kyukyu_load(bin_dir, [
        "receiver-ack", "--bin-dir", str(bin_dir), "--state-dir", str(state / "receiver-ack-state"),
        "--port", str(arguments.port + 2), "--rates", "10,50,100,200,400,800", "--duration", "5",
        "--connections", "4",
    ], state / "receiver-ack", timeout=1800)
    return {"sweep": sweep}


def onshi_part(bin_dir: Path, arguments, state: Path) -> dict:
    log(f"onshi: {machine()}")
    sweep = kyukyu_load(bin_dir, [
        "onshi", "--bin-dir", str(bin_dir), "--state-dir", str(state / "onshi-state"), "--port", str(arguments.port + 3),
        "--rates", "25,50,100,200,300,400", "--duration", "5", "--connections", "8",
    ], state / "onshi", timeout=1800)
    return {"sweep": sweep}


def gateway_part(bin_dir: Path, arguments, state: Path) -> dict:
    """The gateway on the real stack (scripts/stack.sh: private pcscd, card simulator, stub, gateway; needs root),
    its ports from --port + 100."""
    stack = state / "stack"
    environment = dict(os.environ, KYUKYU_BIN_DIR=str(bin_dir), KYUKYU_STACK_PORT_BASE=str(arguments.port + 100))
    subprocess.run([str(REPO / "scripts/stack.sh"), "start", str(stack)], env=environment, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    try:
        values = dict(re.findall(r"^(\w+)='([^']*)'$", (stack / "stack.env").read_text(), re.M))
        log(f"gateway: {machine()}")
        sweep = kyukyu_load(bin_dir, [
            "gateway", "--url", values["KYUKYU_STACK_GATEWAY_URL"], "--crew-id", values["KYUKYU_DEMO_CREW_ID"],
            "--password", values["KYUKYU_DEMO_CREW_PASSWORD"], "--totp-secret", values["KYUKYU_DEMO_CREW_TOTP_SECRET"],
            "--sweep", "25,50,75,90,100,125", "--duration", "5", "--connections", "8", "--threads", "2",
        ], state / "gateway", timeout=1800)
        # The sign-in is not a figure; keep it out of what is written.
        sweep["command"] = re.sub(r"--password \S+ --totp-secret \S+", "--password … --totp-secret …", sweep["command"])
    finally:
        subprocess.run([str(REPO / "scripts/stack.sh"), "stop", str(stack)], env=environment,
                       stdout=subprocess.DEVNULL, timeout=120)
    return {"sweep": sweep}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default=str(REPO / ".build/release"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=20970)
    parser.add_argument("--parts", default="http,receiver-ingest,receiver-ack,onshi,gateway")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved saturation rounds of wrk and kyukyu-load")
    arguments = parser.parse_args()
    bin_dir = Path(arguments.bin_dir).resolve()
    state = REPO / "state/bench/load"
    state.mkdir(parents=True, exist_ok=True)
    parts = arguments.parts.split(",")
    report = {"machine": machine()}
    if "http" in parts:
        report["http"] = http_part(bin_dir, arguments, state)
    if "receiver-ingest" in parts:
        report["receiverIngest"] = receiver_ingest_part(bin_dir, arguments, state)
    if "receiver-ack" in parts:
        report["receiverAck"] = receiver_ack_part(bin_dir, arguments, state)
    if "onshi" in parts:
        report["onshi"] = onshi_part(bin_dir, arguments, state)
    if "gateway" in parts:
        report["gateway"] = gateway_part(bin_dir, arguments, state)
    (REPO / "state/bench/load.json").write_text(json.dumps(report, indent=2, sort_keys=True))

    if "http" in report:
        http = report["http"]
        print(f"\n## http: {http['url']}\n")
        print("| tool | offered (/s) | answered (/s) | p50 (ms) | p99 (ms) | p99 from send (ms) | late |")
        print("|---|---|---|---|---|---|---|")
        for label, run in zip(("before", "after"), http["wrk"]):
            print(f"| wrk, closed loop ({label}) | — | {run['throughput']:.0f} | {run['p50']:.2f} | {run['p99']:.2f} "
                  f"| — | — |")
        for point in http["sweep"]["points"]:
            print(f"| kyukyu-load | {point['offered']:.0f} | {point['answered']:.0f} | {point['p50']:.2f} | "
                  f"{point['p99']:.2f} | {point['p99FromSend']:.2f} | {point['late']} |")
        print(f"\nBest kyukyu-load throughput in the sweep / mean of wrk's: {http['ratioToWrk']:.3f}; "
              f"knee {http['sweep']['knee']}")
        print("\n| round | wrk (/s) | kyukyu-load at 125 % of it, answered (/s) | ratio | load average |")
        print("|---|---|---|---|---|")
        for number, round_ in enumerate(http["saturationRounds"], 1):
            print(f"| {number} | {round_['wrk']:.0f} | {round_['kyukyuLoad']:.0f} | {round_['ratio']:.3f} | "
                  f"{round_['machine']['load'][0]:.2f} |")
        print(f"\nMedian ratio of the interleaved rounds: {http['medianRoundRatio']:.3f}")
    for key in ("receiverIngest", "receiverAck", "onshi", "gateway"):
        if key in report:
            sweep = report[key]["sweep"]
            print(f"\n## {sweep['target']} ({sweep['command']})\n\n{sweep['table']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
