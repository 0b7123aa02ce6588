#!/usr/bin/env bash
# Kernel tests: a real Linux kernel (Debian's 6.1 under QEMU, through the project's own VM
# harness in Tests/VM/) writes pools that ThinBackup must read exactly, takes over pools that
# ThinBackup wrote, and runs thin-backup itself against live dm-thin pools and LVM thin
# volumes. See README "Kernel tests".
#
#   sudo scripts/kernel-tests.sh [OUTDIR]     # default OUTDIR: a new /tmp/tb-kernel.XXXXXX
#
# Phases (each VM run is reused by every check on it):
#   1. kernel scenarios: basic, large --seed 1, large --seed 2  -> OUTDIR/fixtures/<name>
#   2. pools for the kernel to take over: built by ThinBackup (Swift "prepare" tests) plus one
#      kernel-written pool                                        -> OUTDIR/takeover/<name>/input
#   3. Tests/VM/fixture/fixture.sh take-over on each              -> OUTDIR/takeover/<name>/out
#   4. the Swift kernel suites on all of it (swift test --filter ThinBackupKitTests.Kernel)
#   5. two live VMs: the built thin-backup runs every guest scenario in
#      Tests/VM/live/scenarios/ against live pools and LVM        -> OUTDIR/live-A, live-B
#      (in the background, beside phases 1-4)
#
# Environment: TB_REUSE=1 (keep a scenario output that already has a manifest.json: for local
# iteration), KERNEL_SEEDS (default "1 2"), TB_LIVE_SCENARIOS (default: all), TB_SKIP_FIXTURES=1
# (only the live VM), SWIFT_BUILD_ARGS (e.g. "--scratch-path .build-k"; the Swift suites' debug
# build), TB_VM_BIN (the thin-backup the live VMs run; default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
KFIX=$ROOT/Tests/VM/fixture/fixture.sh
LIVE=$ROOT/Tests/VM/live/live.sh
SEEDS=${KERNEL_SEEDS:-1 2}
OUT=${1:-$(mktemp -d /tmp/tb-kernel.XXXXXX)}
OUT=$(realpath -m "$OUT")
mkdir -p "$OUT/fixtures" "$OUT/takeover" "$OUT/tmp"
# The suites' pool copies go here and are removed at the end.
export TMPDIR="$OUT/tmp"
# shellcheck disable=SC2206
SWIFT_ARGS=(${SWIFT_BUILD_ARGS:-})

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -E"; fi
# The VM watchdog guards against hangs; on a busy 2-core host the large scenario's guest
# alone took 280 s, close to make-fixture's 300 s default; a take-over of 3 × 128 MiB devices
# took 104 s of its computed 125 s. Generous limits: a real hang still ends.
SCEN_TIMEOUT=${TB_VM_TIMEOUT:-600}

# The harness installs qemu and thin-provisioning-tools itself; it needs python3.
if ! command -v python3 >/dev/null; then
    $SUDO apt-get install -y -qq python3 >/dev/null
fi

phase() { echo "=== kernel-tests [$(( $(date +%s) - START ))s]: $*"; }

# fixture.sh refuses a non-empty OUTDIR it did not create; keep its last lines on failure.
fixture() { # fixture LABEL OUTDIR ARGS...
    local label=$1 dir=$2; shift 2
    if [ "${TB_REUSE:-0}" = 1 ] && [ -f "$dir/manifest.json" ]; then
        echo "reusing $dir"; return 0
    fi
    local t0; t0=$(date +%s)
    if $SUDO "$KFIX" "$dir" "$@" >"$dir.log" 2>&1; then
        echo "ok   $label ($(( $(date +%s) - t0 ))s)"
    else
        echo "FAIL $label ($(( $(date +%s) - t0 ))s), last lines of $dir.log:"
        tail -n 15 "$dir.log" | sed 's/^/    /'
        return 1
    fi
}

phase "building"
swift build --build-tests "${SWIFT_ARGS[@]}" 2>&1 | tail -n 1
# The live VMs run the release binary, Swift's runtime linked in (the one CI's package step
# has just built, so this build is a no-op there): under TCG the debug build spent about half
# of a restore in unoptimised XXH64 (perf), and its 168 MiB initramfs took long to load.
# TB_VM_BIN=PATH runs another binary (e.g. the debug one, to skip the release build locally).
if [ -n "${TB_VM_BIN:-}" ]; then
    VM_BIN=$TB_VM_BIN
else
    phase "building the release binary for the live VMs"
    swift build -c release --static-swift-stdlib --product thin-backup 2>&1 | tail -n 1
    VM_BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/thin-backup"
fi

rc=0
# The live scenarios run in two VM boots in the background, beside the fidelity phases: a
# TCG guest keeps one host core busy and the fidelity phases run one guest at a time, so on
# a 2-core host the whole step takes about half its guests' CPU time. Both boots start once
# the first kernel scenario has filled the shared cache (host packages, the kernel, busybox:
# they never run apt-get or unpack the same .deb at once; live.sh fetches lvm2 and its
# libraries before it boots, and boot B only after A has). The scenarios are split so that
# both boots take about as long: Tests/VM/live/scenarios/costs.txt holds each one's guest
# seconds from the last measured CI run (a scenario not listed counts 120 s); the costliest
# goes first, each to the boot with less so far. TB_LIVE_SCENARIOS picks some, all in boot A.
declare -A LIVE_GROUP=() LIVE_PIDS=() LIVE_COST=([A]=0 [B]=0)
if [ -n "${TB_LIVE_SCENARIOS:-}" ]; then
    LIVE_GROUP[A]=$TB_LIVE_SCENARIOS
else
    COSTS=$ROOT/Tests/VM/live/scenarios/costs.txt
    while read -r cost name; do
        g=$([ "${LIVE_COST[A]}" -le "${LIVE_COST[B]}" ] && echo A || echo B)
        LIVE_GROUP[$g]="${LIVE_GROUP[$g]:-} $name"
        LIVE_COST[$g]=$(( LIVE_COST[$g] + cost ))
    done < <(for f in "$ROOT"/Tests/VM/live/scenarios/[0-9]*.sh; do
                 n=$(basename "$f" .sh)
                 c=$(awk -v n="$n" '$1 == n {print $2}' "$COSTS" 2>/dev/null)
                 echo "${c:-120} $n"
             done | sort -k1,1nr -k2)
fi
start_live() { # start_live A|B: boots that group's VM in the background (once)
    local g=$1
    [ -n "${LIVE_GROUP[$g]:-}" ] && [ -z "${LIVE_PIDS[$g]:-}" ] || return 0
    if [ "$g" = B ] && [ -n "${LIVE_PIDS[A]:-}" ]; then
        # A fetches and unpacks lvm2 and its libraries into the cache first
        local n=0
        until grep -q booting "$OUT/live-A.log" 2>/dev/null || ! kill -0 "${LIVE_PIDS[A]}" 2>/dev/null || [ $n -ge 600 ]; do
            sleep 1; n=$((n + 1))
        done
    fi
    phase "live kernel pools and LVM thin volumes, VM $g in the background:${LIVE_GROUP[$g]}"
    # shellcheck disable=SC2086
    TB_BIN="$VM_BIN" TB_VM_TIMEOUT=${TB_LIVE_TIMEOUT:-3600} $SUDO "$LIVE" "$OUT/live-$g" ${LIVE_GROUP[$g]} >"$OUT/live-$g.log" 2>&1 &
    LIVE_PIDS[$g]=$!
}

fidelity() {
phase "kernel scenarios (QEMU)"
failed=0
TB_VM_TIMEOUT=$SCEN_TIMEOUT fixture basic "$OUT/fixtures/basic" basic || failed=1
start_live A
start_live B
for s in $SEEDS; do
    TB_VM_TIMEOUT=$SCEN_TIMEOUT fixture "large --seed $s" "$OUT/fixtures/large-s$s" large --seed "$s" || failed=1
done
if [ "$failed" = 1 ]; then
    echo "kernel-tests: a kernel scenario failed (see $OUT/fixtures/*.log)" >&2
    return 1
fi

phase "pools for the kernel to take over"
# A pool the kernel wrote itself (basic, with its held metadata snapshot): checks the
# take-over round trip and that ThinBackup reads the kernel's take-over writes.
KB="$OUT/takeover/kernel-basic/input"
if [ ! -f "$KB/devices.txt" ]; then
    mkdir -p "$KB"
    cp --sparse=always "$OUT/fixtures/basic/metadata.img" "$KB/metadata"
    cp --sparse=always "$OUT/fixtures/basic/data.img" "$KB/data"
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))
print(",".join("%d:%d" % (d["dev_id"], d["size_sectors"] * 512) for d in m["final"]["devices"]))' \
        "$OUT/fixtures/basic/manifest.json" >"$KB/devices.txt"
    echo "kernel fixture basic" >"$KB/built-by.txt"
fi
# Pools built by ThinBackup (each test skips, printing why, until the commands it needs exist).
# A failure here (pool read != model, thin_check) fails the step at the end; the pools that
# were prepared still go to the kernel.
prep_rc=0
TB_KERNEL_PREPARE="$OUT/takeover" swift test --skip-build "${SWIFT_ARGS[@]}" \
    --filter KernelTakeOverPrepare >"$OUT/prepare.log" 2>&1 || prep_rc=$?
grep -E '^[✔✘➜]|error:|recorded an issue' "$OUT/prepare.log" || true

phase "kernel take-over of each pool (QEMU)"
for input in "$OUT"/takeover/*/input; do
    case=$(dirname "$input")
    [ -f "$input/devices.txt" ] || continue
    if [ "${TB_REUSE:-0}" = 1 ] && [ -f "$case/out/manifest.json" ]; then
        echo "reusing $case/out"; continue
    fi
    rm -rf "$case/out"
    # A refusal is recorded in out/manifest.json and reported by the Swift suite.
    TB_VM_TIMEOUT=${TB_VM_TIMEOUT:-600} fixture "take-over $(basename "$case")" "$case/out" take-over --metadata "$input/metadata" --data "$input/data" \
        --devices "$(cat "$input/devices.txt")" || true
done

phase "Swift kernel suites"
local src=0
TB_KERNEL_FIXTURES="$OUT/fixtures" TB_KERNEL_TAKEOVER="$OUT/takeover" \
    swift test --skip-build "${SWIFT_ARGS[@]}" --filter 'ThinBackupKitTests.Kernel' --skip KernelTakeOverPrepare || src=$?
if [ "$prep_rc" != 0 ]; then
    echo "kernel-tests: preparing the pools for the kernel failed (see $OUT/prepare.log)" >&2
    src=1
fi
return $src
}
if [ "${TB_SKIP_FIXTURES:-0}" != 1 ]; then
    fidelity || rc=1
fi
start_live A

start_live B
phase "waiting for the live VMs"
for g in A B; do
    pid=${LIVE_PIDS[$g]:-}
    [ -n "$pid" ] || continue
    if wait "$pid"; then
        grep -E '^(ok|FAIL) ' "$OUT/live-$g.log"
    else
        grep -E '^(ok|FAIL) ' "$OUT/live-$g.log" || true
        echo "kernel-tests: live VM $g checks failed; last lines of $OUT/live-$g.log:" >&2
        tail -n 5 "$OUT/live-$g.log" | sed 's/^/    /' >&2
        rc=1
    fi
    echo "live VM $g (${LIVE_GROUP[$g]}): $(cat "$OUT/live-$g/timing.txt" 2>/dev/null)"
    # Each scenario's guest seconds, in the form of Tests/VM/live/scenarios/costs.txt.
    tr -d '\r' < "$OUT/live-$g/console.log" 2>/dev/null | awk '
        /^LP\|INFO\|scenario .* start / { t[$4] = $6 }
        /^LP\|INFO\|scenario .* end / { printf "  guest seconds: %s %d\n", $4, $6 - t[$4] }' FS='[| ]' || true
done

rm -rf "$OUT/tmp"
phase "done (exit $rc); outputs in $OUT"
exit "$rc"
