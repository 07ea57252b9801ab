#!/usr/bin/env python3
"""The gateway's figures (issue 8), on the real stack: private pcscd + vpcd + card simulator, the onshi stub, and
`kyukyu-gateway serve` as a process of its own. Part of `make bench`, never of `make test`.

    scripts/bench-gateway.py [--bin-dir .build/release] [--runs 10] [--incidents 100] [--part all|cold|rss|ui]

1. cold   exec of `kyukyu-gateway serve` -> first 200 of GET /health/live (the server alone) and of
          GET /health/ready (server, vault open, onshi pool warm); a fresh state folder each run, and an
          existing one (made by an earlier start), interleaved. Also VmRSS 3 s after ready (idle).
2. rss    one gateway with a crew: VmRSS/VmHWM idle, then after N incidents driven through the HTTP API the way
          the tablet does (sign in once; per incident: swap the card, create, consent verbal, wait for the
          summary with every category finished, close).
3. ui     card touched -> summary in the browser (headless chromium, selenium, the tablet UI) against
          `kyukyu fetch --consent verbal --json` reading the same card against the same stub; interleaved.

Writes state/bench/gateway.json (or --out) and prints the tables. Needs root (the stack's private pcscd),
Debian's chromium + chromedriver and selenium (scripts/install-deps.sh). Nothing is downloaded (SE_OFFLINE).
Synthetic patients only; no patient field is printed or written.
"""
import argparse
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
    """scripts/stack.sh without its gateway (pcscd, card simulator, stub); the gateways here are started by us."""

    def __init__(self, bin_dir: str, state: str, port_base: int):
        self.bin_dir = bin_dir
        self.state = state
        self.port_base = port_base
        self.env = {}

    def start(self) -> None:
        env = dict(os.environ, KYUKYU_BIN_DIR=self.bin_dir, KYUKYU_STACK_PORT_BASE=str(self.port_base),
                   KYUKYU_STACK_NO_GATEWAY="1")
        subprocess.run([os.path.join(ROOT, "scripts/stack.sh"), "start", self.state], env=env, check=True,
                       stdin=subprocess.DEVNULL, timeout=180)
        with open(os.path.join(self.state, "stack.env")) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    key, _, value = line.strip().partition("=")
                    self.env[key] = shlex.split(value)[0] if value else ""

    def stop(self) -> None:
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


# MARK: - main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=os.environ.get("KYUKYU_BIN_DIR", ".build/release"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--part", choices=("all", "cold", "rss", "ui"), default="all")
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("KYUKYU_STACK_PORT_BASE", "20900")))
    parser.add_argument("--state-dir", default="state/bench-gateway")
    parser.add_argument("--out", default="state/bench/gateway.json")
    parser.add_argument("--holder", type=int, default=3, help="the synthetic holder for the browser/CLI runs")
    parser.add_argument("--log-level", default="info",
                        help="the gateway's log level; debug logs the incident's stage times (ms after the card)")
    args = parser.parse_args()
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
