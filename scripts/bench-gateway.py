#!/usr/bin/env python3
"""The gateway's figures (issues 8 and 9), on the real stack: private pcscd + vpcd + card simulator, the onshi stub,
`kyukyu-gateway serve` as a process of its own and, for the handoff, the hospital's `kyukyu-hospital serve`. Part of
`make bench`, never of `make test`.

    scripts/bench-gateway.py [--bin-dir .build/release] [--runs 10] [--incidents 100]
                             [--part all|cold|rss|ui|handoff] [--handoff-runs 20]

1. cold   exec of `kyukyu-gateway serve` -> first 200 of GET /health/live (the server alone) and of
          GET /health/ready (server, vault open, onshi pool warm); a fresh state folder each run, and an
          existing one (made by an earlier start), interleaved. Also VmRSS 3 s after ready (idle).
2. rss    one gateway with a crew: VmRSS/VmHWM idle, then after N incidents driven through the HTTP API the way
          the tablet does (sign in once; per incident: swap the card, create, consent verbal, wait for the
          summary with every category finished, close).
3. ui     card touched -> summary in the browser (headless chromium, selenium, the tablet UI) against
          `kyukyu fetch --consent verbal --json` reading the same card against the same stub; interleaved.
4. handoff "send" tapped on the tablet -> the patient's card on the ER board (issue 9): scripts/stack.sh with the
          demo hospital's receiver (KYUKYU_STACK_RECEIVER=1), two headless chromiums on the same machine (one clock):
          the tablet (signed in as the demo crew) and the board (signed in as the demo staff; it trusts exactly the
          receiver's server key, --ignore-certificate-errors-spki-list). Per run, all on the real tablet UI: new
          incident, consent, the card touches, the summary settles, the transport record, the hospital picked, one
          tap on "send" (its click event's Date.now() in the tablet page); a MutationObserver in the board page
          stamps Date.now() when that document set's card first appears. Also: the receiver's firstReceivedAt
          (stored) and the tablet's strip turning "sent"/"received"; then "arrived" on the board (the gateway
          forgets the patient) and back to the tablet's list. A fresh stack folder (state-dir/handoff).

Writes state/bench/gateway.json (or --out; state/bench/handoff.json for --part handoff alone) and prints the
tables. Needs root (the stack's private pcscd),
Debian's chromium + chromedriver and selenium (scripts/install-deps.sh). Nothing is downloaded (SE_OFFLINE).
Synthetic patients only; no patient field is printed or written.
"""
import argparse
import datetime
import http.client
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # totp.py and browser-smoke.py are imported: no __pycache__ in scripts/
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def log(message: str) -> None:
    print(f"bench-gateway: {message}", file=sys.stderr, flush=True)


def now_ms() -> float:
    return time.monotonic() * 1000.0


def stats(values: list) -> dict:
    """n, median, p90 (nearest rank), min, max of a list of milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    rank = max(0, min(len(ordered) - 1, -(-len(ordered) * 90 // 100) - 1))
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[rank], 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }


def fmt(s: dict, unit: str = "ms") -> str:
    if not s.get("n"):
        return "n=0"
    return f"n={s['n']} median {s['median']} {unit}, p90 {s['p90']} {unit}, min {s['min']}, max {s['max']} {unit}"


def proc_status(pid: int) -> dict:
    """VmRSS and VmHWM of a process, in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024.0, 1)
    return out


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# MARK: - HTTP


def http_get_status(port: int, path: str, timeout: float = 1.0):
    """The status of GET path on 127.0.0.1:port, or None when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


class Client:
    """The tablet's side of the API: the session cookie and the CSRF token, one connection per request."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = None
        self.csrf = None

    def call(self, method: str, path: str, body=None, timeout: float = 30.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.cookie:
            headers["Cookie"] = f"kyukyu_session={self.cookie}"
        if method != "GET" and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            for key, value in response.getheaders():
                if key.lower() == "set-cookie" and value.startswith("kyukyu_session="):
                    self.cookie = value.split(";", 1)[0].split("=", 1)[1]
            payload = json.loads(raw) if raw else None
            return response.status, payload
        finally:
            conn.close()

    def sign_in(self, crew_id: str, password: str, secret: str) -> None:
        status, body = self.call("POST", "/api/v1/session", {"crewId": crew_id, "password": password,
                                                             "totp": totp_code(secret)})
        if status != 200:
            raise RuntimeError(f"sign-in: HTTP {status} {body.get('type') if body else ''}")
        self.csrf = body["csrfToken"]


_last_totp_step = {}


def totp_code(secret: str) -> str:
    """A TOTP code whose 30 s step has not been used by this script yet (a gateway may refuse a code twice)."""
    from totp import totp

    step = int(time.time()) // 30
    if _last_totp_step.get(secret) == step:
        time.sleep(30 - time.time() % 30 + 0.2)
        step = int(time.time()) // 30
    _last_totp_step[secret] = step
    return totp(secret, time.time())


def card_control(url: str, method: str, body=None, timeout: float = 15.0) -> dict:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, "/card", body=json.dumps(body).encode() if body is not None else None, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"card control {method}: HTTP {response.status}")
        return json.loads(raw)
    finally:
        conn.close()


# MARK: - the stack and the gateway


class Stack:
    """scripts/stack.sh without its gateway (pcscd, card simulator, stub); the gateways here are started by us.
    With `receiver`, the whole stack instead: its gateway (and demo crew) and the demo hospital's receiver."""

    def __init__(self, bin_dir: str, state: str, port_base: int, receiver: bool = False):
        self.bin_dir = bin_dir
        self.state = state
        self.port_base = port_base
        self.receiver = receiver
        self.env = {}

    def start(self) -> None:
        env = dict(os.environ, KYUKYU_BIN_DIR=self.bin_dir, KYUKYU_STACK_PORT_BASE=str(self.port_base))
        for key in ("KYUKYU_STACK_NO_GATEWAY", "KYUKYU_STACK_RECEIVER", "KYUKYU_STACK_GATEWAY_ARGS"):
            env.pop(key, None)
        if self.receiver:
            env["KYUKYU_STACK_RECEIVER"] = "1"
        else:
            env["KYUKYU_STACK_NO_GATEWAY"] = "1"
        subprocess.run([os.path.join(ROOT, "scripts/stack.sh"), "start", self.state], env=env, check=True,
                       stdin=subprocess.DEVNULL, timeout=180)
        with open(os.path.join(self.state, "stack.env")) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    key, _, value = line.strip().partition("=")
                    self.env[key] = shlex.split(value)[0] if value else ""

    def stop(self) -> None:
        if not os.path.isdir(os.path.join(self.state, "run")):
            return  # never started here
        subprocess.run([os.path.join(ROOT, "scripts/stack.sh"), "stop", self.state], stdin=subprocess.DEVNULL,
                       timeout=120, check=False)

    @property
    def gateway_port(self) -> int:
        return self.port_base + 30

    def put_card(self, holder: int, removal_ms=None) -> dict:
        body = {"holder": holder}
        if removal_ms is not None:
            body["removalMs"] = removal_ms
        return card_control(self.env["KYUKYU_CARD_CONTROL_URL"], "PUT", body)

    def remove_card(self) -> dict:
        return card_control(self.env["KYUKYU_CARD_CONTROL_URL"], "DELETE")


STARTED = []  # every gateway started here, so that an error stops it too
PHASE = random.Random(8)  # when in pcscd's poll of the vpcd reader the card touches it (seeded: reproducible)
LOG_LEVEL = "info"  # the gateway's; --log-level debug writes the runner's stage times to its log


class Gateway:
    """One `kyukyu-gateway serve` process on the stack's gateway port."""

    def __init__(self, stack: Stack, state_dir: str, log_path: str):
        self.stack = stack
        self.state_dir = state_dir
        self.log_path = log_path
        self.process = None
        self.exec_ms = 0.0

    def argv(self) -> list:
        env = self.stack.env
        return [os.path.join(self.stack.bin_dir, "kyukyu-gateway"), "serve", "--state-directory", self.state_dir,
                "--http-host", "127.0.0.1", "--http-port", str(self.stack.gateway_port),
                "--onshi-url", env["KYUKYU_ONSHI_URL"], "--onshi-tls-directory", env["KYUKYU_TERMINAL_TLS_DIR"],
                "--log-level", LOG_LEVEL]

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KYUKYU_GATEWAY_")}
        env["PCSCLITE_CSOCK_NAME"] = self.stack.env["PCSCLITE_CSOCK_NAME"]
        log_file = open(self.log_path, "ab")
        self.exec_ms = now_ms()
        self.process = subprocess.Popen(self.argv(), env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                        stderr=log_file, close_fds=True)
        STARTED.append(self)
        log_file.close()

    def wait(self, path: str, timeout_s: float = 60.0, poll_s: float = 0.002) -> float:
        """Milliseconds from exec to the first 200 of GET path (polled every poll_s)."""
        deadline = time.monotonic() + timeout_s
        port = self.stack.gateway_port
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited ({self.process.returncode}); see {self.log_path}")
            if http_get_status(port, path) == 200:
                return now_ms() - self.exec_ms
            time.sleep(poll_s)
        raise RuntimeError(f"GET {path} not 200 after {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def add_crew(bin_dir: str, state_dir: str, crew_id: str) -> dict:
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    password = "".join(secrets.choice(alphabet) for _ in range(16))
    pin = "".join(secrets.choice("0123456789") for _ in range(4))
    out = subprocess.run([os.path.join(bin_dir, "kyukyu-gateway"), "crew", "add", crew_id, "--state-directory",
                          state_dir], input=f"{password}\n{pin}\n", capture_output=True, text=True, check=True,
                         timeout=60)
    secret = None
    for line in out.stdout.splitlines():
        if line.startswith("TOTP secret"):
            secret = line.split(":", 1)[1].split()[0]
    if not secret:
        raise RuntimeError("crew add printed no TOTP secret")
    return {"crewId": crew_id, "password": password, "pin": pin, "secret": secret}


# MARK: - 1. cold start


def bench_cold(stack: Stack, work: str, runs: int) -> dict:
    existing = os.path.join(work, "cold-existing")
    shutil.rmtree(existing, ignore_errors=True)
    os.makedirs(existing)
    # One start, unmeasured, makes the existing state folder (keys, vault, crew database).
    g = Gateway(stack, existing, os.path.join(work, "cold.log"))
    g.start()
    g.wait("/health/ready")
    g.stop()
    results = {"fresh": {"live": [], "ready": [], "idleRSS": []}, "existing": {"live": [], "ready": [], "idleRSS": []}}
    for i in range(runs):
        for kind in ("fresh", "existing"):
            if kind == "fresh":
                folder = os.path.join(work, "cold-fresh")
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder = existing
            g = Gateway(stack, folder, os.path.join(work, "cold.log"))
            g.start()
            try:
                live = g.wait("/health/live")
                ready = g.wait("/health/ready")
                time.sleep(3.0)
                rss = proc_status(g.process.pid)["VmRSS"]
            finally:
                g.stop()
            results[kind]["live"].append(live)
            results[kind]["ready"].append(ready)
            results[kind]["idleRSS"].append(rss)
            log(f"cold {kind} {i + 1}/{runs}: live {live:.1f} ms, ready {ready:.1f} ms, idle VmRSS {rss} MiB")
    return {kind: {"live": stats(v["live"]), "ready": stats(v["ready"]), "readyMinusLive": stats(
        [r - l for r, l in zip(v["ready"], v["live"])]), "idleRSS": stats(v["idleRSS"]), "raw": v}
        for kind, v in results.items()}


# MARK: - 2. RSS over incidents


CATEGORIES = ("qualification", "visits", "diagnoses", "medications", "prescriptions", "surgery", "treatment",
              "checkups", "allergies")


def finished(incident: dict) -> bool:
    statuses = [incident.get("categories", {}).get(c, {}).get("status", "pending") for c in CATEGORIES]
    summary = incident.get("summary") or {}
    return incident.get("phase") == "summary" and summary.get("patient") is not None and \
        all(s not in ("pending", "retrying") for s in statuses)


def drive_incident(client: Client, stack: Stack, holder: int, timeout_s: float = 30.0) -> dict:
    """One incident the tablet's way; returns timings (ms) and the category statuses."""
    t0 = now_ms()
    stack.put_card(holder)
    t_card = now_ms()
    status, incident = client.call("POST", "/api/v1/incidents", {})
    if status != 201:
        raise RuntimeError(f"create incident: HTTP {status}")
    iid = incident["id"]
    status, incident = client.call("POST", f"/api/v1/incidents/{iid}/consent", {"basis": "verbal"})
    if status != 200:
        raise RuntimeError(f"consent: HTTP {status}")
    t_consent = now_ms()
    deadline = time.monotonic() + timeout_s
    while True:
        status, incident = client.call("GET", f"/api/v1/incidents/{iid}")
        if status == 200 and finished(incident):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"incident not summarised in {timeout_s} s (phase {incident.get('phase')}, "
                               f"card {incident.get('card', {}).get('state')})")
        time.sleep(0.02)
    t_summary = now_ms()
    statuses = {c: incident["categories"][c]["status"] for c in CATEGORIES}
    status, _ = client.call("POST", f"/api/v1/incidents/{iid}/close", {})
    if status != 200:
        raise RuntimeError(f"close: HTTP {status}")
    return {"swap": t_card - t0, "consentToSummary": t_summary - t_consent, "total": now_ms() - t0,
            "statuses": statuses}


def bench_rss(stack: Stack, work: str, incidents: int, holders: list) -> tuple:
    folder = os.path.join(work, "gateway")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    crew = add_crew(stack.bin_dir, folder, "BENCH-1")
    g = Gateway(stack, folder, os.path.join(work, "gateway.log"))
    g.start()
    g.wait("/health/ready")
    time.sleep(3.0)
    idle = proc_status(g.process.pid)
    log(f"rss: idle {idle}")
    client = Client(stack.gateway_port)
    client.sign_in(crew["crewId"], crew["password"], crew["secret"])
    signed_in = proc_status(g.process.pid)
    timings = {"consentToSummary": [], "total": []}
    not_arrived = 0
    samples = []
    for i in range(incidents):
        r = drive_incident(client, stack, holders[i % len(holders)])
        timings["consentToSummary"].append(r["consentToSummary"])
        timings["total"].append(r["total"])
        not_arrived += sum(1 for s in r["statuses"].values() if s not in ("arrived", "none-on-record"))
        if (i + 1) % 10 == 0:
            samples.append({"incidents": i + 1, **proc_status(g.process.pid)})
            log(f"rss: {i + 1} incidents, {samples[-1]}, last consent->summary {r['consentToSummary']:.0f} ms")
    time.sleep(3.0)
    after = proc_status(g.process.pid)
    result = {"idle": idle, "afterSignIn": signed_in, "after": after, "every10": samples,
              "incidents": incidents, "holders": holders, "categoriesNotArrived": not_arrived,
              "consentToSummary": stats(timings["consentToSummary"]), "perIncident": stats(timings["total"])}
    return result, g, crew


# MARK: - 3. the browser against the CLI


OBSERVER_JS = r"""
const q = (id) => document.querySelector(`[data-testid="${id}"]`);
const stamp = () => performance.timeOrigin + performance.now();
window.__bench = {marks: {}};
const check = () => {
  const m = window.__bench.marks;
  const reader = q("reader-status"), card = q("card-status"), header = q("patient-header"),
        name = q("patient-name"), flags = q("redflags"), progress = q("summary-progress");
  if (!m.readerPresent && reader && (reader.dataset.state === "card-present" || reader.dataset.state === "reading"))
    m.readerPresent = stamp();
  if (!m.cardReading && card && card.dataset.state === "reading") m.cardReading = stamp();
  if (!m.patient && header && header.dataset.state === "present" && name && name.textContent.trim() !== "")
    m.patient = stamp();
  if (!m.redFlags && flags && (flags.dataset.state === "present" || flags.dataset.state === "none"))
    m.redFlags = stamp();
  if (!m.allCategories && progress && progress.dataset.total && progress.dataset.done === progress.dataset.total)
    m.allCategories = stamp();
  if (!m.done && m.patient && m.redFlags && m.allCategories) m.done = stamp();
};
if (window.__benchObserver) window.__benchObserver.disconnect();
window.__benchObserver = new MutationObserver(check);
window.__benchObserver.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
check();
"""


def browser_driver():
    os.environ["SE_OFFLINE"] = "true"
    import importlib

    smoke = importlib.import_module("browser-smoke")
    return smoke.driver()


def by_testid(name: str):
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, f'[data-testid="{name}"]')


def browser_sign_in(browser, url: str, crew: dict) -> None:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    wait = WebDriverWait(browser, 30)
    wait.until(ec.visibility_of_element_located(by_testid("signin-crew-id"))).send_keys(crew["crewId"])
    browser.find_element(*by_testid("signin-password")).send_keys(crew["password"])
    browser.find_element(*by_testid("signin-totp")).send_keys(totp_code(crew["secret"]))
    browser.find_element(*by_testid("signin-submit")).click()
    wait.until(ec.visibility_of_element_located(by_testid("incident-new")))


def browser_run(browser, stack: Stack, holder: int) -> dict:
    """New incident, consent verbal, then the card goes on the reader; ms from the card's link up to each mark."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, poll_frequency=0.02, ignored_exceptions=[StaleElementReferenceException])
    stack.remove_card()  # so the new incident does not read the card left from the CLI run
    time.sleep(1.0)  # pcscd polls a vpcd reader about every 400 ms: let it see the card leave
    wait.until(ec.element_to_be_clickable(by_testid("incident-new"))).click()
    wait.until(ec.element_to_be_clickable(by_testid("consent-verbal"))).click()
    wait.until(lambda b: b.find_element(*by_testid("screen-incident")).get_attribute("data-view") == "card")
    browser.execute_script(OBSERVER_JS)
    time.sleep(PHASE.uniform(0, 0.4))  # the touch at a random point of pcscd's 400 ms poll, as for the CLI
    stack.put_card(holder, removal_ms=100)
    touched = time.time() * 1000.0
    wait.until(lambda b: b.execute_script("return window.__bench.marks.done || null"))
    marks = browser.execute_script("return window.__bench.marks")
    result = {k: round(v - touched, 1) for k, v in marks.items()}
    # Close it the tablet's way, back to the list.
    wait.until(ec.element_to_be_clickable(by_testid("incident-close"))).click()
    wait.until(ec.element_to_be_clickable(by_testid("close-confirm-yes"))).click()
    wait.until(ec.visibility_of_element_located(by_testid("incident-new")))
    return result


def cli_argv(stack: Stack, crew_id: str, extra=()) -> list:
    return [os.path.join(stack.bin_dir, "kyukyu"), "fetch", "--consent", "verbal", "--crew", crew_id, "--json",
            "--reader", "Kyukyu Demo Reader", "--onshi-url", stack.env["KYUKYU_ONSHI_URL"],
            "--tls-dir", stack.env["KYUKYU_TERMINAL_TLS_DIR"], "--device", "ambulance-01", *extra]


def cli_run(stack: Stack, holder: int, crew_id: str) -> dict:
    """`kyukyu fetch` reading the card on the reader: ms from exec to its first stdout byte and to its exit."""
    stack.put_card(holder)
    time.sleep(1.0)  # let pcscd see the card (it polls the vpcd link about every 400 ms)
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=stack.env["PCSCLITE_CSOCK_NAME"])
    start = now_ms()
    process = subprocess.Popen(cli_argv(stack, crew_id), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    first = process.stdout.read(1)
    first_ms = now_ms() - start
    rest = process.stdout.read()
    process.wait(timeout=60)
    exit_ms = now_ms() - start
    if process.returncode != 0 or not first:
        raise RuntimeError(f"kyukyu fetch exited {process.returncode}")
    return {"firstByte": round(first_ms, 1), "exit": round(exit_ms, 1), "bytes": len(first + rest)}


def cli_touch_run(stack: Stack, holder: int, crew_id: str) -> dict:
    """`kyukyu fetch --wait` started on an empty reader, then the card touches it: ms from the control's answer
    (the card's link is up: the same clock as the browser's) to the first stdout byte and to the exit."""
    stack.remove_card()
    time.sleep(1.0)  # let pcscd see the reader empty
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=stack.env["PCSCLITE_CSOCK_NAME"])
    process = subprocess.Popen(cli_argv(stack, crew_id, ("--wait", "30")), env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(1.0 + PHASE.uniform(0, 0.4))  # up and waiting; the touch at a random point of pcscd's 400 ms poll
    if process.poll() is not None:
        raise RuntimeError(f"kyukyu fetch --wait exited {process.returncode} before the card came")
    stack.put_card(holder, removal_ms=100)
    touched = now_ms()
    first = process.stdout.read(1)
    first_ms = now_ms() - touched
    rest = process.stdout.read()
    process.wait(timeout=60)
    exit_ms = now_ms() - touched
    if process.returncode != 0 or not first:
        raise RuntimeError(f"kyukyu fetch --wait exited {process.returncode}")
    return {"firstByte": round(first_ms, 1), "exit": round(exit_ms, 1), "bytes": len(first + rest)}


def bench_ui(stack: Stack, crew: dict, runs: int, holder: int) -> dict:
    browser = browser_driver()
    try:
        browser_sign_in(browser, f"http://127.0.0.1:{stack.gateway_port}/", crew)
        # One unmeasured run of each: the holder's keys, chromium's caches, the CLI's page cache.
        cli_run(stack, holder, crew["crewId"])
        cli_touch_run(stack, holder, crew["crewId"])
        browser_run(browser, stack, holder)
        cli, touch, ui = [], [], []
        for i in range(runs):
            c = cli_run(stack, holder, crew["crewId"])
            t = cli_touch_run(stack, holder, crew["crewId"])
            u = browser_run(browser, stack, holder)
            cli.append(c)
            touch.append(t)
            ui.append(u)
            log(f"ui {i + 1}/{runs}: cli exit {c['exit']} ms (first byte {c['firstByte']}); cli --wait from the "
                f"touch {t['firstByte']} ms; browser done {u.get('done')} ms (marks {u})")
    finally:
        browser.quit()
    marks = ("readerPresent", "cardReading", "redFlags", "patient", "allCategories", "done")
    result = {"cli": {"firstByte": stats([c["firstByte"] for c in cli]), "exit": stats([c["exit"] for c in cli])},
              "cliFromTouch": {"firstByte": stats([t["firstByte"] for t in touch]),
                               "exit": stats([t["exit"] for t in touch])},
              "browser": {m: stats([u[m] for u in ui if m in u]) for m in marks},
              "raw": {"cli": cli, "cliFromTouch": touch, "browser": ui}}
    done = result["browser"]["done"]["median"]
    output, exited = result["cli"]["firstByte"]["median"], result["cli"]["exit"]["median"]
    after_reader = statistics.median([u["done"] - u["readerPresent"] for u in ui if "readerPresent" in u])
    result["browser"]["doneAfterReaderPresent"] = stats([u["done"] - u["readerPresent"] for u in ui
                                                         if "readerPresent" in u])
    touch_output = result["cliFromTouch"]["firstByte"]["median"]
    result["ratio"] = {"browserDone/cliFromTouchOutput": round(done / touch_output, 2),
                       "browserDone/cliOutput": round(done / output, 2),
                       "browserDone/cliExit": round(done / exited, 2),
                       "(browserDone-readerPresent)/cliOutput": round(after_reader / output, 2)}
    return result


# MARK: - 4. send on the tablet -> the card on the board


# The tablet page: the wall time of the click on "send" (capture phase: before the app's own handler), and when the
# handoff strip first shows each status. Date.now() in both pages: one machine, one clock.
TABLET_HANDOFF_JS = r"""
window.__handoff = {marks: {}};
if (!window.__handoffClick) {
  window.__handoffClick = (event) => {
    const target = event.target instanceof Element ? event.target.closest('[data-testid="handoff-send"]') : null;
    if (target && window.__handoff && !window.__handoff.marks.tap) window.__handoff.marks.tap = Date.now();
  };
  document.addEventListener('click', window.__handoffClick, true);
}
const strip = () => {
  const m = window.__handoff.marks, el = document.querySelector('[data-testid="handoff-strip"]');
  if (el && el.dataset.status && !m[el.dataset.status]) m[el.dataset.status] = Date.now();
};
if (window.__handoffObserver) window.__handoffObserver.disconnect();
window.__handoffObserver = new MutationObserver(strip);
window.__handoffObserver.observe(document.body, {subtree: true, childList: true, attributes: true});
strip();
"""

# The board page: the first time each document set's card is in the page (cards are rebuilt on every change; only the
# first sighting counts).
BOARD_JS = r"""
if (!window.__cards) {
  window.__cards = {};
  const seen = () => {
    for (const card of document.querySelectorAll('[data-testid="patient-card"][data-set]')) {
      if (!(card.dataset.set in window.__cards)) window.__cards[card.dataset.set] = Date.now();
    }
  };
  window.__boardObserver = new MutationObserver(seen);
  window.__boardObserver.observe(document.body, {subtree: true, childList: true, attributes: true});
  seen();
}
"""


def spki_sha256(cert_path: str) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate (openssl), for chromium's SPKI allow-list."""
    import base64
    import hashlib

    pem = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem.encode(), capture_output=True,
                         check=True, timeout=10).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def board_driver(spki: str, profile: str):
    """Debian's headless chromium (browser-smoke.py's settings) that accepts only the receiver's server key: no
    general --ignore-certificate-errors."""
    os.environ["SE_OFFLINE"] = "true"
    import importlib

    smoke = importlib.import_module("browser-smoke")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = smoke.CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1600,1000", "--lang=ja-JP", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
                     f"--ignore-certificate-errors-spki-list={spki}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=smoke.CHROMEDRIVER), options=options)


def board_sign_in(board, url: str, env: dict) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    board.get(url)
    wait = WebDriverWait(board, 30, poll_frequency=0.05)
    screen = "return document.querySelector('main')?.dataset.screen"
    wait.until(lambda b: b.execute_script(screen) == "signin")
    board.find_element(*by_testid("board-signin-staff")).send_keys(env["KYUKYU_DEMO_STAFF_ID"])
    board.find_element(*by_testid("board-signin-password")).send_keys(env["KYUKYU_DEMO_STAFF_PASSWORD"])
    board.find_element(*by_testid("board-signin-totp")).send_keys(totp_code(env["KYUKYU_DEMO_STAFF_TOTP_SECRET"]))
    board.find_element(*by_testid("board-signin-submit")).click()
    wait.until(lambda b: b.execute_script(screen) == "board")
    wait.until(lambda b: b.execute_script(
        "return document.querySelector('[data-testid=\"board-connection\"]')?.dataset.state") == "live")
    board.execute_script(BOARD_JS)


def click_testid(wait, name: str, extra: str = "") -> None:
    """One click on a displayed, enabled element (found again when a re-render replaced it)."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By

    css = f'[data-testid="{name}"]{extra}'

    def attempt(b):
        element = b.find_element(By.CSS_SELECTOR, css)
        if not element.is_displayed() or not element.is_enabled():
            return False
        try:
            element.click()
        except ElementClickInterceptedException:
            return False
        return True

    wait.until(attempt, f"click {css}")


def handoff_run(tablet, board, stack: Stack, holder: int, hospital: str) -> dict:
    """One incident on the tablet up to the tap on "send"; ms from the tap to the card on the board (and the rest)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = [StaleElementReferenceException, NoSuchElementException]
    wait = WebDriverWait(tablet, 30, poll_frequency=0.02, ignored_exceptions=ignored)
    board_wait = WebDriverWait(board, 30, poll_frequency=0.02, ignored_exceptions=ignored)
    data = lambda b, name, key: b.execute_script(  # noqa: E731
        "return document.querySelector(`[data-testid=\"${arguments[0]}\"]`)?.dataset[arguments[1]] ?? null", name, key)

    stack.remove_card()
    time.sleep(1.0)  # pcscd polls a vpcd reader about every 400 ms: let it see the card leave
    click_testid(wait, "incident-new")
    click_testid(wait, "consent-verbal")
    wait.until(lambda b: data(b, "screen-incident", "view") == "card", "the card view")
    incident = data(tablet, "screen-incident", "incidentId")
    time.sleep(PHASE.uniform(0, 0.4))
    stack.put_card(holder, removal_ms=100)
    wait.until(lambda b: data(b, "screen-incident", "view") == "summary", "the summary")
    wait.until(lambda b: b.execute_script("""
        const p = document.querySelector('[data-testid="summary-progress"]');
        const h = document.querySelector('[data-testid="patient-header"]');
        if (!p || !h || h.dataset.state !== 'present' || p.dataset.total === undefined) return false;
        return (+p.dataset.done || 0) + (+p.dataset.failed || 0) === +p.dataset.total;"""), "the summary settled")
    click_testid(wait, "to-transport")
    wait.until(lambda b: data(b, "screen-incident", "view") == "transport", "the transport record")
    click_testid(wait, f"hospital-{hospital}")
    wait.until(lambda b: b.execute_script(
        "return document.querySelector(arguments[0])?.getAttribute('aria-pressed')",
        f'[data-testid="hospital-{hospital}"]') == "true", "the hospital picked")
    tablet.execute_script(TABLET_HANDOFF_JS)
    time.sleep(0.2)  # nothing else in flight on the tablet when the tap comes
    python_tap = time.time() * 1000.0
    click_testid(wait, "handoff-send")
    wait.until(lambda b: data(b, "handoff-strip", "status") in ("received", "acknowledged"), "the strip: received")
    view = tablet.execute_script(
        "return fetch(arguments[0], {credentials: 'same-origin'}).then((r) => r.json())", f"/api/v1/incidents/{incident}")
    document_set = view["handoff"]["documentSet"].removeprefix("urn:uuid:")
    shown = board_wait.until(lambda b: b.execute_script("return window.__cards[arguments[0]] ?? null", document_set),
                             "the card on the board")
    marks = tablet.execute_script("return window.__handoff.marks")
    patients = board.execute_script(
        "return fetch('/api/v1/patients', {credentials: 'same-origin'}).then((r) => r.json())")["patients"]
    stored = next(p["firstReceivedAt"] for p in patients if p["set"] == document_set)
    stored_ms = datetime.datetime.fromisoformat(stored.replace("Z", "+00:00")).timestamp() * 1000.0
    tap = marks.get("tap") or python_tap
    result = {"tapToBoard": round(shown - tap, 1), "tapToStored": round(stored_ms - tap, 1),
              "storedToBoard": round(shown - stored_ms, 1), "clickCallToTap": round(tap - python_tap, 1)}
    for status in ("queued", "sent", "received"):
        if status in marks:
            result[f"tapToTablet{status.capitalize()}"] = round(marks[status] - tap, 1)
    # Handover: "arrived" on the board; the gateway forgets the patient and the tablet says so; back to the list.
    card = f'[data-set="{document_set}"]'
    from selenium.webdriver.common.by import By

    def arrived(b):
        try:
            b.find_element(By.CSS_SELECTOR, f'[data-testid="patient-card"]{card} [data-testid="patient-arrived"]').click()
            return True
        except Exception:  # noqa: BLE001 (re-rendered under the click: find it again)
            return False

    board_wait.until(arrived, "arrived tapped")
    board_wait.until(lambda b: b.execute_script(
        "return !document.querySelector(arguments[0])", f'[data-testid="patient-card"]{card}'), "the card leaves")
    wait.until(lambda b: data(b, "view-closed", "closure") == "handed-over", "the tablet: handed over")
    click_testid(wait, "closed-to-list")
    wait.until(lambda b: b.find_element(*by_testid("incident-new")).is_displayed(), "the incident list")
    return result


def bench_handoff(bin_dir: str, work: str, port_base: int, runs: int, holder: int) -> dict:
    import tempfile

    folder = os.path.join(work, "handoff")
    stack = Stack(bin_dir, folder, port_base, receiver=True)
    if os.path.isdir(os.path.join(folder, "run")):
        stack.stop()
    shutil.rmtree(folder, ignore_errors=True)
    tablet = board = None
    profile = tempfile.mkdtemp(prefix="kyukyu-bench-board-")
    try:
        stack.start()
        env = stack.env
        hospital = env["KYUKYU_STACK_HOSPITAL_CODE"]
        board = board_driver(spki_sha256(os.path.join(env["KYUKYU_STACK_RECEIVER_STATE_DIR"], "pki",
                                                      "server.cert.pem")), profile)
        board.set_page_load_timeout(30)
        board.set_script_timeout(10)
        board_sign_in(board, env["KYUKYU_STACK_BOARD_URL"], env)
        tablet = browser_driver()
        tablet.set_page_load_timeout(30)
        tablet.set_script_timeout(10)
        crew = {"crewId": env["KYUKYU_DEMO_CREW_ID"], "password": env["KYUKYU_DEMO_CREW_PASSWORD"],
                "secret": env["KYUKYU_DEMO_CREW_TOTP_SECRET"]}
        browser_sign_in(tablet, env["KYUKYU_STACK_GATEWAY_URL"] + "/", crew)
        handoff_run(tablet, board, stack, holder, hospital)  # unmeasured: chromium's caches, the first TLS session
        measured = []
        for i in range(runs):
            r = handoff_run(tablet, board, stack, holder, hospital)
            measured.append(r)
            log(f"handoff {i + 1}/{runs}: tap -> card on the board {r['tapToBoard']} ms (stored "
                f"{r['tapToStored']} ms after the tap; marks {r})")
    finally:
        for browser in (tablet, board):
            if browser is not None:
                browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
        stack.stop()
    keys = ("tapToBoard", "tapToStored", "storedToBoard", "tapToTabletQueued", "tapToTabletSent",
            "tapToTabletReceived", "clickCallToTap")
    return {**{k: stats([r[k] for r in measured if k in r]) for k in keys}, "holder": holder, "raw": measured}


def print_handoff(r: dict, bin_dir: str, date: str, load: str) -> None:
    """The handoff figures, as a Markdown table for docs/performance.md."""
    def row(label: str, s: dict) -> str:
        if not s.get("n"):
            return f"| {label} | n=0 | | | | |"
        return f"| {label} | {s['n']} | {s['median']:.0f} ms | {s['p90']:.0f} ms | {s['min']:.0f} ms | {s['max']:.0f} ms |"

    print(f"handoff: \"send\" tapped on the tablet -> the card on the ER board, {date}, {bin_dir}, load now {load}")
    print("| | n | median | p90 | min | max |")
    print("|---|---|---|---|---|---|")
    print(row("**\"send\" tapped → the card on the board**", r["tapToBoard"]))
    print(row("tap → stored by the receiver (its `firstReceivedAt`)", r["tapToStored"]))
    print(row("stored → the card on the board", r["storedToBoard"]))
    print(row("tap → the tablet's strip says queued", r["tapToTabletQueued"]))
    print(row("tap → the tablet's strip says received", r["tapToTabletReceived"]))
    print(row("(selenium's click call → the click event in the page; not counted)", r["clickCallToTap"]))


# MARK: - main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=os.environ.get("KYUKYU_BIN_DIR", ".build/release"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--part", choices=("all", "cold", "rss", "ui", "handoff"), default="all")
    parser.add_argument("--handoff-runs", type=int, default=20, help="runs of the handoff part (send -> board)")
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("KYUKYU_STACK_PORT_BASE", "20900")))
    parser.add_argument("--state-dir", default="state/bench-gateway")
    parser.add_argument("--out", default=None,
                        help="default state/bench/gateway.json (state/bench/handoff.json for --part handoff)")
    parser.add_argument("--holder", type=int, default=3, help="the synthetic holder for the browser/CLI runs")
    parser.add_argument("--log-level", default="info",
                        help="the gateway's log level; debug logs the incident's stage times (ms after the card)")
    args = parser.parse_args()
    if args.out is None:
        args.out = "state/bench/handoff.json" if args.part == "handoff" else "state/bench/gateway.json"
    global LOG_LEVEL
    LOG_LEVEL = args.log_level
    os.chdir(ROOT)
    bin_dir = os.path.abspath(args.bin_dir)
    work = os.path.abspath(args.state_dir)
    os.makedirs(work, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "binDir": bin_dir,
              "cores": os.cpu_count(), "loadBefore": loadavg(), "argv": sys.argv}
    stack = Stack(bin_dir, os.path.join(work, "stack"), args.port_base)
    try:
        if args.part != "handoff":
            stack.start()
        if args.part in ("all", "cold"):
            result["coldStart"] = bench_cold(stack, work, args.runs)
            for kind in ("fresh", "existing"):
                r = result["coldStart"][kind]
                print(f"cold start ({kind} state): live {fmt(r['live'])}; ready {fmt(r['ready'])}; "
                      f"idle VmRSS {fmt(r['idleRSS'], 'MiB')}")
        if args.part in ("all", "rss", "ui"):
            incidents = args.incidents if args.part in ("all", "rss") else 0
            result["rss"], _, crew = bench_rss(stack, work, incidents, [1, 2, 3, 4, 5])
            r = result["rss"]
            print(f"RSS: idle {r['idle']}, after {incidents} incidents {r['after']} (MiB); consent->summary "
                  f"{fmt(r['consentToSummary'])}")
        if args.part in ("all", "ui"):
            result["ui"] = bench_ui(stack, crew, args.runs, args.holder)
            r = result["ui"]
            print(f"kyukyu fetch: output (first byte) {fmt(r['cli']['firstByte'])}; exit {fmt(r['cli']['exit'])}")
            print(f"kyukyu fetch --wait, from the touch: output {fmt(r['cliFromTouch']['firstByte'])}; "
                  f"exit {fmt(r['cliFromTouch']['exit'])}")
            for mark, s in r["browser"].items():
                print(f"browser {mark}: {fmt(s)}")
            print(f"ratio: {r['ratio']}")
        if args.part in ("all", "handoff"):
            for g in STARTED:  # one stack at a time: the handoff part starts its own, on the same ports
                g.stop()
            stack.stop()
            result["handoff"] = bench_handoff(bin_dir, work, args.port_base, args.handoff_runs, args.holder)
            print_handoff(result["handoff"], bin_dir, result["date"], loadavg())
    finally:
        for g in STARTED:
            g.stop()
        stack.stop()
        result["loadAfter"] = loadavg()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, ensure_ascii=False)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
