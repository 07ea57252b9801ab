"""The packages installed on a fresh Debian and their units started by a real systemd (docs/operations.md, "The install
test").

A Debian 12 minbase tree (debootstrap, plus systemd and dbus so that it can boot; cached as a tarball under
state/deploy/) is booted with `systemd-nspawn --boot` on the host's network; inside it, apt installs the two .debs of
$KYUKYU_PACKAGE_DIR (made by scripts/package.sh) with their dependencies from Debian, and the units are started with
systemctl as an operator would: the keyring credential made with systemd-creds, the terminal's certificate from the
drill's onshi stub, the receiver's CA with `kyukyu-hospital ca init`. Ports 21500-21599 on 127.0.0.1.

Root only (debootstrap, nspawn). Every wait has a limit. Nothing here is skipped: a host where nspawn cannot boot a
container fails the test, with nspawn's output.
"""

import json
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / "state" / "deploy"
PACKAGES = Path(os.environ.get("KYUKYU_PACKAGE_DIR", REPO / "state" / "package"))
SUITE = "bookworm"
MIRROR = os.environ.get("KYUKYU_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the cached tree holds beyond minbase, and so its cache key.
INCLUDE = "systemd,dbus"
BASE_TARBALL = STATE / f"{SUITE}-minbase-{INCLUDE.replace(',', '-')}.tar"
ROOT = STATE / "root"
MACHINE = "kyukyu-install-test"

# Ports (127.0.0.1; the container shares the host's network).
VPCD_PORT = 21510
CARD_CONTROL_PORT = 21515  # (vpcd takes its port and the next)
ONSHI_PORT = 21520
STUB_ADMIN_PORT = 21521
ONSHI_LINK_PORT = 21525
NETSIM_CONTROL_PORT = 21526
GATEWAY_PORT = 21530
RECEIVER_PORT = 21540
HOSPITAL_CODE = "9999999999"  # the fictitious demo hospital

# Package-owned paths that must be private, and their owner.
PRIVATE_DIRECTORIES = {
    "/etc/credstore.encrypted": "root",
    "/var/lib/kyukyu-gateway": "kyukyu",
    "/var/lib/kyukyu-gateway/terminal-tls": "kyukyu",
    "/var/lib/kyukyu-gateway/hospital-tls": "kyukyu",
    "/var/log/kyukyu-gateway": "kyukyu",
    "/var/lib/kyukyu-hospital": "kyukyu-hospital",
    "/var/log/kyukyu-hospital": "kyukyu-hospital",
    "/var/lib/kyukyu-drill": "kyukyu-drill",
}
# Folders whose every file is a secret or patient data (nothing in them may be readable by others).
SECRET_TREES = ["/etc/credstore.encrypted", "/var/lib/kyukyu-gateway", "/var/lib/kyukyu-hospital", "/var/log/kyukyu-gateway",
                "/var/log/kyukyu-hospital"]
# What a secret or patient data looks like on disk: a PEM private key with its body, a device keyring, a database.
SECRET_PATTERNS = [re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40}"),
                   re.compile(rb'"key"\s*:\s*"[A-Za-z0-9+/]{43}="'), re.compile(rb"\ASQLite format 3\x00")]
UNITS = ["kyukyu-gateway.service", "kyukyu-hospital.service", "kyukyu-eligibility-sim.service",
         "kyukyu-card-sim@.service", "kyukyu-netsim@.service"]


def log(message):
    print(f"[deploy] {message}", flush=True)


def run(command, timeout=600, check=True, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as error:  # noqa: BLE001 - kept for the message
            last = error
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last!r})")


# MARK: - the tree


def base_tarball():
    """The minbase tree with systemd, made once and cached (debootstrap takes about a minute here)."""
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    STATE.mkdir(parents=True, exist_ok=True)
    scratch = STATE / "debootstrap"
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.monotonic()
    run(["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(scratch), MIRROR], timeout=1200)
    log(f"debootstrap --variant=minbase --include={INCLUDE} {SUITE}: {time.monotonic() - started:.0f} s")
    run(["apt-get", "clean"], cwd=scratch, check=False)
    partial = BASE_TARBALL.with_suffix(".partial")
    run(["tar", "--numeric-owner", "--xattrs", "-C", str(scratch), "-cf", str(partial), "."], timeout=600)
    partial.rename(BASE_TARBALL)
    shutil.rmtree(scratch, ignore_errors=True)
    return BASE_TARBALL


def fresh_root():
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    run(["tar", "--numeric-owner", "--xattrs", "-C", str(ROOT), "-xf", str(base_tarball())], timeout=600)
    (ROOT / "etc" / "hostname").write_text(MACHINE + "\n")
    # No machine ID yet: systemd makes one at boot (a "first boot", as on a fresh install).
    (ROOT / "etc" / "machine-id").write_text("")


class Container:
    """A systemd-nspawn --boot of ROOT; `sh` runs a command inside it (nsenter into its namespaces)."""

    def __init__(self):
        self.process = None
        self.leader = None
        self.output = STATE / "nspawn.log"

    def boot(self):
        self.log_file = open(self.output, "w")
        self.process = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--boot", "--directory", str(ROOT), "--machine", MACHINE,
             "--register=no", "--keep-unit", "--console=pipe", "--resolv-conf=copy-host", "--timezone=off"],
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        def parent(pid):
            match = re.search(r"^PPid:\s+(\d+)$", Path(f"/proc/{pid}/status").read_text(), re.M)
            return int(match.group(1)) if match else 0

        def descends_from_nspawn(pid):
            for _ in range(8):
                pid = parent(pid)
                if pid == self.process.pid:
                    return True
                if pid <= 1:
                    return False
            return False

        def leader():
            if self.process.poll() is not None:
                raise AssertionError(f"systemd-nspawn exited ({self.process.returncode}): {self.output.read_text()[-3000:]}")
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    # The container's PID 1 (its own PID namespace), started by our nspawn.
                    if re.search(r"^NSpid:\s+\d+\s+1$", status, re.M) and descends_from_nspawn(int(pid)):
                        return int(pid)
                except OSError:
                    continue
            return None

        self.leader = wait_for(leader, 60, "the container's systemd")

        def booted():
            state = self.sh("systemctl is-system-running", check=False).stdout.strip()
            return state if state in ("running", "degraded") else None

        state = wait_for(booted, 120, "the container's boot")
        log(f"container booted ({state}), systemd PID {self.leader} on the host")

    def sh(self, script, timeout=300, check=True, input=None):
        command = ["nsenter", "--target", str(self.leader), "--all", "--root", "--wd",
                   "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root",
                   "/bin/sh", "-c", script]
        return run(command, timeout=timeout, check=check, input=input)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)  # a second SIGTERM ends it at once
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.log_file.close()


def debs():
    main = sorted(PACKAGES.glob("myna-kyukyu_*.deb"))
    drill = sorted(PACKAGES.glob("myna-kyukyu-drill_*.deb"))
    assert len(main) == 1 and len(drill) == 1, f"expected one of each package in {PACKAGES} (make package): {main + drill}"
    return main[0], drill[0]


@pytest.fixture(scope="module")
def box():
    main, drill = debs()
    started = time.monotonic()
    fresh_root()
    log(f"fresh tree in {time.monotonic() - started:.0f} s")
    incoming = ROOT / "root" / "debs"
    incoming.mkdir(parents=True)
    shutil.copy(main, incoming)
    shutil.copy(drill, incoming)
    container = Container()
    try:
        container.boot()
        started = time.monotonic()
        container.sh("apt-get update -qq", timeout=300)
        installed = container.sh(
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/debs/{main.name} /root/debs/{drill.name}",
            timeout=900)
        log(f"apt-get install of both packages and their dependencies: {time.monotonic() - started:.0f} s")
        (STATE / "apt-install.log").write_text(installed.stdout + installed.stderr)
        yield container
    finally:
        if container.leader:
            journal = container.sh("journalctl --no-pager -o short-monotonic -u 'kyukyu*' -u pcscd.service", check=False)
            (STATE / "journal.log").write_text(journal.stdout + journal.stderr)
        container.stop()


# MARK: - helpers inside


def show(box, unit, *properties):
    out = box.sh(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in properties)).stdout
    return dict(line.split("=", 1) for line in out.strip().splitlines())


def stat_of(box, path):
    out = box.sh(f"stat -c '%a %U %G %F' {path}").stdout.split(maxsplit=3)
    return int(out[0], 8), out[1], out[2], out[3].strip()


def private_violations(box, trees):
    """What others could reach in trees: a folder with any group or other permission, or a secret-looking file (private
    key, keyring, database) that is not owner-only. (Certificates may be 0644 inside a 0700 folder.)"""
    lines = box.sh(f"find {' '.join(trees)} -xdev \\( -type d -o -type f \\) -printf '%m %y %u %p\\n' 2>/dev/null; true").stdout
    found = []
    for line in lines.splitlines():
        mode, kind, owner, path = line.split(" ", 3)
        if not int(mode, 8) & 0o077:
            continue
        if kind == "d" or any(p.search((ROOT / path.lstrip("/")).read_bytes()) for p in SECRET_PATTERNS):
            found.append(line)
    return found


def start_and_wait(box, unit, seconds=120):
    """Starts unit without blocking and waits for it to be active (for Type=notify: READY=1 received)."""
    box.sh(f"systemctl start --no-block {unit}")

    def active():
        state = show(box, unit, "ActiveState", "SubState", "Result")
        if state["ActiveState"] == "failed" or state["Result"] not in ("success", ""):
            raise AssertionError(f"{unit} failed: {state}\n" + journal(box, unit))
        return state if state["ActiveState"] == "active" else None

    try:
        return wait_for(active, seconds, f"{unit} active")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{journal(box, unit)}") from None


def journal(box, unit):
    return box.sh(f"journalctl --no-pager -o cat -u {unit} | tail -n 40", check=False).stdout


def http_get(url, cafile=None, timeout=5):
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        return response.status, response.read().decode("utf-8", "replace")


# MARK: - the tests, in order (one container for the module)


def test_packages_install_with_their_dependencies(box):
    status = box.sh("dpkg-query -W -f='${Package} ${Status}\\n' myna-kyukyu myna-kyukyu-drill").stdout
    assert status.count("install ok installed") == 2, status
    # The executables find their bundled Swift runtime (no /opt/swift here) and every library is resolved.
    for name in ["kyukyu", "kyukyu-gateway", "kyukyu-hospital", "kyukyu-card-sim", "kyukyu-eligibility-sim", "kyukyu-netsim"]:
        ldd = box.sh(f"ldd /usr/lib/myna-kyukyu/bin/{name}").stdout
        assert "not found" not in ldd, ldd
        assert re.search(r"libswiftCore\.so => /usr/lib/myna-kyukyu/(bin/\.\./)?lib/libswiftCore\.so", ldd), ldd
        box.sh(f"{name} --help >/dev/null")  # through the /usr/bin link
    assert not (ROOT / "opt" / "swift").exists()


def test_users_and_folders(box):
    for user in ["kyukyu", "kyukyu-hospital", "kyukyu-drill"]:
        entry = box.sh(f"getent passwd {user}", check=False).stdout.strip()
        assert entry, f"postinst did not create user {user}"
        fields = entry.split(":")
        assert int(fields[2]) < 1000, f"{user} is not a system user: {entry}"
        assert fields[6] in ("/usr/sbin/nologin", "/sbin/nologin"), entry
    for path, owner in PRIVATE_DIRECTORIES.items():
        mode, user, group, kind = stat_of(box, path)
        assert kind == "directory", (path, kind)
        assert mode == 0o700, f"{path} has mode {mode:o}, not 700"
        assert user == owner and group == owner, (path, user, group)


def test_units_installed_and_not_started(box):
    for unit in UNITS:
        assert (ROOT / "lib" / "systemd" / "system" / unit).is_file(), unit
    for unit in ["kyukyu-gateway.service", "kyukyu-hospital.service", "kyukyu-eligibility-sim.service"]:
        state = show(box, unit, "LoadState", "ActiveState", "UnitFileState")
        assert state == {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "disabled"}, (unit, state)


def test_nothing_secret_is_readable_by_others_after_install(box):
    # Everything the packages installed: no secret among them, and nothing writable by others.
    files = box.sh("dpkg -L myna-kyukyu myna-kyukyu-drill").stdout.split()
    checked = 0
    for path in files:
        host = ROOT / path.lstrip("/")
        if host.is_symlink() or not host.is_file():
            continue
        mode = host.stat().st_mode
        assert not mode & stat.S_IWOTH and not mode & stat.S_IWGRP, f"{path} is writable by others"
        data = host.read_bytes()
        assert not any(p.search(data) for p in SECRET_PATTERNS), f"{path} looks like a secret"
        checked += 1
    assert checked > 10
    assert private_violations(box, SECRET_TREES) == []
    # And postinst generated no key: the state folders are empty but for the TLS folders.
    assert box.sh("find /var/lib/kyukyu-gateway /var/lib/kyukyu-hospital /etc/credstore.encrypted -type f").stdout == ""


def test_gateway_refuses_without_its_credential(box):
    # The test's configuration: ports in 21500-21599, onshi through the drill's network simulator.
    gateway_config = {
        "http": {"host": "127.0.0.1", "port": GATEWAY_PORT},
        "onshi": {"url": f"https://127.0.0.1:{ONSHI_LINK_PORT}", "tls-directory": "/var/lib/kyukyu-gateway/terminal-tls"},
        "handoff": {"tls-directory": "/var/lib/kyukyu-gateway/hospital-tls"},
    }
    (ROOT / "etc/kyukyu/gateway.json").write_text(json.dumps(gateway_config, indent=2) + "\n")
    # The terminal's certificate for onshi, from the drill's stub (docs/operations.md, "Drills").
    box.sh("runuser -u kyukyu-drill -- kyukyu-eligibility-sim issue-terminal-cert --device ambulance-01 "
           "--out /var/lib/kyukyu-drill/terminal-tls --tls-dir /var/lib/kyukyu-drill/eligibility-tls >/dev/null && "
           "install -o kyukyu -g kyukyu -m 0600 /var/lib/kyukyu-drill/terminal-tls/* /var/lib/kyukyu-gateway/terminal-tls/")

    # 1. No credential file at all: systemd itself refuses to start anything of the unit (243: CREDENTIALS).
    box.sh("systemctl start kyukyu-gateway.service", check=False, timeout=120)
    state = show(box, "kyukyu-gateway.service", "ActiveState", "Result")
    assert state["ActiveState"] != "active" and state["Result"] == "exit-code", state
    assert "status=243/CREDENTIALS" in journal(box, "kyukyu-gateway.service")
    box.sh("systemctl stop kyukyu-gateway.service; systemctl reset-failed kyukyu-gateway.service", check=False)

    # 2. A credentials folder without kyukyu-device-keyring (a credential deployed under another name): the gateway
    #    itself refuses, names the credential, and writes no plaintext key file.
    # (/run is the container's own tmpfs: written from inside.)
    box.sh("mkdir -p /run/systemd/system/kyukyu-gateway.service.d && printf '[Service]\\nLoadCredentialEncrypted=\\n"
           "SetCredential=kyukyu-device-key:not-the-keyring\\nRestart=no\\n' "
           "> /run/systemd/system/kyukyu-gateway.service.d/test-wrong-name.conf && systemctl daemon-reload")
    box.sh("systemctl start kyukyu-gateway.service", check=False, timeout=120)
    state = show(box, "kyukyu-gateway.service", "ActiveState", "Result")
    assert state["ActiveState"] == "failed" and state["Result"] == "exit-code", state
    refusal = own_log(box, "kyukyu-gateway.service", "kyukyu-gateway")
    assert "kyukyu-device-keyring" in refusal, refusal
    assert not (ROOT / "var/lib/kyukyu-gateway/device-keyring.json").exists()
    box.sh("rm -r /run/systemd/system/kyukyu-gateway.service.d")
    box.sh("systemctl daemon-reload; systemctl reset-failed kyukyu-gateway.service")


def own_log(box, unit, identifier):
    """What the program itself wrote to the journal (not systemd's lines about the unit)."""
    return box.sh(f"journalctl --no-pager -o cat -u {unit} -t {identifier} | tail -n 40", check=False).stdout


def test_credential_made_with_systemd_creds(box):
    box.sh("kyukyu-new-keyring")  # as docs/operations.md says
    # It never replaces a keyring (the vault's data would be lost with it).
    assert box.sh("kyukyu-new-keyring", check=False).returncode != 0
    mode, user, _, kind = stat_of(box, "/etc/credstore.encrypted/kyukyu-device-keyring")
    assert kind == "regular file" and user == "root" and not mode & 0o077, (mode, user, kind)
    # Encrypted: the keyring's format name is not in the file.
    assert b"kyukyu-device-keyring/1" not in (ROOT / "etc/credstore.encrypted/kyukyu-device-keyring").read_bytes()


def test_bad_configuration_stops_the_start_with_every_problem_named(box):
    """ExecStartPre=kyukyu-gateway check-config: a misspelt key in /etc/kyukyu/gateway.json stops the start (78:
    EX_CONFIG) and the journal names it."""
    config = ROOT / "etc/kyukyu/gateway.json"
    good = config.read_text()
    broken = json.loads(good)
    broken["htpp"] = {"port": GATEWAY_PORT}
    config.write_text(json.dumps(broken))
    try:
        box.sh("systemctl start kyukyu-gateway.service", check=False, timeout=120)
        state = show(box, "kyukyu-gateway.service", "ActiveState", "Result")
        assert state["ActiveState"] != "active" and state["Result"] == "exit-code", state
        assert "status=78/CONFIG" in journal(box, "kyukyu-gateway.service")
        assert "htpp" in own_log(box, "kyukyu-gateway.service", "kyukyu-gateway")
    finally:
        config.write_text(good)
        box.sh("systemctl stop kyukyu-gateway.service; systemctl reset-failed kyukyu-gateway.service", check=False)


def test_gateway_starts_signals_ready_and_watchdog(box):
    started = time.monotonic()
    state = start_and_wait(box, "kyukyu-gateway.service")
    log(f"kyukyu-gateway.service active (READY=1) {time.monotonic() - started:.1f} s after systemctl start")
    status, body = http_get(f"http://127.0.0.1:{GATEWAY_PORT}/health/ready")
    assert status == 200 and '"ready"' in body, body
    # The tablet's files come from the resource bundle next to the executable (the build folder is not in this tree).
    status, body = http_get(f"http://127.0.0.1:{GATEWAY_PORT}/")
    assert status == 200 and "<html" in body.lower()
    # The keyring came from the credential: no key file in the state folder.
    assert not (ROOT / "var/lib/kyukyu-gateway/device-keyring.json").exists()
    assert (ROOT / "var/lib/kyukyu-gateway/vault.sqlite").exists()
    # pcscd was socket-activated by the gateway's connection (nothing else in the box uses it yet).
    assert wait_for(lambda: show(box, "pcscd.service", "ActiveState")["ActiveState"] == "active", 30, "pcscd activated")
    assert "smart-card service unreachable" not in journal(box, "kyukyu-gateway.service")
    # The metrics the alerts use (the gauges sampled at every scrape are there from the start).
    status, metrics = http_get(f"http://127.0.0.1:{GATEWAY_PORT}/metrics")
    for name in ["kyukyu_vault_oldest_incident_age_seconds", "kyukyu_outbox_depth", "kyukyu_onshi_breaker_state"]:
        assert re.search(rf"^{name}(\{{[^}}]*\}})? ", metrics, re.M), f"{name} not in /metrics:\n{metrics[:2000]}"


def test_receiver_starts_signals_ready(box):
    (ROOT / "etc/kyukyu/hospital.json").write_text(json.dumps(
        {"http": {"host": "127.0.0.1", "port": RECEIVER_PORT}, "hospital": {"code": HOSPITAL_CODE}}, indent=2) + "\n")
    box.sh(f"runuser -u kyukyu-hospital -- kyukyu-hospital ca init --state-dir /var/lib/kyukyu-hospital "
           f"--hospital {HOSPITAL_CODE} >/dev/null")
    # The documents' keyring comes as a credential, as the gateway's does: without it, the start is refused and no
    # key file is made in the state folder.
    refused = box.sh("systemctl start kyukyu-hospital.service", check=False)
    assert refused.returncode != 0, "the receiver started without its keyring credential"
    assert not (ROOT / "var/lib/kyukyu-hospital/device-keyring.json").exists()
    box.sh("systemctl reset-failed kyukyu-hospital.service", check=False)
    box.sh("kyukyu-new-keyring /etc/credstore.encrypted/kyukyu-hospital-keyring")
    started = time.monotonic()
    start_and_wait(box, "kyukyu-hospital.service")
    assert not (ROOT / "var/lib/kyukyu-hospital/device-keyring.json").exists(), "a key file next to the documents"
    log(f"kyukyu-hospital.service active (READY=1) {time.monotonic() - started:.1f} s after systemctl start")
    status, body = http_get(f"https://127.0.0.1:{RECEIVER_PORT}/health/live",
                            cafile=str(ROOT / "var/lib/kyukyu-hospital/pki/ca.cert.pem"))
    assert status == 200 and '"live"' in body, body
    status, metrics = http_get(f"https://127.0.0.1:{RECEIVER_PORT}/metrics",
                               cafile=str(ROOT / "var/lib/kyukyu-hospital/pki/ca.cert.pem"))
    assert re.search(r"^kyukyu_receiver_pending_acknowledgements ", metrics, re.M), metrics[:2000]


def test_watchdog_keeps_both_alive(box):
    """WatchdogSec=30s: a service that stops sending WATCHDOG=1 is killed after 30 s. 40 s on, both still run the same
    process, and systemd recorded a watchdog ping after READY=1."""
    units = ["kyukyu-gateway.service", "kyukyu-hospital.service"]
    before = {u: show(box, u, "MainPID", "ExecMainStartTimestampMonotonic", "NRestarts") for u in units}
    time.sleep(40)
    for unit in units:
        after = show(box, unit, "ActiveState", "MainPID", "NRestarts", "WatchdogTimestampMonotonic",
                     "ActiveEnterTimestampMonotonic", "WatchdogUSec")
        assert after["ActiveState"] == "active", (unit, after, journal(box, unit))
        # Not restarted in these 40 s (the receiver's count already holds the start refused without its credential).
        assert after["MainPID"] == before[unit]["MainPID"] and after["NRestarts"] == before[unit]["NRestarts"], (
            unit, before[unit], after)
        assert after["WatchdogUSec"] == "30s", after
        assert int(after["WatchdogTimestampMonotonic"]) > int(after["ActiveEnterTimestampMonotonic"]), (
            f"{unit}: no WATCHDOG=1 after READY=1: {after}")


def test_reload_keeps_the_gateway_running(box):
    """`systemctl reload` (SIGHUP: renewed certificates) neither stops nor restarts the gateway."""
    before = show(box, "kyukyu-gateway.service", "MainPID")["MainPID"]
    box.sh("systemctl reload kyukyu-gateway.service", timeout=60)
    time.sleep(3)
    after = show(box, "kyukyu-gateway.service", "ActiveState", "MainPID", "NRestarts")
    assert after == {"ActiveState": "active", "MainPID": before, "NRestarts": "0"}, (before, after)
    assert "certificate reloaded" in own_log(box, "kyukyu-gateway.service", "kyukyu-gateway")  # SIGHUP reached it
    assert http_get(f"http://127.0.0.1:{GATEWAY_PORT}/health/ready")[0] == 200


def test_drill_units_start_and_connect(box):
    (ROOT / "etc/kyukyu/eligibility-sim.env").write_text(
        f"KYUKYU_SIM_ONSHI_PORT={ONSHI_PORT}\nKYUKYU_SIM_ADMIN_PORT={STUB_ADMIN_PORT}\n")
    (ROOT / f"etc/kyukyu/card-sim-{VPCD_PORT}.env").write_text(
        f"KYUKYU_CARD_SIM_ARGS=--control-port {CARD_CONTROL_PORT} --holder 1\n")
    (ROOT / "etc/kyukyu/netsim-t1.env").write_text(
        f"KYUKYU_NETSIM_ARGS=--link onshi,{ONSHI_LINK_PORT},127.0.0.1:{ONSHI_PORT} --control-port {NETSIM_CONTROL_PORT}\n")
    # pcscd's vpcd reader on the test's port (and not vsmartcard-vpcd's default 35963, which the host may use).
    box.sh(f"rm -f /etc/reader.conf.d/vpcd; printf 'FRIENDLYNAME \"Kyukyu Install Test\"\\nDEVICENAME /dev/null:{VPCD_PORT}\\n"
           f"LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\\nCHANNELID {VPCD_PORT}\\n' > /etc/reader.conf.d/kyukyu-test; "
           "systemctl restart pcscd.service")
    for unit in ["kyukyu-eligibility-sim.service", f"kyukyu-card-sim@{VPCD_PORT}.service", "kyukyu-netsim@t1.service"]:
        start_and_wait(box, unit, seconds=60)
    wait_for(lambda: "ok" in http_get(f"http://127.0.0.1:{STUB_ADMIN_PORT}/admin/health")[1], 120, "the stub's health")
    wait_for(lambda: http_get(f"http://127.0.0.1:{NETSIM_CONTROL_PORT}/health")[0] == 200, 60, "the network simulator")
    assert show(box, f"kyukyu-card-sim@{VPCD_PORT}.service", "ActiveState")["ActiveState"] == "active"


def test_network_simulator_forwards_to_the_stub(box):
    """kyukyu-netsim@t1 (a dynamic user, no capabilities) proxies its onshi link to the stub: the TLS server certificate
    seen through the link is the stub's own."""
    direct = ssl.get_server_certificate(("127.0.0.1", ONSHI_PORT), timeout=10)
    through = wait_for(lambda: ssl.get_server_certificate(("127.0.0.1", ONSHI_LINK_PORT), timeout=10), 30,
                       "a TLS handshake through the network simulator")
    assert through == direct


def test_card_simulator_reaches_pcscd_from_its_sandbox(box):
    """The card simulator (user kyukyu-drill, no capabilities) connects to pcscd's vpcd port, and the CLI as the gateway's
    user, in the gateway unit's sandbox, sees the card through pcscd's socket."""
    wait_for(lambda: '"connected":true' in http_get(f"http://127.0.0.1:{CARD_CONTROL_PORT}/card")[1].replace(" ", ""),
             60, "the card simulator connected to pcscd's vpcd reader")
    out = box.sh("systemd-run --quiet --wait --pipe --collect -p User=kyukyu -p PrivateDevices=yes -p ProtectSystem=strict "
                 "-p PrivateUsers=yes -p MemoryDenyWriteExecute=yes -p SystemCallFilter=@system-service "
                 "-p RestrictAddressFamilies='AF_UNIX AF_INET AF_INET6' kyukyu card status --json --wait 20",
                 check=False, timeout=120)
    assert out.returncode == 0 and "Kyukyu Install Test" in out.stdout, out.stdout + out.stderr


def test_state_stays_private_while_running(box):
    assert private_violations(box, SECRET_TREES) == []
    for path, owner in PRIVATE_DIRECTORIES.items():
        mode, user, _, _ = stat_of(box, path)
        assert mode == 0o700 and user == owner, (path, oct(mode), user)


def test_upgrade_restarts_running_units(box):
    main, drill = debs()
    before = show(box, "kyukyu-gateway.service", "MainPID")["MainPID"]
    box.sh(f"DEBIAN_FRONTEND=noninteractive dpkg -i /root/debs/{main.name} /root/debs/{drill.name} >/dev/null", timeout=300)
    state = wait_for(lambda: (s := show(box, "kyukyu-gateway.service", "ActiveState", "MainPID"))["ActiveState"] == "active"
                     and s["MainPID"] not in ("0", before) and s, 120, "the gateway restarted by the upgrade")
    assert state["MainPID"] != before
    # The conffile edited by the operator (this test) was kept.
    assert str(GATEWAY_PORT) in (ROOT / "etc/kyukyu/gateway.json").read_text()
    assert show(box, "kyukyu-hospital.service", "ActiveState")["ActiveState"] == "active"


def test_remove_keeps_state_and_purge_deletes_it(box):
    box.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q myna-kyukyu-drill myna-kyukyu >/dev/null", timeout=300)
    for unit in ["kyukyu-gateway.service", "kyukyu-hospital.service", "kyukyu-eligibility-sim.service"]:
        assert show(box, unit, "ActiveState")["ActiveState"] in ("inactive", "failed"), unit
    assert (ROOT / "var/lib/kyukyu-gateway/vault.sqlite").exists()
    assert (ROOT / "etc/credstore.encrypted/kyukyu-device-keyring").exists()
    assert (ROOT / "etc/credstore.encrypted/kyukyu-hospital-keyring").exists()
    assert (ROOT / "var/lib/kyukyu-hospital/pki/ca.key.pem").exists()
    box.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q myna-kyukyu-drill myna-kyukyu >/dev/null", timeout=300)
    for gone in ["var/lib/kyukyu-gateway", "var/log/kyukyu-gateway", "var/lib/kyukyu-hospital", "var/lib/kyukyu-drill",
                 "etc/credstore.encrypted/kyukyu-device-keyring", "etc/credstore.encrypted/kyukyu-hospital-keyring",
                 "usr/lib/myna-kyukyu"]:
        assert not (ROOT / gone).exists(), f"/{gone} is still there after purge"
