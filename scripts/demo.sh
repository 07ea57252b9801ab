#!/usr/bin/env bash
# `make run`: the whole product on this machine, for a demo or a training drill. Starts (scripts/stack.sh) a private
# pcscd with a virtual reader, the card simulator with a synthetic patient's My Number card on it, the eligibility
# stub (onshi over mutual TLS), the demo hospital's receiver (`kyukyu-hospital serve`, the ER board) with a demo staff
# account, and the gateway on embedded defaults sending to that hospital, with a demo crew account; prints the
# tablet's URL and the crew's sign-in (ID, password, TOTP secret and the current code, refreshed as it changes) and
# the PIN, beside them the board's URL and the staff's sign-in, and where the receiver's CA certificate is; then a menu
# swaps what is on the reader. q or Ctrl-C stops everything. Everything runs on loopback.
#
# Without a terminal (CI smoke), or with KYUKYU_DEMO_NONINTERACTIVE=1: starts, checks /health/ready, prints, stops.
# KYUKYU_DEMO_STATE_DIR (default state/demo) keeps the stack's state, logs and the demo crew between runs.
# The ports and other knobs are scripts/stack.sh's (KYUKYU_STACK_PORT_BASE, default 20600, …; the board is on +40).
# KYUKYU_STACK_RECEIVER=0 leaves the receiver out (the gateway's documents then wait in its outbox).
set -euo pipefail
cd "$(dirname "$0")/.."
export KYUKYU_BIN_DIR="${KYUKYU_BIN_DIR:-.build/debug}"
export KYUKYU_STACK_RECEIVER="${KYUKYU_STACK_RECEIVER:-1}"
STATE="${KYUKYU_DEMO_STATE_DIR:-state/demo}"
export KYUKYU_STACK_HOLDER="${KYUKYU_STACK_HOLDER:-${KYUKYU_DEMO_HOLDER:-3}}"

interactive=1
if [ "${KYUKYU_DEMO_NONINTERACTIVE:-0}" = 1 ] || [ ! -t 0 ] || [ ! -t 1 ]; then interactive=0; fi

stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  [ "$interactive" = 1 ] && stty sane 2>/dev/null || true
  echo
  echo "Stopping everything…"
  scripts/stack.sh stop "$STATE" || true
}
trap stop EXIT
trap 'exit 130' INT TERM

scripts/stack.sh start "$STATE"
# shellcheck disable=SC1091
source "$STATE/stack.env"

holder="$KYUKYU_DEMO_HOLDER"
bold=""; plain=""
if [ "$interactive" = 1 ]; then bold="$(tput bold 2>/dev/null || true)"; plain="$(tput sgr0 2>/dev/null || true)"; fi

# The current code of a TOTP secret ($1), with the seconds it has left; $2 says whose it is.
totp_line() {
  local code left
  read -r code left < <(python3 scripts/totp.py "$1" --remaining)
  printf '  TOTP code:    %s%s%s   (changes in %2d s)%s\n' "$bold" "$code" "$plain" "$left" "${2:+   $2}"
}

# The crew's code and, when the receiver runs, the staff's.
totp_lines() {
  if [ "$KYUKYU_STACK_GATEWAY" = 1 ]; then totp_line "$KYUKYU_DEMO_CREW_TOTP_SECRET" "crew $KYUKYU_DEMO_CREW_ID"; fi
  if [ "$KYUKYU_STACK_RECEIVER" = 1 ]; then totp_line "$KYUKYU_DEMO_STAFF_TOTP_SECRET" "staff $KYUKYU_DEMO_STAFF_ID"; fi
}

banner() {
  echo
  echo "== Myna Kyukyu field gateway: demo (synthetic data only) =="
  echo
  if [ "$KYUKYU_STACK_GATEWAY" = 1 ]; then
    echo "  Tablet:       ${bold}$KYUKYU_STACK_GATEWAY_URL/${plain}   (open it in a browser on this machine)"
    echo
    echo "  Crew sign-in"
    echo "  Crew ID:      $KYUKYU_DEMO_CREW_ID"
    echo "  Password:     $KYUKYU_DEMO_CREW_PASSWORD"
    echo "  TOTP secret:  $KYUKYU_DEMO_CREW_TOTP_SECRET   (or type the code below)"
    totp_line "$KYUKYU_DEMO_CREW_TOTP_SECRET"
    echo "  Crew PIN:     $KYUKYU_DEMO_CREW_PIN   (unlocks the screen after 5 minutes idle)"
    echo "  Patient PIN:  1234   (the Android token's PIN)"
  else
    echo "  (KYUKYU_STACK_NO_GATEWAY=1: no gateway; the card simulator and the stub run alone)"
  fi
  if [ "$KYUKYU_STACK_RECEIVER" = 1 ]; then
    echo
    echo "  ER board:     ${bold}$KYUKYU_STACK_BOARD_URL${plain}   ($KYUKYU_STACK_HOSPITAL_NAME, $KYUKYU_STACK_HOSPITAL_CODE)"
    echo "                HTTPS with the demo hospital's own CA: import $KYUKYU_STACK_RECEIVER_CA"
    echo "                as a trusted authority in the browser (Chromium: Settings › Privacy and security › Security ›"
    echo "                Manage certificates › Authorities › Import), or click Advanced › Proceed to 127.0.0.1."
    echo
    echo "  Staff sign-in"
    echo "  Staff ID:     $KYUKYU_DEMO_STAFF_ID"
    echo "  Password:     $KYUKYU_DEMO_STAFF_PASSWORD"
    echo "  TOTP secret:  $KYUKYU_DEMO_STAFF_TOTP_SECRET   (or type the code below)"
    totp_line "$KYUKYU_DEMO_STAFF_TOTP_SECRET"
    echo
    echo "  On the tablet: the transport record, pick $KYUKYU_STACK_HOSPITAL_NAME, send; the patient appears on the board."
  fi
  echo
  echo "  Card control: $KYUKYU_CARD_CONTROL_URL/card    Stub admin: $KYUKYU_STUB_ADMIN_URL/admin/faults"
  echo "  Logs:         $KYUKYU_STACK_LOGS/"
}

on_reader() {
  curl -fsS --max-time 15 "$KYUKYU_CARD_CONTROL_URL/card" | python3 -c '
import json, sys
card = json.load(sys.stdin)
if not card.get("present"):
    print("no card")
else:
    kind = {"card": "My Number card", "old-card": "old card", "android": "Android token", "iphone": "iPhone"}
    print("synthetic patient %d, %s, certificate %s" % (card["holder"], kind.get(card["profile"], card["profile"]), card["certificate"]))
'
}

# Swaps what is on the reader through the card simulator's control (the reader sees a removal, then the new card).
put_card() {
  curl -fsS --max-time 15 -X PUT -H 'Content-Type: application/json' --data "$1" "$KYUKYU_CARD_CONTROL_URL/card" >/dev/null
}

menu() {
  echo
  echo "On the reader: $(on_reader)"
  echo "  1 another synthetic patient   2 Android token   3 iPhone   4 expired certificate"
  echo "  5 no card   6 card lost mid-read (back after 2 s)   q quit"
}

banner
if [ "$interactive" = 0 ]; then
  echo
  if [ "$KYUKYU_STACK_GATEWAY" = 1 ]; then
    printf 'GET /health/ready: '
    curl -fsS --max-time 5 "$KYUKYU_STACK_GATEWAY_URL/health/ready"
    echo
  fi
  if [ "$KYUKYU_STACK_RECEIVER" = 1 ]; then
    printf 'Receiver GET /health/live: '
    curl -fsS --max-time 5 --cacert "$KYUKYU_STACK_RECEIVER_CA" "$KYUKYU_STACK_RECEIVER_URL/health/live"
    echo
    printf 'Board GET /board/: '
    curl -fsS --max-time 5 --cacert "$KYUKYU_STACK_RECEIVER_CA" -o /dev/null -w '%{http_code} %{content_type}\n' \
      "$KYUKYU_STACK_BOARD_URL"
  fi
  echo "On the reader: $(on_reader)"
  exit 0
fi

menu
last_step=$(( $(date +%s) / 30 ))
while true; do
  now=$(date +%s)
  wait_for=$(( 30 - now % 30 ))
  key=""
  if ! IFS= read -r -s -n 1 -t "$wait_for" key; then
    # Timed out: a new 30 s step, so a new code.
    step=$(( $(date +%s) / 30 ))
    if [ "$step" != "$last_step" ]; then totp_lines; last_step=$step; fi
    continue
  fi
  case "$key" in
    1) holder=$(( holder % 20 + 1 )); put_card "{\"holder\": $holder}" ;;
    2) put_card "{\"holder\": $holder, \"profile\": \"android\"}" ;;
    3) put_card "{\"holder\": $holder, \"profile\": \"iphone\"}" ;;
    4) put_card "{\"holder\": $holder, \"certificate\": \"expired\"}" ;;
    5) curl -fsS --max-time 15 -X DELETE "$KYUKYU_CARD_CONTROL_URL/card" >/dev/null ;;
    6) curl -fsS --max-time 15 -X POST -H 'Content-Type: application/json' \
         --data '{"apdus": 6, "reinsertAfterMs": 2000}' "$KYUKYU_CARD_CONTROL_URL/card/remove-after-apdus" >/dev/null
       echo "Armed: the next read loses the card after 6 commands; it comes back after 2 s." ;;
    q | Q) exit 0 ;;
    *) continue ;;
  esac
  menu
done
