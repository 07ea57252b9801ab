#!/usr/bin/env bash
# Installs the system and Python packages the gateway, its simulators and its tests need, when they are missing.
# Idempotent and quick (and silent) when everything is there. Run as root (CI and the dev machines are root).
#
# The browser tests drive Debian's chromium through Debian's chromedriver (/usr/bin/chromedriver) with selenium from
# PyPI; the API fuzz uses schemathesis from PyPI. Nothing here downloads a browser build: selenium is pointed at
# /usr/bin/chromedriver and run with SE_OFFLINE=true, so selenium-manager never fetches anything (see
# scripts/browser-smoke.py).
set -euo pipefail
packages=(
  libpcsclite-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev pcscd vsmartcard-vpcd opensc pcsc-tools sqlite3
  util-linux curl python3 python3-pip python3-venv
  # The tablet UI in a real headless browser (and Japanese glyphs in its screenshots).
  chromium chromium-driver fonts-noto-cjk
  # The closed-loop peer of kyukyu-load (scripts/bench-load.py).
  wrk
  # The Debian packages and their install test (scripts/package.sh, Tests/deploy): dpkg-shlibdeps, strip, the Swift
  # runtime's RUNPATH, a fresh Debian tree booted by systemd-nspawn.
  dpkg-dev binutils patchelf debootstrap systemd-container
)
# Pinned; each exists on PyPI (checked with `pip index versions`); pytest runs the browser tests (Tests/browser).
# The API contract's own pins (Tests/api-contract/requirements.txt: schemathesis, the OpenAPI validator, PyYAML)
# are added to these.
python_packages=(selenium==4.51.0 schemathesis==4.32.5 pytest==9.0.3)
requirements="$(dirname "$0")/../Tests/api-contract/requirements.txt"
if [ -f "$requirements" ]; then
  while IFS= read -r line; do
    line="${line%%#*}"; line="${line//[[:space:]]/}"
    case "$line" in *==*) ;; *) continue ;; esac
    known=0
    for spec in "${python_packages[@]}"; do [ "${spec%%==*}" = "${line%%==*}" ] && known=1; done
    [ "$known" = 1 ] || python_packages+=("$line")
  done <"$requirements"
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # python3/python3-pip/python3-venv are only needed when no python3 with pip and venv is on the PATH (pyenv…).
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 \
    && python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    filtered=()
    for p in "${missing[@]}"; do
      [ "$p" = python3 ] || [ "$p" = python3-pip ] || [ "$p" = python3-venv ] || filtered+=("$p")
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian packages whose postinst would start (and enable) a server the tests do not want running: a policy-rc.d (only
# if the machine has none; removed after) stops the start, and the service is disabled so that it does not start at
# the next boot either.
# - promtool (Tests/deploy checks deploy/prometheus) comes with Debian's prometheus package; only promtool is used.
# - PostgreSQL (the region's hub, issue 12): the tests start their own private server on a new cluster
#   (KyukyuTestbed's PostgresServer: a Unix socket in its folder and a port on 127.0.0.1) and stop it after, so no
#   "main" cluster is made and no system server runs.
install_without_service() {
  local package="$1" service="$2"
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" && return 0
  echo "installing: $package (the server is not started or enabled)"
  local policy_made=0 status=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# scripts/install-deps.sh: no service starts while %s is installed\nexit 101\n' "$package" \
      | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 0755 /usr/sbin/policy-rc.d
    policy_made=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
    || status=$?
  [ "$policy_made" = 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
  [ "$status" = 0 ] || exit "$status"
  $SUDO env DPKG_MAINTSCRIPT_PACKAGE="$package" DPKG_MAINTSCRIPT_NAME=postinst \
    deb-systemd-helper disable "$service" >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then $SUDO systemctl stop "$service" 2>/dev/null || true; fi
}
install_without_service prometheus prometheus.service
if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed"; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  printf '# scripts/install-deps.sh: the tests make their own clusters\ncreate_main_cluster = false\n' \
    | $SUDO tee /etc/postgresql-common/createcluster.d/kyukyu.conf >/dev/null
fi
install_without_service postgresql postgresql.service
# - HAProxy: the TCP load balancer in front of a region's hub instances in the tests and `make run-region`; the tests
#   start their own, on loopback.
install_without_service haproxy haproxy.service

# Python packages: only those whose installed version differs from the pin.
python_missing=()
for spec in "${python_packages[@]}"; do
  name="${spec%%==*}" version="${spec##*==}"
  installed="$(python3 -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)"
  [ "$installed" = "$version" ] || python_missing+=("$spec")
done
if [ ${#python_missing[@]} -gt 0 ]; then
  echo "installing (pip): ${python_missing[*]}"
  # Debian's own python3 refuses system-wide pip installs (PEP 668) unless told; a pyenv python does not care.
  python3 -m pip install -q --disable-pip-version-check "${python_missing[@]}" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${python_missing[@]}"
fi

# The FHIR document's independent check (Tests/fhir/validate.py) needs fhir.resources 6.4.0, the last release with
# FHIR R4 models, and it needs pydantic 1 (<2), while the API contract's validators need pydantic 2: so these live
# in their own venv, state/fhir-venv (KYUKYU_FHIR_PYTHON names another python), not in the system's python.
# matplotlib draws the drill's and the load tests' plots (scripts/drill-report.py, scripts/load-report.py) there too.
fhir_packages=(fhir.resources==6.4.0 pydantic==1.10.27 fhirpathpy==2.2.4 matplotlib==3.11.2)
fhir_venv="$(cd "$(dirname "$0")/.." && pwd)/state/fhir-venv"
[ -x "$fhir_venv/bin/python3" ] || python3 -m venv "$fhir_venv"
fhir_missing=()
for spec in "${fhir_packages[@]}"; do
  name="${spec%%==*}" version="${spec##*==}"
  installed="$("$fhir_venv/bin/python3" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)"
  [ "$installed" = "$version" ] || fhir_missing+=("$spec")
done
if [ ${#fhir_missing[@]} -gt 0 ]; then
  echo "installing (pip, $fhir_venv): ${fhir_missing[*]}"
  "$fhir_venv/bin/python3" -m pip install -q --disable-pip-version-check "${fhir_missing[@]}"
fi

# The private pcscd of the tests and the demo mounts a tmpfs here inside its own namespace.
mkdir -p /run/pcscd
