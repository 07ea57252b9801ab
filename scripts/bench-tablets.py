#!/usr/bin/env python3
"""A hospital changes its acceptance → every connected tablet has it (issue 12), through every real part: a region's
hub (`kyukyu-drill hub`: a private PostgreSQL, 3 instances behind HAProxy), two ambulances (`scripts/stack.sh` with
KYUKYU_STACK_HUB: each a gateway holding the hub's acceptance feed), and on each gateway N tablets: a signed-in crew's
open incident, its event stream (`GET /api/v1/incidents/{id}/events`) open N times, as N tablets would hold it.

A hospital's staff publish (`PUT /api/v1/acceptance` at the hub's balancer, toggling dialysis) at a steady pace; each
publication's latency runs from just before its request is sent until the last tablet stream has carried an
`event: hospitals` whose ranking shows the new revision. Prints p50, p90, p99 and the maximum over all publications
(a publication's latency is its slowest tablet's).

    scripts/bench-tablets.py --bin-dir .build/release [--tablets 10] [--publications 60] [--interval 0.5]

Needs root (the stacks' private pcscd). Writes state/bench/tablets.json. Synthetic data only.
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("totp", REPO / "scripts/totp.py")
totp_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(totp_module)
HOSPITAL = "9999999991"


def totp(secret: str) -> str:
    return totp_module.totp(secret, time.time())


def env_file(path: Path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value.strip("'")
    return values


class Gateway:
    """One ambulance's gateway: the crew signed in over its HTTP API, and an incident."""

    def __init__(self, env: dict) -> None:
        self.port = int(env["KYUKYU_STACK_GATEWAY_PORT"])
        self.env = env
        self.cookie = ""
        self.csrf = ""

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, list[str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{self.port}"}
        if self.cookie:
            headers["Cookie"] = self.cookie
            headers["X-CSRF-Token"] = self.csrf
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        text = response.read()
        cookies = response.headers.get_all("Set-Cookie") or []
        connection.close()
        return response.status, (json.loads(text) if text else {}), cookies

    def sign_in(self) -> None:
        status, session, cookies = self.call("POST", "/api/v1/session", {
            "crewId": self.env["KYUKYU_DEMO_CREW_ID"], "password": self.env["KYUKYU_DEMO_CREW_PASSWORD"],
            "totp": totp(self.env["KYUKYU_DEMO_CREW_TOTP_SECRET"]),
        })
        if status != 200:
            raise SystemExit(f"bench-tablets: the crew's sign-in failed ({status})")
        self.cookie = next(c.split(";", 1)[0] for c in cookies if c.startswith("kyukyu_session="))
        self.csrf = session["csrfToken"]

    def incident(self) -> str:
        status, created, _ = self.call("POST", "/api/v1/incidents", {})
        if status != 201:
            raise SystemExit(f"bench-tablets: no incident ({status})")
        return created["id"]


class Tablet(threading.Thread):
    """One tablet's event stream: the newest revision of the hospital's publication in its `hospitals` events."""

    def __init__(self, gateway: Gateway, incident: str, seen: dict, lock: threading.Condition, index: int) -> None:
        super().__init__(daemon=True)
        self.gateway, self.incident, self.seen, self.lock, self.index = gateway, incident, seen, lock, index

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=600)
        connection.request("GET", f"/api/v1/incidents/{self.incident}/events",
                           headers={"Cookie": self.gateway.cookie, "Accept": "text/event-stream"})
        response = connection.getresponse()
        event, data = "", ""
        while True:
            line = response.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "":
                if event == "hospitals" and data:
                    ranking = json.loads(data)
                    for entry in ranking.get("hospitals", []):
                        if entry.get("code") == HOSPITAL and entry.get("acceptance"):
                            with self.lock:
                                self.seen[self.index] = max(self.seen.get(self.index, 0),
                                                            entry["acceptance"]["revision"])
                                self.lock.notify_all()
                event, data = "", ""


def staff_session(region: dict) -> tuple[str, str]:
    staff = next(s for s in region["staff"] if s["hospital"] == HOSPITAL)
    host, port = "127.0.0.1", int(region["url"].rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=region["ca"])
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=30)
    connection.request("POST", "/api/v1/session", body=json.dumps({
        "staffId": staff["id"], "password": staff["password"], "totp": totp(staff["totpSecret"]),
    }), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    session = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"bench-tablets: the staff sign-in failed ({response.status})")
    cookie = response.headers.get("Set-Cookie").split(";", 1)[0]
    return cookie, session["csrfToken"]


def publish(region: dict, cookie: str, csrf: str, accepting: bool) -> int:
    port = int(region["url"].rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=region["ca"])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    body = {"dialysis": {"accepting": True} if accepting else {"accepting": False, "reason": "no-beds"}}
    connection.request("PUT", "/api/v1/acceptance", body=json.dumps({"conditions": body}),
                       headers={"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": csrf})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    if response.status != 200:
        raise SystemExit(f"bench-tablets: publish failed ({response.status})")
    return answer["revision"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default=str(REPO / ".build/release"))
    parser.add_argument("--tablets", type=int, default=10, help="tablets per gateway")
    parser.add_argument("--publications", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between publications")
    parser.add_argument("--port", type=int, default=25760, help="the hub's balancer; the stacks use 25200 and 25250")
    arguments = parser.parse_args()
    bin_dir = Path(arguments.bin_dir).resolve()
    state = REPO / "state/bench/tablets"
    state.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "KYUKYU_BIN_DIR": str(bin_dir)}
    (state / "hub" / "region.json").unlink(missing_ok=True)
    hub = subprocess.Popen(
        [str(bin_dir / "kyukyu-drill"), "hub", "--dir", str(state / "hub"), "--port", str(arguments.port),
         "--instances", "3", "--hospitals", "3", "--device", "ambulance-01", "--device", "ambulance-02"],
        cwd=REPO, env=environment, stdin=subprocess.DEVNULL, stdout=open(state / "hub.log", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    stacks = [state / f"ambulance-{n}" for n in (1, 2)]
    try:
        deadline = time.monotonic() + 180
        while not (state / "hub" / "region.json").exists():
            if hub.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench-tablets: the hub did not start; see {state / 'hub.log'}")
            time.sleep(0.2)
        region = json.loads((state / "hub" / "region.json").read_text())
        gateways = []
        for n, stack in enumerate(stacks, 1):
            subprocess.run(["scripts/stack.sh", "start", str(stack)], cwd=REPO, check=True, env={
                **environment, "KYUKYU_STACK_HUB": str(state / "hub"), "KYUKYU_STACK_TERMINAL_ID": f"ambulance-0{n}",
                "KYUKYU_STACK_RECEIVER": "0", "KYUKYU_STACK_PORT_BASE": str(25200 + (n - 1) * 50),
            }, timeout=600)
            gateway = Gateway(env_file(stack / "stack.env"))
            gateway.sign_in()
            gateways.append(gateway)
        seen: dict[int, int] = {}
        lock = threading.Condition()
        tablets = []
        for gateway in gateways:
            incident = gateway.incident()
            for _ in range(arguments.tablets):
                tablet = Tablet(gateway, incident, seen, lock, len(tablets))
                tablet.start()
                tablets.append(tablet)
        cookie, csrf = staff_session(region)

        def wait_all(revision: int, limit: float = 30) -> bool:
            end = time.monotonic() + limit
            with lock:
                while not (len(seen) == len(tablets) and min(seen.values()) >= revision):
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    lock.wait(left)
            return True

        # Untimed: every tablet holds the feed's current state before the first timed publication.
        if not wait_all(publish(region, cookie, csrf, True), limit=60):
            raise SystemExit("bench-tablets: the tablets did not all hear the first publication")
        latencies = []
        for number in range(arguments.publications):
            due = time.monotonic()
            revision = publish(region, cookie, csrf, number % 2 == 0)
            if not wait_all(revision):
                raise SystemExit(f"bench-tablets: revision {revision} did not reach every tablet within 30 s")
            latencies.append((time.monotonic() - due) * 1000)
            time.sleep(max(0.0, arguments.interval - (time.monotonic() - due)))
        result = {
            "tablets": len(tablets), "gateways": len(gateways), "instances": len(region["instances"]),
            "publications": len(latencies), "load": os.getloadavg(),
            "p50": percentile(latencies, 50), "p90": percentile(latencies, 90), "p99": percentile(latencies, 99),
            "max": max(latencies), "latenciesMilliseconds": latencies,
        }
        (REPO / "state/bench/tablets.json").write_text(json.dumps(result, indent=2))
        print(f"{len(latencies)} publications, {len(tablets)} tablets on {len(gateways)} gateways, hub of "
              f"{len(region['instances'])} instances: p50 {result['p50']:.1f} ms, p90 {result['p90']:.1f} ms, "
              f"p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms (load {result['load'][0]:.2f})")
        return 0
    finally:
        for stack in reversed(stacks):
            subprocess.run(["scripts/stack.sh", "stop", str(stack)], cwd=REPO, env=environment,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        if hub.poll() is None:
            os.killpg(hub.pid, signal.SIGTERM)
            hub.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
