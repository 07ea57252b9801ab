"""A real `kyukyu-hospital` for the board's browser tests: `ca init`, `device issue`, `staff add` (TOTP secret
parsed from its output), then `serve` on a loopback port; an ambulance that posts documents and placement requests
over mutual TLS (and cancels them) and reads its event stream; staff reads with the browser's session cookie; and a
headless chromium that trusts exactly the receiver's server key.

Documents are the ones KyukyuFHIR's builder wrote for `make fhir-test` / `make test` (state/fhir-documents, for
hospital 1312345678 and device ambulance-01). All of them share one document set and version uuid, so each is given
fresh ones here (the set uuid and the version uuid's prefix, which every entry uuid shares), nothing else changed.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from stack import BROWSER_STATE, REPO, bin_dir

HOSPITAL = "1312345678"
DEVICE = "ambulance-01"
STAFF = "NURSE-01"
PASSWORD = "board-test-password"
DOCUMENTS = Path(os.environ.get("KYUKYU_FHIR_DOCUMENTS", REPO / "state" / "fhir-documents"))
SOURCE_SET = "6f1c2a34-5b6d-4e7f-8091-a2b3c4d5e6f7"


def board_port() -> int:
    """$KYUKYU_BOARD_PORT, else $KYUKYU_BROWSER_PORT_BASE + 99 (above the stacks' base…base+96)."""
    if "KYUKYU_BOARD_PORT" in os.environ:
        return int(os.environ["KYUKYU_BOARD_PORT"])
    return int(os.environ.get("KYUKYU_BROWSER_PORT_BASE", "20700")) + 99


def document(name: str, set_id: str, replaces: str | None = None) -> tuple[bytes, str]:
    """A builder-made document with `set_id` as its document set and a fresh version uuid (the old one's first 14
    characters, which every entry uuid shares, replaced); with `replaces`, its `relatesTo` names that version uuid.
    Returns (body, version uuid)."""
    path = DOCUMENTS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make fhir-test` (or set KYUKYU_FHIR_DOCUMENTS)")
    text = path.read_text(encoding="utf-8")
    bundle = json.loads(text)
    old = bundle["id"]
    new = str(uuid.uuid4())[:14] + old[14:]
    if replaces is not None:
        target = bundle["entry"][0]["resource"]["relatesTo"][0]["targetIdentifier"]["value"]
        text = text.replace(target, f"urn:uuid:{replaces}")
    text = text.replace(SOURCE_SET, set_id).replace(old[:14], new[:14])
    return text.encode("utf-8"), new


class Receiver:
    """One `kyukyu-hospital` with its own state folder under state/browser/board."""

    def __init__(self, name: str = "board") -> None:
        self.state = BROWSER_STATE / name / "hospital"
        self.port = board_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.executable = bin_dir() / "kyukyu-hospital"
        self.log = self.state.parent / "hospital.log"
        self.process: subprocess.Popen | None = None
        self.totp_secret = ""

    def run(self, *arguments: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(self.executable), *arguments], input=stdin, capture_output=True, text=True, timeout=60, cwd=REPO
        )
        if done.returncode != 0:
            raise RuntimeError(f"kyukyu-hospital {arguments[0]} {arguments[1] if len(arguments) > 1 else ''} "
                               f"failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        if self.state.parent.exists():
            subprocess.run(["rm", "-rf", str(self.state.parent)], check=True, timeout=30)
        self.state.mkdir(parents=True)
        state = str(self.state)
        self.run("ca", "init", "--state-dir", state, "--hospital", HOSPITAL)
        self.run("device", "issue", "--state-dir", state, "--device", DEVICE, "--out", f"{state}/devices")
        added = self.run("staff", "add", STAFF, "--state-dir", state, stdin=f"{PASSWORD}\n2468\n")
        found = re.search(r"TOTP secret \(base32\): ([A-Z2-7=]+)", added)
        assert found, "staff add printed no TOTP secret"
        self.totp_secret = found.group(1)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.executable), "serve", "--state-directory", state, "--http-port", str(self.port),
                 "--hospital-code", HOSPITAL, "--events-keep-alive-seconds", "1", "--log-level", "info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = self.request("GET", "/health/live", device=False)
                if status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kyukyu-hospital serve did not come up on {self.port}: see {self.log}")
            time.sleep(0.1)  # polling a starting process, not timing a test

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    # MARK: the ambulance's side (mutual TLS)

    def context(self, device: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.cert.pem"))
        if device:
            folder = self.state / "devices"
            context.load_cert_chain(str(folder / f"{DEVICE}.cert.pem"), str(folder / f"{DEVICE}.key.pem"))
        return context

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                device: bool = True) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(device), timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def post(self, body: bytes, version: str) -> int:
        status, answer = self.request("POST", "/fhir/Bundle", body, {
            "Content-Type": "application/fhir+json", "Idempotency-Key": f"urn:uuid:{version}",
        })
        assert status in (200, 201), f"intake refused the document: {status} {answer[:300]!r}"
        return status

    def withdraw(self, set_id: str, reason: str) -> None:
        """The ambulance withdraws the set (mutual TLS), as the gateway's outbox does."""
        status, answer = self.request("POST", f"/ambulance/v1/document-sets/{set_id}/withdraw",
                                      json.dumps({"reason": reason}).encode(), {"Content-Type": "application/json"})
        assert status == 200, f"the withdrawal was refused: {status} {answer[:300]!r}"

    def place(self, placement: str, set_id: str, summary: dict, hospitals: list[str] | None = None) -> dict:
        """The ambulance asks hospitals at once (`POST /ambulance/v1/placements`, mutual TLS); returns the view."""
        body = {"placement": placement, "documentSet": f"urn:uuid:{set_id}", "hospitals": hospitals or [HOSPITAL],
                "summary": summary}
        status, answer = self.request("POST", "/ambulance/v1/placements", json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
        assert status == 201, f"the placement request was refused: {status} {answer[:300]!r}"
        return json.loads(answer)

    def cancel_placement(self, placement: str) -> dict:
        """The crew withdraws its placement request (`POST /ambulance/v1/placements/<id>/cancel`)."""
        status, answer = self.request("POST", f"/ambulance/v1/placements/{placement}/cancel", b"{}",
                                      {"Content-Type": "application/json"})
        assert status == 200, f"the cancellation was refused: {status} {answer[:300]!r}"
        return json.loads(answer)

    def placement(self, placement: str) -> dict:
        """The ambulance's view of its request (`GET /ambulance/v1/placements/<id>`): every hospital's answer."""
        status, answer = self.request("GET", f"/ambulance/v1/placements/{placement}")
        assert status == 200, f"the placement could not be read: {status} {answer[:300]!r}"
        return json.loads(answer)

    def staff_get(self, path: str, cookies: list[dict]) -> dict:
        """A staff GET over HTTPS (no device certificate) with the browser's session cookie(s)."""
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
        status, answer = self.request("GET", path, headers={"Accept": "application/json", "Cookie": cookie},
                                      device=False)
        assert status == 200, f"GET {path} as staff: {status} {answer[:300]!r}"
        return json.loads(answer)

    def staff_put(self, path: str, body: dict, cookies: list[dict]) -> dict:
        """A staff PUT in the browser's session, as another screen of the hospital would make it (the session's CSRF
        token read from GET /api/v1/session)."""
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
        csrf = self.staff_get("/api/v1/session", cookies)["csrfToken"]
        status, answer = self.request("PUT", path, json.dumps(body).encode(), headers={
            "Accept": "application/json", "Content-Type": "application/json", "Cookie": cookie,
            "X-CSRF-Token": csrf, "Origin": self.base,
        }, device=False)
        assert status == 200, f"PUT {path} as staff: {status} {answer[:300]!r}"
        return json.loads(answer)

    def device_events(self, until, timeout: float = 15) -> list[dict]:
        """Reads GET /ambulance/v1/events (the device's own stream, from the start) until `until(events)` holds."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=timeout)
        events: list[dict] = []
        try:
            connection.request("GET", "/ambulance/v1/events", headers={"Accept": "text/event-stream"})
            response = connection.getresponse()
            assert response.status == 200, response.status
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = response.readline().decode("utf-8")
                if not line:
                    break
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if until(events):
                        return events
            raise AssertionError(f"the ambulance's stream did not bring what was expected: {events}")
        finally:
            connection.close()

    # MARK: the browser

    def server_spki(self) -> str:
        """base64(SHA-256(SubjectPublicKeyInfo)) of the server certificate, for chromium's SPKI allow-list."""
        pem = (self.state / "pki" / "server.cert.pem").read_text()
        der = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem, capture_output=True, text=True,
                             check=True, timeout=10).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der.encode(),
                              capture_output=True, check=True, timeout=10).stdout
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def browser(self, browser_smoke, width: int = 1600, height: int = 1000):
        """Debian's headless chromium (browser-smoke.py's settings) that accepts only this receiver's server key."""
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = browser_smoke.CHROMIUM
        profile = tempfile.mkdtemp(prefix="kyukyu-board-chromium-")
        for argument in (
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            f"--window-size={width},{height}", "--lang=ja-JP", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
            f"--ignore-certificate-errors-spki-list={self.server_spki()}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        return webdriver.Chrome(service=Service(executable_path=browser_smoke.CHROMEDRIVER), options=options)
