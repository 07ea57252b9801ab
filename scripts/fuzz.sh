#!/usr/bin/env bash
# make fuzz: builds the libFuzzer harnesses (Tests/fuzz, a package of their own, with -sanitize=fuzzer,address)
# and runs each for FUZZ_SECONDS from a copy of its committed corpus (docs/fuzzing.md). The working corpus, each
# run's log (fuzz.log is the latest) and any crash, leak or timeout input go to state/fuzz/<harness>/; the committed
# corpus is never written.
# Exits non-zero when a harness finds anything.
#
#   FUZZ_SECONDS=600 (each harness)   FUZZ_HARNESSES="fuzz-card-tlv fuzz-vpcd" (default: all)
#   FUZZ_CONFIG=debug|release (default debug)   FUZZ_BUILD=0 to run what was built
#   FUZZ_ARGS="-seed=1" (more libFuzzer flags). One harness at a time, one process each, under nice.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
FUZZ_CONFIG=${FUZZ_CONFIG:-debug}
FUZZ_BUILD=${FUZZ_BUILD:-1}
SCRATCH=.build-fuzz
STATE=state/fuzz
ALL="fuzz-onshi-xml fuzz-card-tlv fuzz-card-certificate fuzz-receiver-fhir fuzz-gateway-json fuzz-vpcd"
HARNESSES=${FUZZ_HARNESSES:-$ALL}

# The longest input each harness takes: a little over its largest seed, far under the parsers' own limits.
max_len() {
    case "$1" in
        fuzz-onshi-xml) echo 16384 ;;
        fuzz-card-tlv) echo 1024 ;;
        fuzz-card-certificate) echo 4096 ;;
        fuzz-receiver-fhir) echo 32768 ;;
        fuzz-gateway-json) echo 2048 ;;
        fuzz-vpcd) echo 2048 ;;
        *) echo "unknown harness $1" >&2; exit 64 ;;
    esac
}

# Flags one harness needs. fuzz-onshi-xml: Foundation's XMLParser leaks a little on every malformed document
# (suppressed in Tests/fuzz/lsan.supp), so every such input would cost a full leak scan (40 runs/s instead of 1,700).
extra_flags() {
    case "$1" in
        fuzz-onshi-xml) echo "-detect_leaks=0" ;;
        *) echo "" ;;
    esac
}

build_flags=(-c "$FUZZ_CONFIG" --package-path Tests/fuzz --scratch-path "$SCRATCH"
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -g)
if [ "$FUZZ_BUILD" = 1 ]; then
    nice -n 10 "$SWIFT" build "${build_flags[@]}"
fi
BIN=$("$SWIFT" build "${build_flags[@]}" --show-bin-path)

mkdir -p "$STATE"
export KYUKYU_FUZZ_PKI="$PWD/$STATE/pki"
# Crashes are reported by libFuzzer and ASan, not by Swift's backtracer (which reads freed memory under ASan).
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS="suppressions=$PWD/Tests/fuzz/lsan.supp:print_suppressions=0"
status=0
for h in $HARNESSES; do
    dir="$STATE/$h"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -n Tests/fuzz/corpus/"$h"/* "$dir/corpus/" 2>/dev/null || true
    # The inputs that once failed (Tests/fuzz/regressions/<harness>) are replayed first, as a second, read-only corpus.
    regressions=()
    [ -d "Tests/fuzz/regressions/$h" ] && regressions=("Tests/fuzz/regressions/$h")
    dict=()
    [ -f "Tests/fuzz/dictionaries/$h.dict" ] && dict=(-dict="Tests/fuzz/dictionaries/$h.dict")
    # Each run keeps its log (fuzz-<time>.log); fuzz.log points at the latest.
    log="fuzz-$(date -u +%Y%m%dT%H%M%SZ).log"
    ln -sfn "$log" "$dir/fuzz.log"
    echo "== $h: ${FUZZ_SECONDS}s, max_len $(max_len "$h"), log $dir/$log, from $(date -u +%FT%TZ)"
    touch "$dir/.run-start"
    set +e
    nice -n 10 "$BIN/$h" "$dir/corpus" "${regressions[@]}" "${dict[@]}" \
        -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$h")" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
        $(extra_flags "$h") ${FUZZ_ARGS:-} >"$dir/$log" 2>&1
    rc=$?
    set -e
    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)|stat::' "$dir/$log" | tail -8 || true
    # Only this run's findings count: an earlier run's stay in artifacts/ until someone removes them.
    found=$(find "$dir/artifacts" -type f -newer "$dir/.run-start" | wc -l)
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        echo "!! $h: exit $rc, $found input(s) in $dir/artifacts" >&2
        status=1
    fi
done
exit $status
