#!/usr/bin/env bash
# Installs the system packages the gateway, its simulators and its tests need, when they are missing.
# Idempotent and quick when everything is there. Run as root (CI and the dev machines are root).
set -euo pipefail
packages=(libpcsclite-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev pcscd vsmartcard-vpcd opensc pcsc-tools sqlite3 util-linux curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The private pcscd of the tests and the demo mounts a tmpfs here inside its own namespace.
mkdir -p /run/pcscd
