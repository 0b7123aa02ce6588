#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/, -sanitize=fuzzer, own scratch path) and runs each for
# FUZZ_SECONDS (default 30) on a copy of its committed seed corpus (Fuzz/corpus/TARGET).
# Exit 0 when no target crashed; a crash leaves its input in .build-fuzz/artifacts/ and fails.
# Usage: scripts/fuzz.sh [TARGET...]   (targets: FuzzStream FuzzMetadata FuzzHTTP)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(FuzzStream FuzzMetadata FuzzHTTP)
SCRATCH=.build-fuzz
mkdir -p "$SCRATCH/artifacts" "$SCRATCH/work"
export SWIFT_BACKTRACE=enable=no   # else Swift's backtracer eats the trap and libFuzzer writes no artifact
status=0
for t in "${TARGETS[@]}"; do
    swift build -c release -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link --scratch-path "$SCRATCH" --product "$t" >"$SCRATCH/build-$t.log" 2>&1 \
        || { echo "fuzz: building $t failed (see $SCRATCH/build-$t.log)" >&2; tail -20 "$SCRATCH/build-$t.log" >&2; exit 1; }
    seeds="Fuzz/corpus/$t"
    work="$SCRATCH/work/$t"
    mkdir -p "$work"
    cp -n "$seeds"/* "$work"/ 2>/dev/null || true
    bin="$SCRATCH/release/$t"
    log="$SCRATCH/run-$t.log"
    echo "fuzz: $t for ${SECONDS_PER_TARGET}s ($(ls "$seeds" | wc -l) seeds)"
    if "$bin" "$work" "$seeds" -max_total_time="$SECONDS_PER_TARGET" -max_len=200000 -timeout=10 -rss_limit_mb=2048 \
           -artifact_prefix="$SCRATCH/artifacts/$t-" -print_final_stats=1 >"$log" 2>&1; then
        :
    else
        echo "fuzz: $t FAILED:" >&2
        grep -E "ERROR|SUMMARY|deadly|Test unit written|Fatal error" "$log" | head -20 >&2
        status=1
    fi
    runs=$(grep -Eo "stat::number_of_executed_units: *[0-9]+" "$log" | grep -Eo "[0-9]+$" || echo "?")
    cov=$(grep -Eo "cov: [0-9]+" "$log" | tail -1 | grep -Eo "[0-9]+" || echo "?")
    echo "fuzz: $t: $runs executions, coverage $cov edges, corpus $(ls "$work" | wc -l) inputs"
done
exit $status
