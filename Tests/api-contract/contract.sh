#!/usr/bin/env bash
# `make api-contract`: the API against docs/gateway-api.yaml.
#   1. check_spec.py (the document is valid, tight and equal to routes.txt);
#   2. the real stack (scripts/stack.sh: pcscd, card simulator, onshi stub, gateway with a demo crew and a dispatch
#      token) on its own ports and state folder; flow.py walks one incident from the card to its summary, details and
#      close, checking each answer against the document (real data the fuzz rarely reaches); then fuzz.sh, bounded in
#      examples and time;
#   3. the stack is stopped whatever happens (a trap): nothing keeps running.
# Exits non-zero when the document fails its check, the stack does not start, the fuzz finds a failure, or the
# gateway died during the fuzz.
#
# Environment (all optional): KYUKYU_BIN_DIR (built executables), KYUKYU_STACK_PORT_BASE (default 20800),
#   KYUKYU_CONTRACT_DIR (state folder, default state/api-contract), KYUKYU_FUZZ_MAX_EXAMPLES (default 15),
#   KYUKYU_FUZZ_MAX_TIME (seconds for the phase of every crew route, default 75), KYUKYU_FUZZ_SESSION_MAX_TIME
#   (seconds for each of lock, unlock, sign-out and dispatch, default 15), KYUKYU_FUZZ_SEED.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

started=$(date +%s)
python3 "$here/check_spec.py"

state="${KYUKYU_CONTRACT_DIR:-$root/state/api-contract}"
stack="$state/stack"
export KYUKYU_STACK_PORT_BASE="${KYUKYU_STACK_PORT_BASE:-20800}"
mkdir -p "$stack"
# A fresh gateway each run (incidents and crew); the simulators' keys and certificates are kept (slow to make).
scripts/stack.sh stop "$stack"
rm -rf "$stack/gateway" "$stack/demo-crew.env" "$state/api-fuzz"
token_file="$state/dispatch-token"
(umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$token_file")

trap 'scripts/stack.sh stop "$stack"' EXIT
KYUKYU_STACK_GATEWAY_ARGS="--dispatch-token-file $token_file" scripts/stack.sh start "$stack"
# shellcheck disable=SC1091
source "$stack/stack.env"

export KYUKYU_FUZZ_CREW="$KYUKYU_DEMO_CREW_ID" KYUKYU_FUZZ_PASSWORD="$KYUKYU_DEMO_CREW_PASSWORD"
export KYUKYU_FUZZ_TOTP_SECRET="$KYUKYU_DEMO_CREW_TOTP_SECRET"
mkdir -p "$state/api-fuzz"
status=0
KYUKYU_FUZZ_STATE="$state/api-fuzz/totp-step" python3 "$here/flow.py" "$KYUKYU_STACK_GATEWAY_URL" || status=1
KYUKYU_FUZZ_CREW="$KYUKYU_DEMO_CREW_ID" \
  KYUKYU_FUZZ_PASSWORD="$KYUKYU_DEMO_CREW_PASSWORD" \
  KYUKYU_FUZZ_TOTP_SECRET="$KYUKYU_DEMO_CREW_TOTP_SECRET" \
  KYUKYU_FUZZ_DISPATCH_TOKEN="$(cat "$token_file")" \
  KYUKYU_FUZZ_MAX_EXAMPLES="${KYUKYU_FUZZ_MAX_EXAMPLES:-15}" \
  KYUKYU_FUZZ_MAX_TIME="${KYUKYU_FUZZ_MAX_TIME:-75}" \
  KYUKYU_FUZZ_SESSION_MAX_TIME="${KYUKYU_FUZZ_SESSION_MAX_TIME:-15}" \
  KYUKYU_FUZZ_REPORT_DIR="$state/api-fuzz" \
  "$here/fuzz.sh" "$KYUKYU_STACK_GATEWAY_URL" || status=1

if ! scripts/stack.sh status "$stack" >/dev/null; then
  echo "api-contract: a part of the stack died during the fuzz (logs in $stack/logs)" >&2
  scripts/stack.sh status "$stack" >&2 || true
  status=1
fi
echo "api-contract: $( [ $status -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - started )) s"
exit $status
