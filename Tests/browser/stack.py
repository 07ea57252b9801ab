"""The real stack for one browser scenario: scripts/stack.sh start/stop in a fresh state folder, and small clients
for the card simulator's control, the eligibility stub's admin API and the synthetic population.

Every call is bounded (subprocess and HTTP time limits); nothing sleeps.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / "state"
BROWSER_STATE = STATE / "browser"
SCREENSHOTS = STATE / "screenshots"
STACK_SH = REPO / "scripts" / "stack.sh"
# Key material only (test PKI of the card simulator, the stub's TLS CA, the terminal's client certificate): made
# once by the first stack of a run, then copied into every later stack's fresh state folder, so that each stack
# does not generate RSA keys again. No patient data is in these folders.
PKI_SEED = BROWSER_STATE / ".pki-seed"
PKI_PARTS = ("sim-pki", "eligibility-tls", "terminal-tls")


def bin_dir() -> Path:
    """The built executables: $KYUKYU_BIN_DIR (the Makefile sets it), else .build/debug."""
    value = os.environ.get("KYUKYU_BIN_DIR")
    if value:
        return Path(value)
    return REPO / ".build" / "debug"


def port_base() -> int:
    """First port of the stacks (stack.sh's KYUKYU_STACK_PORT_BASE); $KYUKYU_BROWSER_PORT_BASE, default 20700."""
    return int(os.environ.get("KYUKYU_BROWSER_PORT_BASE", "20700"))


class StackError(RuntimeError):
    """A stack command failed; carries the command's output."""


def _http(method: str, url: str, body: object | None = None, timeout: float = 15.0) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise StackError(f"{method} {url}: {error.code} {error.read()[:500]!r}") from error
    return json.loads(raw) if raw.strip() else None


@dataclass
class Stack:
    """One stack in `state/browser/<name>`, on the ports from `port_base()`."""

    name: str
    holder: int = 3
    profile: str = "card"
    gateway_args: str = ""
    # More of stack.sh's variables for every command (KYUKYU_STACK_HUB, KYUKYU_STACK_TERMINAL_ID, …).
    extra_env: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.dir = BROWSER_STATE / self.name
        self.env: dict[str, str] = {}
        self.started = False
        self.start_seconds = 0.0
        self.stop_seconds = 0.0
        self.stop_notes: list[str] = []
        self.last_stderr = ""
        self.port_base = port_base()

    # MARK: - lifecycle

    def _run(self, *args: str, timeout: float = 180.0, extra_env: dict[str, str] | None = None) -> str:
        env = dict(os.environ)
        env.update(
            {
                "KYUKYU_BIN_DIR": str(bin_dir()),
                "KYUKYU_STACK_PORT_BASE": str(self.port_base),
                "KYUKYU_STACK_HOLDER": str(self.holder),
                "KYUKYU_STACK_PROFILE": self.profile,
                "KYUKYU_STACK_GATEWAY_ARGS": self.gateway_args,
            }
        )
        env.update(self.extra_env or {})
        env.update(extra_env or {})
        try:
            done = subprocess.run(
                [str(STACK_SH), *args],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise StackError(f"stack.sh {' '.join(args)}: no answer within {timeout} s") from error
        self.last_stderr = done.stderr
        if done.returncode != 0:
            raise StackError(f"stack.sh {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> "Stack":
        """A fresh state folder (the key material seeded), then `stack.sh start`; reads stack.env.

        The ports are in Linux's ephemeral range (32768-60999), so another process's outgoing connection can hold
        one of them between stack.sh's free-port check and a part's bind ("Address already in use"). Then the
        start is tried again on the next port block (+33, +66: a stack takes base…base+30, so the three blocks stay
        within base…base+99): every URL and port is read from stack.env.
        """
        for attempt in range(3):
            self.port_base = port_base() + 33 * attempt
            if self.dir.exists():
                self._run("stop", str(self.dir), timeout=90)
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            if PKI_SEED.is_dir():
                for part in PKI_PARTS:
                    if (PKI_SEED / part).is_dir():
                        shutil.copytree(PKI_SEED / part, self.dir / part)
            self.started = True
            began = time.monotonic()
            try:
                self._run("start", str(self.dir))
            except StackError as error:
                self.started = False
                if attempt < 2 and (self._port_taken(str(error)) or self._port_taken_in_logs()):
                    print(f"\n[browser] stack {self.name}: a port of block {self.port_base} was taken; next block")
                    continue
                raise
            self.start_seconds = time.monotonic() - began
            self.load_env()
            return self
        raise StackError("unreachable")

    @staticmethod
    def _port_taken(text: str) -> bool:
        return "Address already in use" in text or "is taken; set KYUKYU_STACK_PORT_BASE" in text

    def _port_taken_in_logs(self) -> bool:
        logs = self.dir / "logs"
        return logs.is_dir() and any(
            self._port_taken(path.read_text(errors="replace")) for path in logs.iterdir() if path.is_file()
        )

    def stop(self) -> None:
        """`stack.sh stop` (nothing keeps running); keeps the state folder for the PHI check; refreshes the seed."""
        if not self.started and not (self.dir / "run").is_dir():
            return  # never started (a start that failed was already stopped by stack.sh; see below)
        self.started = False
        began = time.monotonic()
        self._run("stop", str(self.dir), timeout=90)
        self.stop_seconds = time.monotonic() - began
        self.stop_notes = [line for line in self.last_stderr.splitlines() if "SIGKILL" in line]
        for part in PKI_PARTS:
            if (self.dir / part).is_dir():
                shutil.copytree(self.dir / part, PKI_SEED / part, dirs_exist_ok=True)

    def load_env(self) -> None:
        """Parses stack.env (`KEY='value'` lines)."""
        env: dict[str, str] = {}
        for line in (self.dir / "stack.env").read_text().splitlines():
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            parts = shlex.split(value)
            env[key] = parts[0] if parts else ""
        self.env = env

    def kill_gateway(self) -> None:
        self._run("kill-gateway", str(self.dir), timeout=30)
        self.load_env()

    def restart_gateway(self) -> None:
        self._run("restart-gateway", str(self.dir))
        self.load_env()

    def stop_stub(self) -> None:
        self._run("stop-stub", str(self.dir), timeout=60)
        self.load_env()

    def start_stub(self) -> None:
        self._run("start-stub", str(self.dir))
        self.load_env()

    # MARK: - places

    @property
    def url(self) -> str:
        return self.env["KYUKYU_STACK_GATEWAY_URL"] + "/"

    @property
    def gateway_state(self) -> Path:
        return Path(self.env.get("KYUKYU_STACK_GATEWAY_STATE_DIR") or self.dir / "gateway")

    @property
    def gateway_log(self) -> Path:
        return self.dir / "logs" / "gateway.log"

    # MARK: - card simulator control

    def card(self) -> dict:
        return _http("GET", self.env["KYUKYU_CARD_CONTROL_URL"] + "/card")

    def put_card(self, holder: int, profile: str = "card", **extra: object) -> dict:
        return _http("PUT", self.env["KYUKYU_CARD_CONTROL_URL"] + "/card", {"holder": holder, "profile": profile, **extra}, timeout=60)

    def remove_card(self) -> dict:
        return _http("DELETE", self.env["KYUKYU_CARD_CONTROL_URL"] + "/card")

    def remove_after_apdus(self, apdus: int, reinsert_after_ms: int | None) -> dict:
        body: dict[str, int] = {"apdus": apdus}
        if reinsert_after_ms is not None:
            body["reinsertAfterMs"] = reinsert_after_ms
        return _http("POST", self.env["KYUKYU_CARD_CONTROL_URL"] + "/card/remove-after-apdus", body)

    # MARK: - eligibility stub admin

    def viewings(self) -> list[dict]:
        answer = _http("GET", self.env["KYUKYU_STUB_ADMIN_URL"] + "/admin/viewings")
        return answer if isinstance(answer, list) else answer.get("viewings", [])

    def put_faults(self, faults: dict) -> None:
        _http("PUT", self.env["KYUKYU_STUB_ADMIN_URL"] + "/admin/faults", faults)


# MARK: - the synthetic population


@dataclass(frozen=True)
class Patient:
    """A synthetic patient as `kyukyu-eligibility-sim population show N` prints it."""

    number: int
    name: str  # family U+3000 given
    kana: str
    sex: str  # onshi code: 1 male, 2 female, 9 not applicable
    birth: str  # YYYYMMDD
    postal_code: str
    address: str
    insurer_number: str
    insured_symbol: str
    insured_number: str

    @property
    def family_name(self) -> str:
        return self.name.split("\u3000")[0]

    @property
    def given_name(self) -> str:
        return self.name.split("\u3000")[1]

    @property
    def family_kana(self) -> str:
        return self.kana.split("\u3000")[0]

    @property
    def given_kana(self) -> str:
        return self.kana.split("\u3000")[1]

    @property
    def sex_name(self) -> str:
        """The sex as the gateway's API spells it (the population prints the onshi code 1, 2 or 9)."""
        return {"1": "male", "2": "female", "9": "other"}.get(self.sex, self.sex)

    @property
    def birth_iso(self) -> str:
        return f"{self.birth[:4]}-{self.birth[4:6]}-{self.birth[6:]}"


_population_cache: dict[int, Patient] = {}


def patient(number: int) -> Patient:
    """Asks the stub's population (the same pure function the stub and the card simulator serve) for patient N."""
    if number in _population_cache:
        return _population_cache[number]
    done = subprocess.run(
        [str(bin_dir() / "kyukyu-eligibility-sim"), "population", "show", str(number)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise StackError(f"population show {number}: {done.stderr[-1000:]}")
    text = done.stdout
    name = re.search(r"^\s*name: (\S+\u3000\S+) \((\S+\u3000\S+)\), sex (\w+), born (\d{8})", text, re.M)
    address = re.search(r"^\s*address: (\d{3}-\d{4}) (.+)$", text, re.M)
    insurer = re.search(r"^\s*insurer: (\d+) .*, symbol (\S+), number (\S+), copay", text, re.M)
    if not (name and address and insurer):
        raise StackError(f"population show {number}: unexpected output:\n{text}")
    result = Patient(
        number=number,
        name=name.group(1),
        kana=name.group(2),
        sex=name.group(3),
        birth=name.group(4),
        postal_code=address.group(1),
        address=address.group(2).strip(),
        insurer_number=insurer.group(1),
        insured_symbol="" if insurer.group(2) == "-" else insurer.group(2),
        insured_number=insurer.group(3),
    )
    _population_cache[number] = result
    return result


if __name__ == "__main__":  # a quick look: python3 Tests/browser/stack.py 3
    print(patient(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
