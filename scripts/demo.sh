#!/usr/bin/env bash
# `make run`: starts a private pcscd with a vpcd virtual reader, the card simulator behind it (holder 1, a
# contactless-like 20 ms per APDU), and reads the card as the paramedic's terminal would.
# Everything runs on loopback and stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${KYUKYU_BIN_DIR:-.build/debug}"
STATE="${KYUKYU_STATE_DIR:-state}"
PORT="${KYUKYU_DEMO_PORT:-40600}"
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

"$BIN/kyukyu-card-sim" --port "$PORT" --profile card --holder 1 --apdu-latency-ms 20 \
  --data-dir "$STATE/sim-pki" >"$DIR/card-sim.log" 2>&1 &
pids+=("$!")

echo "== A synthetic patient's My Number card is on the virtual reader (holder 1, 20 ms per APDU)."
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
echo "Logs: $DIR/pcscd.log, $DIR/card-sim.log"
