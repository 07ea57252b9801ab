#!/usr/bin/env bash
# Starts and stops the whole real stack on loopback, each part in the background with its log:
#   a private pcscd (own mount namespace and socket) with a vpcd reader, the card simulator behind it (with its
#   run-time control), the eligibility stub (onshi over mutual TLS, admin port with fault injection), the
#   gateway with a demo crew account and, when asked (KYUKYU_STACK_RECEIVER=1), the demo hospital's receiver
#   (`kyukyu-hospital serve`: intake over mutual TLS and the ER board) with a demo staff account, the gateway
#   then sending its documents there.
#
#   scripts/stack.sh start [STATE_DIR]            start everything, wait until each part is ready, write stack.env
#   scripts/stack.sh stop [STATE_DIR]             stop everything (also what a trap calls); nothing keeps running
#   scripts/stack.sh status [STATE_DIR]           which parts run
#   scripts/stack.sh kill-gateway [STATE_DIR]     kill -9 the gateway (for the kill -9 test)
#   scripts/stack.sh restart-gateway [STATE_DIR]  start the gateway again on the same state and wait until ready
#   scripts/stack.sh stop-stub [STATE_DIR]        stop the eligibility stub: onshi unreachable ("network lost")
#   scripts/stack.sh start-stub [STATE_DIR]       start it again on the same ports and wait until ready ("back")
#   scripts/stack.sh stop-receiver [STATE_DIR]    stop the hospital's receiver (a stack started with it)
#   scripts/stack.sh start-receiver [STATE_DIR]   start it again on the same port and state and wait until ready
#   scripts/stack.sh card [STATE_DIR] [JSON|none] show the card on the reader, swap it (PUT) or remove it
#
# STATE_DIR defaults to $KYUKYU_STACK_DIR, else state/stack. `source STATE_DIR/stack.env` gives the ports, URLs,
# PIDs and the demo crew's sign-in (keys listed in docs/card-simulator.md, "The whole stack").
#
# Environment (all optional):
#   KYUKYU_BIN_DIR                 the built executables (default .build/debug)
#   KYUKYU_STACK_PORT_BASE         first port (default 20600): vpcd base, +10 card control, +20 onshi, +21 stub
#                                  admin, +30 gateway, +40 the hospital's receiver; each can be set alone:
#   KYUKYU_STACK_VPCD_PORT, KYUKYU_STACK_CARD_CONTROL_PORT, KYUKYU_STACK_ONSHI_PORT, KYUKYU_STACK_ADMIN_PORT,
#   KYUKYU_STACK_GATEWAY_PORT, KYUKYU_STACK_RECEIVER_PORT
#   KYUKYU_STACK_HOLDER            synthetic patient on the reader at start (default 3)
#   KYUKYU_STACK_PROFILE           card, old-card, android, iphone (default card)
#   KYUKYU_STACK_APDU_LATENCY_MS   per-APDU delay of the card (default 20, contactless-like)
#   KYUKYU_STACK_NO_GATEWAY=1      start everything but the gateway (and the crew)
#   KYUKYU_STACK_GATEWAY_ARGS      extra arguments for `kyukyu-gateway serve`
#   KYUKYU_STACK_CREW_ID           the demo crew's ID (default DEMO-A1)
#   KYUKYU_STACK_RECEIVER=1        also the demo hospital's receiver (default 0: the gateway's documents then wait in
#                                  its outbox, with no certificate for any receiver). Made once per state folder and
#                                  reused: its CA (hospital 9999999999, テスト救命救急センター (架空), the gateway's
#                                  built-in demo hospital), the terminal's client certificate in STATE/hospital-tls,
#                                  a demo staff account (demo-staff.env, mode 600); the gateway is given the
#                                  hospital at https://127.0.0.1:<receiver port> (STATE/hospitals.json).
#   KYUKYU_STACK_STAFF_ID          the demo staff member's ID (default DEMO-ER1)
#   KYUKYU_STACK_HUB=DIR           instead of a receiver of its own, send to a region's hub that `kyukyu-drill hub
#                                  --dir DIR` runs (make run-region): the gateway is given the region's hospitals at
#                                  the hub's balancer (from DIR/region.json) and the terminal's certificate the hub
#                                  issued; stack.env then names the hub (KYUKYU_STACK_HUB_URL, KYUKYU_STACK_HUB_CA).
#   KYUKYU_STACK_TERMINAL_ID       the gateway's terminal.id (default ambulance-01): the CN of its certificate
#   KYUKYU_STACK_TIMEOUT           seconds to wait for each part (default 60; the first run makes RSA keys)
# Needs root (unshare --mount for the private pcscd), curl and python3. No TTY or stdin needed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Close every descriptor inherited beyond stdin, stdout and stderr (bash's own 255 stays): a caller that spawned us
# with pipes and leaks other descriptors (Foundation's Process does) would otherwise have them held open by the
# background parts, and wait for an end of file that never comes.
for fd in /proc/$$/fd/*; do
  fd="${fd##*/}"
  case "$fd" in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
done

BIN="${KYUKYU_BIN_DIR:-.build/debug}"
BIN="$(cd "$BIN" 2>/dev/null && pwd || echo "$BIN")"
BASE="${KYUKYU_STACK_PORT_BASE:-20600}"
VPCD_PORT="${KYUKYU_STACK_VPCD_PORT:-$BASE}"
CONTROL_PORT="${KYUKYU_STACK_CARD_CONTROL_PORT:-$((BASE + 10))}"
ONSHI_PORT="${KYUKYU_STACK_ONSHI_PORT:-$((BASE + 20))}"
ADMIN_PORT="${KYUKYU_STACK_ADMIN_PORT:-$((BASE + 21))}"
GATEWAY_PORT="${KYUKYU_STACK_GATEWAY_PORT:-$((BASE + 30))}"
HOLDER="${KYUKYU_STACK_HOLDER:-3}"
PROFILE="${KYUKYU_STACK_PROFILE:-card}"
LATENCY="${KYUKYU_STACK_APDU_LATENCY_MS:-20}"
TIMEOUT="${KYUKYU_STACK_TIMEOUT:-60}"
CREW_ID="${KYUKYU_STACK_CREW_ID:-DEMO-A1}"
RECEIVER="${KYUKYU_STACK_RECEIVER:-0}"
RECEIVER_PORT="${KYUKYU_STACK_RECEIVER_PORT:-$((BASE + 40))}"
STAFF_ID="${KYUKYU_STACK_STAFF_ID:-DEMO-ER1}"
# The demo hospital: the gateway's built-in one (ReceivingHospital.demo), fictitious; its receiver on loopback.
HOSPITAL_CODE=9999999999
HOSPITAL_NAME="テスト救命救急センター (架空)"
HOSPITAL_KANA="テストキュウメイキュウキュウセンター"
TERMINAL_ID="${KYUKYU_STACK_TERMINAL_ID:-ambulance-01}"  # the gateway's terminal.id: its certificate's CN
HUB="${KYUKYU_STACK_HUB:-}"
READER_NAME="Kyukyu Demo Reader"
# In start order; stopped in reverse (the gateway before the receiver it sends to).
PARTS=(pcscd card-sim eligibility-sim receiver gateway)

say() { echo "stack: $*" >&2; }
die() { say "$*"; exit 1; }

command="${1:-}"
[ -n "$command" ] || die "usage: scripts/stack.sh start|stop|status|kill-gateway|restart-gateway|stop-stub|start-stub|stop-receiver|start-receiver|card [STATE_DIR]"
shift
STATE="${KYUKYU_STACK_DIR:-state/stack}"
if [ $# -ge 1 ] && [ "${1:0:1}" != "{" ] && [ "$1" != none ]; then STATE="$1"; shift; fi
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
LOGS="$STATE/logs"
RUN="$STATE/run"
ENV_FILE="$STATE/stack.env"
SOCKET="$STATE/pcscd/pcscd.comm"

# MARK: - processes

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

# Whether a process runs (an exited one waiting to be reaped, a zombie, does not count: whoever is PID 1 here may
# reap late).
running() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" != Z ]
}

# Whether the PID recorded for a part is alive and still that part (PIDs are reused).
alive() {
  local pid; pid="$(pid_of "$1")"
  running "$pid" || return 1
  local want
  case "$1" in
    pcscd) want=pcscd ;;
    card-sim) want=kyukyu-card-sim ;;
    eligibility-sim) want=kyukyu-eligibility-sim ;;
    gateway) want=kyukyu-gateway ;;
    receiver) want=kyukyu-hospital ;;
  esac
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$want"
}

# Starts `$@` as part $1's process in its own session (so a terminal's Ctrl-C reaches only the caller, who stops
# the stack in order), stdin from /dev/null, output to its log; the process writes its own PID before exec.
launch() {
  local part="$1"; shift
  mkdir -p "$LOGS" "$RUN"
  rm -f "$RUN/$part.pid"
  setsid sh -c 'echo $$ > "$0"; exec "$@"' "$RUN/$part.pid" "$@" </dev/null >>"$LOGS/$part.log" 2>&1 &
  local i
  for i in $(seq 500); do [ -s "$RUN/$part.pid" ] && return 0; sleep 0.02; done
  die "$part did not start"
}

# Stops a part: SIGTERM, up to 10 s, then SIGKILL. Only the PID recorded for it, and only if it is still that part.
stop_part() {
  local part="$1" pid i
  pid="$(pid_of "$part")"
  if alive "$part"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 200); do running "$pid" || break; sleep 0.05; done
    if running "$pid"; then
      say "$part (pid $pid) did not stop on SIGTERM within 10 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 100); do running "$pid" || break; sleep 0.05; done
    fi
  fi
  rm -f "$RUN/$part.pid"
}

# Polls `$3...` every 0.1 s until it succeeds, for at most $2 seconds; fails early when part $1 has died.
wait_until() {
  local part="$1" seconds="$2"; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    "$@" >/dev/null 2>&1 && return 0
    if [ -n "$part" ] && ! alive "$part"; then
      say "$part exited; the end of $LOGS/$part.log:"; tail -n 20 "$LOGS/$part.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  say "$part not ready after ${seconds} s; the end of $LOGS/$part.log:"; tail -n 20 "$LOGS/$part.log" >&2 || true
  return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
socket_up() { [ -S "/proc/$(pid_of pcscd)/root/run/pcscd/pcscd.comm" ]; }
card_connected() { curl -fsS --max-time 2 "http://127.0.0.1:$CONTROL_PORT/card" | grep -q '"connected":true'; }
stub_up() { curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/admin/health" | grep -q ok && ! port_free "$ONSHI_PORT"; }
gateway_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$GATEWAY_PORT/health/ready" | grep -q '"ready"'; }
# The receiver answers over HTTPS with a server certificate from its own CA (checked here, not skipped).
receiver_ready() {
  curl -fsS --max-time 2 --cacert "$STATE/hospital/pki/ca.cert.pem" "https://127.0.0.1:$RECEIVER_PORT/health/live" \
    | grep -q '"live"'
}

# MARK: - parts

start_pcscd() {
  local dir="$STATE/pcscd"
  mkdir -p "$dir/reader.conf.d" /run/pcscd
  cat >"$dir/reader.conf.d/vpcd" <<CONF
FRIENDLYNAME "$READER_NAME"
DEVICENAME   /dev/null:$VPCD_PORT
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    $VPCD_PORT
CONF
  launch pcscd unshare --mount --propagation private sh -c \
    'mount -t tmpfs tmpfs /run/pcscd && exec pcscd --foreground -c "$0"' "$dir/reader.conf.d"
  wait_until pcscd 10 socket_up
  ln -sfn "/proc/$(pid_of pcscd)/root/run/pcscd/pcscd.comm" "$SOCKET"
}

start_card_sim() {
  launch card-sim "$BIN/kyukyu-card-sim" --port "$VPCD_PORT" --control-port "$CONTROL_PORT" \
    --profile "$PROFILE" --holder "$HOLDER" --apdu-latency-ms "$LATENCY" --data-dir "$STATE/sim-pki"
  wait_until card-sim "$TIMEOUT" card_connected
}

start_eligibility_sim() {
  if [ ! -f "$STATE/terminal-tls/$TERMINAL_ID.cert.pem" ]; then
    "$BIN/kyukyu-eligibility-sim" issue-terminal-cert --device "$TERMINAL_ID" --out "$STATE/terminal-tls" \
      --tls-dir "$STATE/eligibility-tls" >>"$LOGS/eligibility-sim.log" 2>&1 </dev/null
  fi
  launch eligibility-sim "$BIN/kyukyu-eligibility-sim" serve --host 127.0.0.1 --port "$ONSHI_PORT" \
    --admin-port "$ADMIN_PORT" --pki-dir "$STATE/sim-pki" --tls-dir "$STATE/eligibility-tls"
  wait_until eligibility-sim "$TIMEOUT" stub_up
}

# The demo crew: made once per state folder (kept in demo-crew.env, mode 600), then reused.
add_crew() {
  local file="$STATE/demo-crew.env"
  [ -s "$file" ] && return 0
  local password pin output secret
  password="$(python3 -c 'import secrets,string; a=string.ascii_letters+string.digits; print("".join(secrets.choice(a) for _ in range(16)))')"
  pin="$(python3 -c 'import secrets; print("".join(secrets.choice("0123456789") for _ in range(4)))')"
  output="$(printf '%s\n%s\n' "$password" "$pin" | "$BIN/kyukyu-gateway" crew add "$CREW_ID" \
    --state-directory "$STATE/gateway" 2>>"$LOGS/gateway.log")" || die "kyukyu-gateway crew add failed; see $LOGS/gateway.log"
  secret="$(printf '%s\n' "$output" | sed -n 's/^TOTP secret[^:]*: *\([A-Z2-7]*\).*$/\1/p' | head -n 1)"
  [ -n "$secret" ] || die "kyukyu-gateway crew add printed no 'TOTP secret: <base32>' line"
  (umask 077; printf "KYUKYU_DEMO_CREW_ID='%s'\nKYUKYU_DEMO_CREW_PASSWORD='%s'\nKYUKYU_DEMO_CREW_TOTP_SECRET='%s'\nKYUKYU_DEMO_CREW_PIN='%s'\n" \
    "$CREW_ID" "$password" "$secret" "$pin" >"$file")
}

# The demo hospital's receiver, made once per state folder and then reused (like the crew): its CA and server
# certificate (STATE/hospital/pki), the terminal's client certificate where the gateway reads it
# (STATE/hospital-tls: <terminal>.cert.pem, <terminal>.key.pem, ca.cert.pem), and a demo staff account for the board
# (demo-staff.env, mode 600). The hospitals file names the receiver's port, so it is written at every start.
setup_receiver() {
  local dir="$STATE/hospital" tls="$STATE/hospital-tls" log="$LOGS/receiver.log"
  mkdir -p "$dir"
  if [ ! -s "$dir/pki/ca.cert.pem" ]; then
    "$BIN/kyukyu-hospital" ca init --state-dir "$dir" --hospital "$HOSPITAL_CODE" >>"$log" 2>&1 </dev/null \
      || die "kyukyu-hospital ca init failed; see $log"
  fi
  # Issued again when missing, or when the receiver's CA is not the one it was issued by (a reset receiver).
  if [ ! -s "$tls/$TERMINAL_ID.cert.pem" ] || ! cmp -s "$tls/ca.cert.pem" "$dir/pki/ca.cert.pem"; then
    rm -f "$tls/$TERMINAL_ID.cert.pem" "$tls/$TERMINAL_ID.key.pem" "$tls/ca.cert.pem"
    "$BIN/kyukyu-hospital" device issue --state-dir "$dir" --device "$TERMINAL_ID" --out "$tls" >>"$log" 2>&1 \
      </dev/null || die "kyukyu-hospital device issue failed; see $log"
  fi
  local file="$STATE/demo-staff.env"
  if [ ! -s "$file" ]; then
    local password pin output secret
    password="$(python3 -c 'import secrets,string; a=string.ascii_letters+string.digits; print("".join(secrets.choice(a) for _ in range(16)))')"
    pin="$(python3 -c 'import secrets; print("".join(secrets.choice("0123456789") for _ in range(4)))')"
    output="$(printf '%s\n%s\n' "$password" "$pin" | "$BIN/kyukyu-hospital" staff add "$STAFF_ID" \
      --state-dir "$dir" 2>>"$log")" || die "kyukyu-hospital staff add failed; see $log"
    secret="$(printf '%s\n' "$output" | sed -n 's/^TOTP secret[^:]*: *\([A-Z2-7]*\).*$/\1/p' | head -n 1)"
    [ -n "$secret" ] || die "kyukyu-hospital staff add printed no 'TOTP secret: <base32>' line"
    (umask 077; printf "KYUKYU_DEMO_STAFF_ID='%s'\nKYUKYU_DEMO_STAFF_PASSWORD='%s'\nKYUKYU_DEMO_STAFF_TOTP_SECRET='%s'\nKYUKYU_DEMO_STAFF_PIN='%s'\n" \
      "$STAFF_ID" "$password" "$secret" "$pin" >"$file")
  fi
  printf '[{"code": "%s", "name": "%s", "nameKana": "%s", "url": "https://127.0.0.1:%s"}]\n' \
    "$HOSPITAL_CODE" "$HOSPITAL_NAME" "$HOSPITAL_KANA" "$RECEIVER_PORT" >"$STATE/hospitals.json"
}

start_receiver() {
  # Only the flags below: a KYUKYU_HOSPITAL_* variable of the caller's would be taken as configuration.
  launch receiver env $(compgen -e | grep '^KYUKYU_HOSPITAL_' | sed 's/^/-u /') "$BIN/kyukyu-hospital" serve \
    --state-directory "$STATE/hospital" --http-host 127.0.0.1 --http-port "$RECEIVER_PORT" \
    --hospital-code "$HOSPITAL_CODE"
  wait_until receiver "$TIMEOUT" receiver_ready
}

# A region's hub (KYUKYU_STACK_HUB): its hospitals, all at its balancer, and the certificate it issued to this
# terminal, read from DIR/region.json.
setup_hub() {
  local region="$HUB/region.json" tls="$STATE/hospital-tls"
  [ -s "$region" ] || die "no $region: start the hub first (kyukyu-drill hub --dir $HUB)"
  python3 - "$region" "$TERMINAL_ID" "$tls" "$STATE/hospitals.json" <<'PY' || die "the hub's region.json cannot be used"
import json, os, shutil, sys
region, terminal, tls, out = sys.argv[1:]
data = json.load(open(region))
device = data["devices"].get(terminal)
if device is None:
    sys.exit(f"the hub issued no certificate to {terminal}; start it with --device {terminal}")
os.makedirs(tls, mode=0o700, exist_ok=True)
for name in (f"{terminal}.cert.pem", f"{terminal}.key.pem"):
    shutil.copyfile(os.path.join(device, name), os.path.join(tls, name))
os.chmod(os.path.join(tls, f"{terminal}.key.pem"), 0o600)
shutil.copyfile(data["ca"], os.path.join(tls, "ca.cert.pem"))
json.dump([{"code": h["code"], "name": h["name"], "url": data["url"]} for h in data["hospitals"]], open(out, "w"),
          ensure_ascii=False)
PY
}

start_gateway() {
  mkdir -p "$STATE/gateway"
  local handoff=()
  if [ "$RECEIVER" = 1 ] || [ -n "$HUB" ]; then
    handoff=(--handoff-hospitals "$STATE/hospitals.json" --handoff-tls-directory "$STATE/hospital-tls")
  fi
  handoff+=(--terminal-id "$TERMINAL_ID")
  # shellcheck disable=SC2086 # word splitting of the extra arguments is wanted
  PCSCLITE_CSOCK_NAME="$SOCKET" launch gateway "$BIN/kyukyu-gateway" serve --state-directory "$STATE/gateway" \
    --http-host 127.0.0.1 --http-port "$GATEWAY_PORT" --onshi-url "https://127.0.0.1:$ONSHI_PORT" \
    --onshi-tls-directory "$STATE/terminal-tls" "${handoff[@]}" ${KYUKYU_STACK_GATEWAY_ARGS:-}
  wait_until gateway "$TIMEOUT" gateway_ready
}

write_env() {
  local tmp="$ENV_FILE.tmp" gateway=1
  [ "${KYUKYU_STACK_NO_GATEWAY:-0}" = 1 ] && gateway=0
  {
    echo "# Written by scripts/stack.sh start; source it (bash) or parse KEY='value' lines."
    echo "KYUKYU_STACK_DIR='$STATE'"
    echo "KYUKYU_BIN_DIR='$BIN'"
    echo "KYUKYU_STACK_LOGS='$LOGS'"
    echo "PCSCLITE_CSOCK_NAME='$SOCKET'"
    echo "KYUKYU_READER_NAME='$READER_NAME 00 00'"
    echo "KYUKYU_VPCD_PORT='$VPCD_PORT'"
    echo "KYUKYU_PKI_DIR='$STATE/sim-pki'"
    echo "KYUKYU_CARD_CONTROL_PORT='$CONTROL_PORT'"
    echo "KYUKYU_CARD_CONTROL_URL='http://127.0.0.1:$CONTROL_PORT'"
    echo "KYUKYU_DEMO_HOLDER='$HOLDER'"
    echo "KYUKYU_ONSHI_PORT='$ONSHI_PORT'"
    echo "KYUKYU_ONSHI_URL='https://127.0.0.1:$ONSHI_PORT'"
    echo "KYUKYU_TERMINAL_TLS_DIR='$STATE/terminal-tls'"
    echo "KYUKYU_STUB_ADMIN_PORT='$ADMIN_PORT'"
    echo "KYUKYU_STUB_ADMIN_URL='http://127.0.0.1:$ADMIN_PORT'"
    echo "KYUKYU_STACK_GATEWAY='$gateway'"
    echo "KYUKYU_STACK_GATEWAY_PORT='$GATEWAY_PORT'"
    echo "KYUKYU_STACK_GATEWAY_URL='http://127.0.0.1:$GATEWAY_PORT'"
    echo "KYUKYU_STACK_GATEWAY_STATE_DIR='$STATE/gateway'"
    echo "KYUKYU_PCSCD_PID='$(pid_of pcscd)'"
    echo "KYUKYU_CARD_SIM_PID='$(pid_of card-sim)'"
    echo "KYUKYU_ELIGIBILITY_SIM_PID='$(pid_of eligibility-sim)'"
    echo "KYUKYU_STACK_GATEWAY_PID='$(pid_of gateway)'"
    echo "KYUKYU_STACK_RECEIVER='$RECEIVER'"
    if [ -n "$HUB" ]; then
      echo "KYUKYU_STACK_HUB='$HUB'"
      echo "KYUKYU_STACK_HUB_URL='$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$HUB/region.json")'"
      echo "KYUKYU_STACK_HUB_CA='$STATE/hospital-tls/ca.cert.pem'"
      echo "KYUKYU_STACK_HOSPITALS_FILE='$STATE/hospitals.json'"
      echo "KYUKYU_STACK_HANDOFF_TLS_DIR='$STATE/hospital-tls'"
      echo "KYUKYU_STACK_TERMINAL_ID='$TERMINAL_ID'"
    fi
    if [ "$RECEIVER" = 1 ]; then
      echo "KYUKYU_STACK_RECEIVER_PORT='$RECEIVER_PORT'"
      echo "KYUKYU_STACK_RECEIVER_URL='https://127.0.0.1:$RECEIVER_PORT'"
      echo "KYUKYU_STACK_BOARD_URL='https://127.0.0.1:$RECEIVER_PORT/board/'"
      echo "KYUKYU_STACK_RECEIVER_STATE_DIR='$STATE/hospital'"
      echo "KYUKYU_STACK_RECEIVER_CA='$STATE/hospital/pki/ca.cert.pem'"
      echo "KYUKYU_STACK_RECEIVER_PID='$(pid_of receiver)'"
      echo "KYUKYU_STACK_HOSPITAL_CODE='$HOSPITAL_CODE'"
      echo "KYUKYU_STACK_HOSPITAL_NAME='$HOSPITAL_NAME'"
      echo "KYUKYU_STACK_HOSPITALS_FILE='$STATE/hospitals.json'"
      echo "KYUKYU_STACK_HANDOFF_TLS_DIR='$STATE/hospital-tls'"
      echo "KYUKYU_STACK_TERMINAL_ID='$TERMINAL_ID'"
      [ -s "$STATE/demo-staff.env" ] && cat "$STATE/demo-staff.env"
    fi
    [ "$gateway" = 1 ] && [ -s "$STATE/demo-crew.env" ] && cat "$STATE/demo-crew.env"
    true
  } >"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
}

# Reads the ports of a running stack back from its stack.env (for stop, restart-gateway, card).
load_env() {
  [ -f "$ENV_FILE" ] || die "no stack in $STATE (no stack.env); run scripts/stack.sh start $STATE"
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  BIN="$KYUKYU_BIN_DIR"; CONTROL_PORT="$KYUKYU_CARD_CONTROL_PORT"; ONSHI_PORT="$KYUKYU_ONSHI_PORT"
  ADMIN_PORT="$KYUKYU_STUB_ADMIN_PORT"; GATEWAY_PORT="$KYUKYU_STACK_GATEWAY_PORT"
  RECEIVER="${KYUKYU_STACK_RECEIVER:-0}"; RECEIVER_PORT="${KYUKYU_STACK_RECEIVER_PORT:-$RECEIVER_PORT}"
  # What the stack was started with, not this command's environment (write_env writes them back).
  VPCD_PORT="${KYUKYU_VPCD_PORT:-$VPCD_PORT}"; HOLDER="${KYUKYU_DEMO_HOLDER:-$HOLDER}"
  if [ "${KYUKYU_STACK_GATEWAY:-1}" = 0 ]; then KYUKYU_STACK_NO_GATEWAY=1; else KYUKYU_STACK_NO_GATEWAY=0; fi
  HOSPITAL_CODE="${KYUKYU_STACK_HOSPITAL_CODE:-$HOSPITAL_CODE}"; HOSPITAL_NAME="${KYUKYU_STACK_HOSPITAL_NAME:-$HOSPITAL_NAME}"
  TERMINAL_ID="${KYUKYU_STACK_TERMINAL_ID:-$TERMINAL_ID}"
}

stop_all() {
  local i
  for (( i=${#PARTS[@]}-1; i>=0; i-- )); do stop_part "${PARTS[$i]}"; done
  rm -f "$SOCKET" "$ENV_FILE"
}

# MARK: - commands

case "$command" in
  start)
    [ "$(id -u)" -eq 0 ] || die "needs root (unshare --mount for the private pcscd)"
    for f in kyukyu-card-sim kyukyu-eligibility-sim; do [ -x "$BIN/$f" ] || die "$BIN/$f is not built (swift build)"; done
    if [ "${KYUKYU_STACK_NO_GATEWAY:-0}" != 1 ]; then
      [ -x "$BIN/kyukyu-gateway" ] || die "$BIN/kyukyu-gateway is not built (swift build)"
    fi
    case "$RECEIVER" in
      0) ;;
      1) [ -x "$BIN/kyukyu-hospital" ] || die "$BIN/kyukyu-hospital is not built (swift build)" ;;
      *) die "KYUKYU_STACK_RECEIVER is 0 or 1, not '$RECEIVER'" ;;
    esac
    [ -z "$HUB" ] || [ "$RECEIVER" = 0 ] || die "KYUKYU_STACK_HUB and KYUKYU_STACK_RECEIVER=1 exclude each other"
    stop_all  # what a crashed earlier run left in this folder
    ports=("$VPCD_PORT" "$((VPCD_PORT + 1))" "$CONTROL_PORT" "$ONSHI_PORT" "$ADMIN_PORT" "$GATEWAY_PORT")
    [ "$RECEIVER" = 1 ] && ports+=("$RECEIVER_PORT")
    for p in "${ports[@]}"; do
      port_free "$p" || die "port $p on 127.0.0.1 is taken; set KYUKYU_STACK_PORT_BASE"
    done
    mkdir -p "$LOGS" "$RUN"
    trap 'rc=$?; if [ $rc -ne 0 ]; then say "start failed; stopping what was started"; stop_all; fi' EXIT
    start_pcscd
    start_card_sim
    start_eligibility_sim
    if [ "$RECEIVER" = 1 ]; then
      setup_receiver
      start_receiver
    fi
    [ -z "$HUB" ] || setup_hub
    if [ "${KYUKYU_STACK_NO_GATEWAY:-0}" != 1 ]; then
      add_crew
      start_gateway
    fi
    trap - EXIT
    write_env
    say "ready: $( [ "${KYUKYU_STACK_NO_GATEWAY:-0}" = 1 ] && echo "(no gateway)" || echo "http://127.0.0.1:$GATEWAY_PORT/" )$( [ "$RECEIVER" = 1 ] && echo ", board https://127.0.0.1:$RECEIVER_PORT/board/" ); environment in $ENV_FILE"
    ;;
  stop)
    stop_all
    ;;
  status)
    rc=0
    receiver_wanted=0
    [ -f "$ENV_FILE" ] && grep -q "^KYUKYU_STACK_RECEIVER='1'" "$ENV_FILE" && receiver_wanted=1
    for part in "${PARTS[@]}"; do
      # A stack started without the receiver does not miss it.
      [ "$part" = receiver ] && [ "$receiver_wanted" = 0 ] && ! alive receiver && continue
      if alive "$part"; then echo "$part: running (pid $(pid_of "$part"))"; else echo "$part: stopped"; rc=1; fi
    done
    exit $rc
    ;;
  kill-gateway)
    load_env
    pid="$(pid_of gateway)"
    alive gateway || die "the gateway is not running"
    kill -KILL "$pid"
    for _ in $(seq 100); do running "$pid" || break; sleep 0.05; done
    rm -f "$RUN/gateway.pid"
    write_env
    ;;
  restart-gateway)
    load_env
    alive gateway && stop_part gateway
    start_gateway
    write_env
    ;;
  stop-stub)
    load_env
    stop_part eligibility-sim
    write_env
    ;;
  start-stub)
    load_env
    alive eligibility-sim || start_eligibility_sim
    write_env
    ;;
  stop-receiver)
    load_env
    [ "$RECEIVER" = 1 ] || die "this stack was started without the receiver (KYUKYU_STACK_RECEIVER=1)"
    stop_part receiver
    write_env
    ;;
  start-receiver)
    load_env
    [ "$RECEIVER" = 1 ] || die "this stack was started without the receiver (KYUKYU_STACK_RECEIVER=1)"
    alive receiver || start_receiver
    write_env
    ;;
  card)
    load_env
    url="http://127.0.0.1:$CONTROL_PORT/card"
    case "${1:-}" in
      "") curl -fsS "$url" ;;
      none) curl -fsS -X DELETE "$url" ;;
      *) curl -fsS -X PUT -H 'Content-Type: application/json' --data "$1" "$url" ;;
    esac
    echo
    ;;
  *)
    die "unknown command $command; use start, stop, status, kill-gateway, restart-gateway, stop-stub, start-stub, stop-receiver, start-receiver or card"
    ;;
esac
