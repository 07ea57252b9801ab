#!/usr/bin/env bash
# `make run`: starts a private pcscd with a vpcd virtual reader, the card simulator behind it (synthetic holder 3,
# a contactless-like 20 ms per APDU) and the onshi stub over mutual TLS; reads the card as the paramedic's terminal
# would and fetches the patient's facts under a 3 s deadline. Everything runs on loopback and stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${KYUKYU_BIN_DIR:-.build/debug}"
STATE="${KYUKYU_STATE_DIR:-state}"
PORT="${KYUKYU_DEMO_PORT:-40600}"
ONSHI_PORT="${KYUKYU_DEMO_ONSHI_PORT:-18443}"
ADMIN_PORT="${KYUKYU_DEMO_ADMIN_PORT:-18080}"
HOLDER="${KYUKYU_DEMO_HOLDER:-3}"
DIR="$STATE/demo-pcscd"
mkdir -p "$DIR/reader.conf.d" /run/pcscd
DIR="$(cd "$DIR" && pwd)"
cat > "$DIR/reader.conf.d/vpcd" <<CONF
FRIENDLYNAME "Kyukyu Demo Reader"
DEVICENAME   /dev/null:$PORT
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    $PORT
CONF

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

unshare --mount --propagation private sh -c \
  "mount -t tmpfs tmpfs /run/pcscd && exec pcscd --foreground -c '$DIR/reader.conf.d'" >"$DIR/pcscd.log" 2>&1 &
pcscd_pid=$!
pids+=("$pcscd_pid")
for _ in $(seq 100); do [ -S "/proc/$pcscd_pid/root/run/pcscd/pcscd.comm" ] && break; sleep 0.05; done
ln -sfn "/proc/$pcscd_pid/root/run/pcscd/pcscd.comm" "$DIR/pcscd.comm"
export PCSCLITE_CSOCK_NAME="$DIR/pcscd.comm"

"$BIN/kyukyu-card-sim" --port "$PORT" --profile card --holder "$HOLDER" --apdu-latency-ms 20 \
  --data-dir "$STATE/sim-pki" >"$DIR/card-sim.log" 2>&1 &
pids+=("$!")

"$BIN/kyukyu-eligibility-sim" issue-terminal-cert --device ambulance-01 --out "$STATE/terminal-tls" \
  --tls-dir "$STATE/eligibility-tls" >/dev/null
"$BIN/kyukyu-eligibility-sim" serve --port "$ONSHI_PORT" --admin-port "$ADMIN_PORT" --pki-dir "$STATE/sim-pki" \
  --tls-dir "$STATE/eligibility-tls" >"$DIR/eligibility-sim.log" 2>&1 &
pids+=("$!")

echo "== A synthetic patient's My Number card is on the virtual reader (holder $HOLDER, 20 ms per APDU)."
echo
echo "\$ kyukyu card status --wait 30"
"$BIN/kyukyu" card status --wait 30 || true
echo
echo "\$ kyukyu card read"
start=$(date +%s%N)
"$BIN/kyukyu" card read
end=$(date +%s%N)
echo "(read in $(( (end - start) / 1000000 )) ms, process start included)"
echo
echo "\$ echo 1234 | kyukyu card attributes --pin-stdin   # 券面入力補助, PIN asked of the patient"
echo 1234 | "$BIN/kyukyu" card attributes --pin-stdin
echo
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$ONSHI_PORT") 2>/dev/null && break; sleep 0.05; done
echo "\$ kyukyu fetch --consent verbal --crew DEMO-A1 --deadline-ms 3000   # card → onshi (mutual TLS) → summary"
"$BIN/kyukyu" fetch --consent verbal --crew DEMO-A1 --deadline-ms 3000 --onshi-url "https://127.0.0.1:$ONSHI_PORT" \
  --tls-dir "$STATE/terminal-tls" --device ambulance-01
echo
echo "onshi's own record of the viewing (GET /admin/viewings):"
curl -s "http://127.0.0.1:$ADMIN_PORT/admin/viewings" | head -c 600; echo
echo
echo "Logs: $DIR/pcscd.log, $DIR/card-sim.log, $DIR/eligibility-sim.log"
