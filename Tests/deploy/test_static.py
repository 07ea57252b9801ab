"""Static checks of what deploy/ ships (docs/operations.md): the systemd units with `systemd-analyze verify` (no output
at all: a warning is a failure) and `systemd-analyze security --offline=true` (overall exposure at most 2.0), the
settings the gateway's unit must keep, and the Prometheus files with promtool (check config, check rules, test
rules). Runs in seconds; needs systemd (systemd-analyze), pcscd (its socket unit) and prometheus (promtool) installed,
as scripts/install-deps.sh does.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS_DIR = REPO / "deploy" / "systemd"
PROMETHEUS = REPO / "deploy" / "prometheus"
VERIFY_ROOT = REPO / "state" / "deploy" / "verify-root"
MAX_EXPOSURE = 2.0
# Each unit file, and the unit name checked (a template with an instance).
UNITS = {
    "kyukyu-gateway.service": "kyukyu-gateway.service",
    "kyukyu-hospital.service": "kyukyu-hospital.service",
    "kyukyu-eligibility-sim.service": "kyukyu-eligibility-sim.service",
    "kyukyu-card-sim@.service": "kyukyu-card-sim@35963.service",
    "kyukyu-netsim@.service": "kyukyu-netsim@a1.service",
}
EXECUTABLES = ["kyukyu-gateway", "kyukyu-hospital", "kyukyu-card-sim", "kyukyu-eligibility-sim", "kyukyu-netsim"]


def run(command, timeout=120):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def make_root(units):
    """A root for `--root=` with systemd's own units (this host's /usr/lib/systemd, pcscd.socket among them), the given
    unit files in /lib/systemd/system and stand-ins for the executables (verify checks that ExecStart= exists)."""
    shutil.rmtree(VERIFY_ROOT, ignore_errors=True)
    (VERIFY_ROOT / "usr/lib").mkdir(parents=True)
    (VERIFY_ROOT / "lib").symlink_to("usr/lib")
    (VERIFY_ROOT / "usr/bin").mkdir()
    (VERIFY_ROOT / "bin").symlink_to("usr/bin")
    for folder in ["tmp", "etc", "var/lib", "var/log", "run"]:
        (VERIFY_ROOT / folder).mkdir(parents=True, exist_ok=True)
    shutil.copytree("/usr/lib/systemd", VERIFY_ROOT / "usr/lib/systemd", symlinks=True)
    bin_dir = VERIFY_ROOT / "usr/lib/myna-kyukyu/bin"
    bin_dir.mkdir(parents=True)
    for name in EXECUTABLES:
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    (VERIFY_ROOT / "usr/bin/sh").write_text("#!/bin/sh\nexit 0\n")  # ExecReload=/bin/sh -c 'kill -HUP ...'
    (VERIFY_ROOT / "usr/bin/sh").chmod(0o755)
    for name, text in units.items():
        (VERIFY_ROOT / "usr/lib/systemd/system" / name).write_text(text)


def verify(unit):
    result = run(["systemd-analyze", "verify", "--man=no", f"--root={VERIFY_ROOT}", f"/lib/systemd/system/{unit}"])
    return result.returncode, (result.stdout + result.stderr).strip()


def exposure(unit):
    result = run(["systemd-analyze", "security", "--offline=true", f"--root={VERIFY_ROOT}", "--no-pager", unit])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert result.returncode == 0 and match, f"systemd-analyze security {unit}:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1)), result.stdout


@pytest.fixture(scope="module")
def shipped_root():
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing"
    assert Path("/usr/lib/systemd/system/pcscd.socket").exists(), "pcscd is not installed (its socket unit is needed)"
    make_root({name: (UNITS_DIR / name).read_text() for name in UNITS})
    yield


@pytest.mark.parametrize("unit", list(UNITS.values()))
def test_unit_verifies_cleanly(shipped_root, unit):
    rc, output = verify(unit)
    assert rc == 0 and output == "", f"systemd-analyze verify {unit}:\n{output}"


@pytest.mark.parametrize("unit", list(UNITS.values()))
def test_unit_exposure_at_most_2(shipped_root, unit):
    level, report = exposure(unit)
    print(f"{unit}: overall exposure {level}")
    assert level <= MAX_EXPOSURE, f"{unit}: exposure {level} > {MAX_EXPOSURE}\n{report}"


def test_every_unit_file_is_checked():
    assert sorted(p.name for p in UNITS_DIR.glob("*.service")) == sorted(UNITS)


def test_the_checks_can_fail(tmp_path):
    """A unit with an unknown key and a missing executable fails verify, and an unhardened one scores above 2.0."""
    gateway = (UNITS_DIR / "kyukyu-gateway.service").read_text()
    broken = gateway.replace("UMask=0077", "UMask=0077\nProtectSytem=strict").replace(
        "/usr/lib/myna-kyukyu/bin/kyukyu-gateway", "/usr/lib/myna-kyukyu/bin/kyukyu-gateway-missing")
    bare = "[Unit]\nDescription=bare\n\n[Service]\nExecStart=/usr/lib/myna-kyukyu/bin/kyukyu-gateway serve\n"
    try:
        make_root({"broken.service": broken, "bare.service": bare})
        rc, output = verify("broken.service")
        assert "Unknown key" in output and "ProtectSytem" in output, output
        assert rc != 0 and "kyukyu-gateway-missing" in output, output
        level, _ = exposure("bare.service")
        assert level > MAX_EXPOSURE
    finally:
        shutil.rmtree(VERIFY_ROOT, ignore_errors=True)


def directives(unit_text):
    """(key, value) pairs of a unit file, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", unit_text)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        pairs.append((key.strip(), value.strip()))
    return pairs


def test_gateway_unit_keeps_what_the_gateway_needs():
    pairs = directives((UNITS_DIR / "kyukyu-gateway.service").read_text())
    values = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    # The keyring only as the credential, and a missing one is a refusal (docs/vault.md).
    assert values["LoadCredentialEncrypted"] == [
        "kyukyu-device-keyring:/etc/credstore.encrypted/kyukyu-device-keyring"]
    assert "KYUKYU_GATEWAY_VAULT_KEY_SOURCE=credential" in values["Environment"]
    assert "KYUKYU_GATEWAY_STATE_DIRECTORY=/var/lib/kyukyu-gateway" in values["Environment"]
    assert values["StateDirectory"] == ["kyukyu-gateway"] and values["StateDirectoryMode"] == ["0700"]
    # sd_notify: READY=1, WATCHDOG=1 from the main process.
    assert values["Type"] == ["notify"] and values["NotifyAccess"] == ["main"] and values["WatchdogSec"] == ["30s"]
    assert values["Restart"] == ["on-failure"]
    assert values["ExecStartPre"] == ["/usr/lib/myna-kyukyu/bin/kyukyu-gateway check-config"]
    assert values["ExecReload"] == ["/bin/sh -c 'kill -HUP $$MAINPID'"]  # certificate renewal without a restart
    # pcscd's socket: wanted, ordered, and not hidden by any path setting.
    assert "pcscd.socket" in " ".join(values["Wants"]) and "pcscd.socket" in " ".join(values["After"])
    for key in ["InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "RootDirectory", "RootImage", "PrivateNetwork"]:
        assert key not in values, f"{key} could hide /run/pcscd/pcscd.comm"
    assert values["User"] == ["kyukyu"] and values["UMask"] == ["0077"]
    assert values["CapabilityBoundingSet"] == [""] and values["MemoryDenyWriteExecute"] == ["yes"]
    assert values["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]


def test_hospital_unit_takes_its_keyring_as_a_credential():
    """kyukyu-hospital's documents' keyring comes only from the credential kyukyu-device-keyring (keys.source =
    credential), loaded encrypted, as the gateway's vault keyring does (docs/operations.md, "The receiver's keys")."""
    pairs = directives((UNITS_DIR / "kyukyu-hospital.service").read_text())
    credentials = [value for key, value in pairs if key == "LoadCredentialEncrypted"]
    assert credentials == ["kyukyu-device-keyring:/etc/credstore.encrypted/kyukyu-hospital-keyring"], credentials
    assert not [key for key, _ in pairs if key in ("LoadCredential", "SetCredential", "ImportCredential")]
    assert ("Environment", "KYUKYU_HOSPITAL_KEYS_SOURCE=credential") in pairs


# MARK: - Prometheus


def promtool(*arguments):
    assert shutil.which("promtool"), "promtool is missing (apt: prometheus; scripts/install-deps.sh)"
    result = run(["promtool", *arguments], timeout=300)
    return result.returncode, result.stdout + result.stderr


def test_prometheus_config():
    rc, output = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert rc == 0 and "SUCCESS" in output, output
    # The only warnings allowed: the target lists that the operator's inventory writes on the server.
    for line in output.splitlines():
        if "WARNING" in line:
            assert "for file_sd in scrape job" in line, line


def test_alerting_rules():
    rc, output = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert rc == 0 and "SUCCESS" in output, output


def test_alerts_fire_and_stay_silent():
    rc, output = promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))
    assert rc == 0 and "SUCCESS" in output, output


def test_every_alert_is_tested_and_uses_known_metrics():
    rules = (PROMETHEUS / "alerts.yml").read_text()
    tests = (PROMETHEUS / "alerts.test.yml").read_text()
    alerts = re.findall(r"^\s*- alert: (\w+)", rules, re.M)
    assert len(alerts) >= 7
    for alert in alerts:
        assert f"alertname: {alert}" in tests, f"{alert} has no promtool test"
    known = {
        "kyukyu_fetch_duration_seconds_count", "kyukyu_fetch_deadline_misses_total", "kyukyu_onshi_breaker_state",
        "kyukyu_card_reads_total", "kyukyu_pin_guard_refusals_total", "kyukyu_outbox_depth",
        "kyukyu_handoff_delivery_seconds", "kyukyu_vault_incidents", "kyukyu_vault_bytes",
        "kyukyu_vault_oldest_incident_age_seconds", "kyukyu_certificate_expiry_timestamp_seconds",
        "kyukyu_receiver_documents_total", "kyukyu_receiver_ingest_duration_seconds",
        "kyukyu_receiver_pending_acknowledgements",
    }
    used = set(re.findall(r"\b(kyukyu_[a-z_]+)\b", rules))
    assert used <= known, f"metrics the gateway and receiver do not export: {used - known}"
