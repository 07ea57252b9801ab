#!/usr/bin/env bash
# `make run-region`: a small region on this machine (synthetic data only). Starts a region's hub with
# `kyukyu-drill hub` (a private PostgreSQL, 3 `kyukyu-hospital serve` instances on it and HAProxy in front; three
# fictitious hospitals, テスト地域第1〜3病院 (架空), 9999999991-9999999993, each with a staff account), then two ambulances
# (scripts/stack.sh each: a private pcscd with the card simulator, the eligibility stub and a gateway sending to the
# hub). Prints the two tablets with their crew's sign-in, and the three hospitals' boards (one page, each staff member
# sees their own hospital) with their staff's sign-in and current TOTP codes. q or Ctrl-C stops everything.
#
# Without a terminal, or with KYUKYU_REGION_NONINTERACTIVE=1: starts, checks every part answers, prints, stops.
# KYUKYU_REGION_DIR (default state/region) holds the hub's and the ambulances' state and logs. Ports: the hub's
# balancer on 20650 (instances 20651-20653, PostgreSQL 20654), the ambulances' stacks from 22000 and 22050.
set -euo pipefail
cd "$(dirname "$0")/.."
export KYUKYU_BIN_DIR="${KYUKYU_BIN_DIR:-.build/debug}"
DIR="${KYUKYU_REGION_DIR:-state/region}"
HUB_PORT="${KYUKYU_REGION_HUB_PORT:-20650}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

interactive=1
if [ "${KYUKYU_REGION_NONINTERACTIVE:-0}" = 1 ] || [ ! -t 0 ] || [ ! -t 1 ]; then interactive=0; fi

hub_pid=""
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  [ "$interactive" = 1 ] && stty sane 2>/dev/null || true
  echo
  echo "Stopping everything…"
  for n in 2 1; do scripts/stack.sh stop "$DIR/ambulance-$n" >/dev/null 2>&1 || true; done
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
    kill -TERM "$hub_pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$hub_pid" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

rm -f "$DIR/hub/region.json"
setsid "$KYUKYU_BIN_DIR/kyukyu-drill" hub --dir "$DIR/hub" --port "$HUB_PORT" --instances 3 --hospitals 3 \
  --device ambulance-01 --device ambulance-02 </dev/null >"$DIR/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 1200); do
  [ -s "$DIR/hub/region.json" ] && break
  kill -0 "$hub_pid" 2>/dev/null || { echo "the hub did not start; $DIR/hub.log:"; tail -n 30 "$DIR/hub.log"; exit 1; }
  sleep 0.1
done
[ -s "$DIR/hub/region.json" ] || { echo "the hub did not start within 120 s; see $DIR/hub.log"; exit 1; }

for n in 1 2; do
  KYUKYU_STACK_HUB="$DIR/hub" KYUKYU_STACK_TERMINAL_ID="ambulance-0$n" KYUKYU_STACK_RECEIVER=0 \
    KYUKYU_STACK_PORT_BASE="$((22000 + (n - 1) * 50))" KYUKYU_STACK_HOLDER="$((n + 2))" \
    scripts/stack.sh start "$DIR/ambulance-$n"
done

bold=""; plain=""
if [ "$interactive" = 1 ]; then bold="$(tput bold 2>/dev/null || true)"; plain="$(tput sgr0 2>/dev/null || true)"; fi

banner() {
  echo
  echo "== Myna Kyukyu: a small region (synthetic data only) =="
  for n in 1 2; do
    # shellcheck disable=SC1090
    ( source "$DIR/ambulance-$n/stack.env"
      echo
      echo "  Ambulance $n:  ${bold}$KYUKYU_STACK_GATEWAY_URL/${plain}   crew $KYUKYU_DEMO_CREW_ID, password $KYUKYU_DEMO_CREW_PASSWORD, PIN $KYUKYU_DEMO_CREW_PIN"
      echo "                TOTP $(python3 scripts/totp.py "$KYUKYU_DEMO_CREW_TOTP_SECRET")   (secret $KYUKYU_DEMO_CREW_TOTP_SECRET)" )
  done
  python3 - "$DIR/hub/region.json" "$bold" "$plain" <<'PY'
import json, subprocess, sys
region, bold, plain = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
print()
print(f"  Hub:          {region['url']}  (HAProxy in front of {len(region['instances'])} instances on PostgreSQL)")
print(f"  Boards:       {bold}{region['url']}/board/{plain}   (HTTPS with the region's CA: {region['ca']})")
names = {h["code"]: h["name"] for h in region["hospitals"]}
for staff in region["staff"]:
    code = subprocess.run(["python3", "scripts/totp.py", staff["totpSecret"]], capture_output=True, text=True).stdout.strip()
    print(f"    {names[staff['hospital']]} ({staff['hospital']}): staff {staff['id']}, password {staff['password']!r}, TOTP {code}")
PY
  echo
  echo "  Logs: $DIR/hub.log, $DIR/hub/instance-*.log, $DIR/ambulance-*/logs/"
}

banner
if [ "$interactive" = 0 ]; then
  for n in 1 2; do
    curl -fsS --max-time 5 "http://127.0.0.1:$((22000 + (n - 1) * 50 + 30))/health/ready" >/dev/null \
      || { echo "ambulance $n is not ready"; exit 1; }
  done
  curl -fsS --max-time 5 --cacert "$DIR/hub/state/pki/ca.cert.pem" "https://127.0.0.1:$HUB_PORT/health/live" >/dev/null \
    || { echo "the hub does not answer"; exit 1; }
  echo
  echo "Every part answers (non-interactive run); stopping."
  exit 0
fi
echo
echo "Press t for fresh TOTP codes, q to stop."
while true; do
  read -r -n 1 key || break
  case "$key" in
    q) break ;;
    t) banner ;;
  esac
done
