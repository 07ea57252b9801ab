#!/usr/bin/env bash
# How soon a script reading `kyukyu fetch --json` through a pipe gets its answer, and when the process ends, with
# every onshi category stalled and a 1 s deadline (issue 7, item 5). Runs the stub as a process on loopback.
# Usage: scripts/bench-piped-fetch.sh [BIN_DIR] [RUNS]; BIN_DIR defaults to .build/release.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release}"
RUNS="${2:-5}"
S="$(mktemp -d)"
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$S"' EXIT
echo '{"endpoints": {"*": {"failures": [{"kind": "stall"}]}}}' > "$S/faults.json"
"$BIN/kyukyu-eligibility-sim" issue-terminal-cert --device ambulance-01 --out "$S/terminal-tls" \
  --tls-dir "$S/eligibility-tls" >/dev/null 2>&1
"$BIN/kyukyu-eligibility-sim" serve --port 18543 --admin-port 18180 --pki-dir "$S/sim-pki" \
  --tls-dir "$S/eligibility-tls" --faults "$S/faults.json" > "$S/sim.log" 2>&1 &
sim=$!
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/18543) 2>/dev/null && break; sleep 0.05; done
# Synthetic holder 3, as the stub's own population describes it (no patient is written into this script).
show="$("$BIN/kyukyu-eligibility-sim" population show 3 2>/dev/null)"
name="$(sed -n 's/^  name: \([^ ]*\) .*/\1/p' <<<"$show")"
born="$(sed -n 's/.*born \([0-9]\{8\}\).*/\1/p' <<<"$show")"
address="$(sed -n 's/^  address: [0-9-]* \(.*\)$/\1/p' <<<"$show")"
lookup="{\"name\": \"$name\", \"birth\": \"${born:0:4}-${born:4:2}-${born:6:2}\", \"sex\": \"male\", \"address\": \"$address\"}"
for _ in $(seq "$RUNS"); do
  start=$(date +%s%N)
  echo "$lookup" | "$BIN/kyukyu" fetch --consent life-or-body-exception --crew BENCH-1 --lookup-stdin --json --deadline-ms 1000 \
    --onshi-url https://127.0.0.1:18543 --tls-dir "$S/terminal-tls" --device ambulance-01 2>/dev/null | {
    first=""; while IFS= read -r _; do [ -n "$first" ] || first=$(date +%s%N); done
    printf 'first line %5d ms' $(( (first - start) / 1000000 )); }
  printf ', exit %5d ms\n' $(( ($(date +%s%N) - start) / 1000000 ))
done
