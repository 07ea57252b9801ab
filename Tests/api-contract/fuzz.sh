#!/usr/bin/env bash
# Property-based fuzz of a running gateway against docs/gateway-api.yaml (schemathesis).
#
# Usage: Tests/api-contract/fuzz.sh <base-url>        e.g. http://127.0.0.1:8443
# Needs: KYUKYU_FUZZ_CREW, KYUKYU_FUZZ_PASSWORD, KYUKYU_FUZZ_TOTP_SECRET (a crew account of that gateway).
# Optional: KYUKYU_FUZZ_MAX_EXAMPLES (per operation, default 25), KYUKYU_FUZZ_MAX_TIME (seconds per phase, default
#   240), KYUKYU_FUZZ_SESSION_MAX_TIME (seconds for each of phases 2 and 3, one operation each; default the same),
#   KYUKYU_FUZZ_CA (CA bundle for https, e.g. <state>/tls/gateway.cert.pem, or "false"),
#   KYUKYU_FUZZ_DISPATCH_TOKEN (fuzz the dispatch route with it), KYUKYU_FUZZ_REPORT_DIR (default
#   state/api-fuzz), KYUKYU_FUZZ_SEED.
#
# Auth goes through the document's security schemes (a generated schemathesis.toml), not raw headers.
# Checks every response: no 5xx (not_a_server_error); status codes, content types, headers and bodies as the
# document says (the *_conformance checks); invalid input refused with a 4xx (negative_data_rejection); auth not
# ignored (ignored_auth). Phases:
#   1. every crew and public route, signed in (cookie + X-CSRF-Token), except the routes that end or lock the
#      session and the event stream (which stays open);
#   2. lock, unlock and sign-out, each with a fresh session;
#   3. the dispatch route with its bearer token (only when KYUKYU_FUZZ_DISPATCH_TOKEN is set).
# Exits non-zero when any phase finds a failure; reports (JUnit) go to the report folder.
set -euo pipefail

if [ $# -ne 1 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
base="${1%/}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
spec="$root/docs/gateway-api.yaml"
for variable in KYUKYU_FUZZ_CREW KYUKYU_FUZZ_PASSWORD KYUKYU_FUZZ_TOTP_SECRET; do
  if [ -z "${!variable:-}" ]; then echo "fuzz: set $variable" >&2; exit 2; fi
done
command -v st >/dev/null || { echo "fuzz: schemathesis is missing: pip install -r $here/requirements.txt" >&2; exit 2; }

max_examples="${KYUKYU_FUZZ_MAX_EXAMPLES:-25}"
max_time="${KYUKYU_FUZZ_MAX_TIME:-240}"
session_max_time="${KYUKYU_FUZZ_SESSION_MAX_TIME:-$max_time}"
report_dir="${KYUKYU_FUZZ_REPORT_DIR:-$root/state/api-fuzz}"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
export KYUKYU_FUZZ_STATE="$report_dir/totp-step"
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance"
checks+=",response_schema_conformance,negative_data_rejection,ignored_auth"
tls=()
case "$base" in
  https:*) [ -n "${KYUKYU_FUZZ_CA:-}" ] && tls=(--tls-verify "$KYUKYU_FUZZ_CA") ;;
esac
seed=()
[ -n "${KYUKYU_FUZZ_SEED:-}" ] && seed=(--seed "$KYUKYU_FUZZ_SEED")

# Writes the schemathesis configuration: the security schemes of the document get their values from the
# environment (so a negative test that drops the cookie really drops it, and ignored_auth knows what auth is).
write_config() {
  local config="$report_dir/schemathesis.toml"
  {
    echo '[auth]'
    echo 'auto-signup = false'
    if [ -n "${KYUKYU_SESSION_COOKIE:-}" ]; then
      echo '[auth.openapi.crewSession]'
      echo 'api_key = "${KYUKYU_SESSION_COOKIE}"'
      echo '[auth.openapi.csrfToken]'
      echo 'api_key = "${KYUKYU_CSRF_TOKEN}"'
    fi
    if [ -n "${KYUKYU_FUZZ_DISPATCH_TOKEN:-}" ]; then
      echo '[auth.openapi.dispatchToken]'
      echo 'bearer = "${KYUKYU_FUZZ_DISPATCH_TOKEN}"'
    fi
  } > "$config"
  echo "$config"
}

# Runs schemathesis with a hard time limit (its own --max-time plus a margin for the last requests).
run_st() {
  local name="$1" seconds="$2"
  shift 2
  echo "== fuzz phase: $name"
  # From the report folder, so that schemathesis keeps its cache (.schemathesis/) there, not in the checkout.
  (cd "$report_dir" && timeout --kill-after=10 $((seconds + 60)) \
    st --no-color --config-file "$(write_config)" run "$spec" --url "$base" \
      --checks "$checks" \
      --phases examples,coverage,fuzzing \
      --max-examples "$max_examples" --max-time "$seconds" \
      --request-timeout 10 --workers 2 \
      ${tls[@]+"${tls[@]}"} ${seed[@]+"${seed[@]}"} \
      --report junit --report-junit-path "$report_dir/$name.xml" \
      "$@")
}

sign_in() {
  local assignments
  assignments="$(python3 "$here/signin.py" "$base")"
  eval "$assignments"
  export KYUKYU_SESSION_COOKIE KYUKYU_CSRF_TOKEN
}

failed=0

sign_in
run_st crew "$max_time" \
  --exclude-operation-id signOut --exclude-operation-id lockSession --exclude-operation-id unlockSession \
  --exclude-operation-id streamIncidentEvents --exclude-operation-id createDispatchIncident \
  || failed=1

for operation in lockSession unlockSession signOut; do
  sign_in
  run_st "$operation" "$session_max_time" --include-operation-id "$operation" \
    || failed=1
done

if [ -n "${KYUKYU_FUZZ_DISPATCH_TOKEN:-}" ]; then
  export KYUKYU_FUZZ_DISPATCH_TOKEN
  run_st dispatch "$session_max_time" --include-operation-id createDispatchIncident \
    || failed=1
fi

if [ "$failed" -ne 0 ]; then
  echo "fuzz: failures found (reports in $report_dir)" >&2
  exit 1
fi
echo "fuzz: no failures (reports in $report_dir)"
