#!/usr/bin/env bash
# Memory at scale (issue #15): peak RSS of each command on a userspace pool of 2^30 data blocks
# of 64 KiB (64 TiB, sparse data file) holding MAPPED mapped data blocks.
#
# Usage: Benchmarks/scale.sh [MAPPED] [BINARY]
#   MAPPED  mapped data blocks (default 1000000; the issue's case is 10000000)
#   BINARY  default .build/release/thin-backup
# Environment: DATA_BLOCKS (default 2^30), CHANGED (blocks device 2 differs in, default 10000),
#   SCALE_DIR (work folder; default a new folder in /dev/shm: ext4 caps a file at 16 TiB, tmpfs
#   holds the sparse 64 TiB data file; only written blocks take memory).
#
# The pool is built by thin_restore from generated XML (Benchmarks/make_scale_xml.py): device 1 maps
# MAPPED blocks in runs scattered over the whole data device, device 2 is device 1 with CHANGED
# blocks remapped (time 1). The mapped data blocks are holes (zeros): the commands read them
# as zero blocks. Each command runs under /usr/bin/time -v; the table gives its maximum RSS and
# wall time. The goal: send, receive, delta, pool write, backup under 128 MiB; pool check and
# pool ls under 1 GiB. A second, new pool of DATA_BLOCKS blocks is created (pool create), given
# a device, written and sent. At the end: thin_check on both pools, the written and received
# devices read back as their input, the streams verify, delta finds device 2's changes.
set -euo pipefail
cd "$(dirname "$0")/.."
MAPPED=${1:-1000000}
TB=$(readlink -f "${2:-.build/release/thin-backup}")
DATA_BLOCKS=${DATA_BLOCKS:-$((1 << 30))}
CHANGED=${CHANGED:-10000}
[ -x "$TB" ] || swift build -c release --product thin-backup >/dev/null
for t in thin_restore thin_check /usr/bin/time python3; do
    command -v "$t" >/dev/null || { echo "scale.sh: $t is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
if [ -n "${SCALE_DIR:-}" ]; then W=$SCALE_DIR; mkdir -p "$W"; else W=$(mktemp -d /dev/shm/tb-scale.XXXXXX); trap 'rm -rf "$W"' EXIT; fi
P=$W/pool
rm -rf "$P" "$W/small" "$W/new" "$W/repo" "$W"/*.tbs
mkdir -p "$P"

# --- the pool -----------------------------------------------------------------------------
t0=$(date +%s)
python3 Benchmarks/make_scale_xml.py "$DATA_BLOCKS" "$MAPPED" "$CHANGED" > "$W/pool.xml" 2> "$W/gen.txt"
VBLOCKS=$(sed -n 's/^virtual_blocks=\([0-9]*\).*/\1/p' "$W/gen.txt")
truncate -s 0 "$P/metadata"
truncate -s $((4161600 * 4096)) "$P/metadata"          # the largest usable metadata device
thin_restore -q -i "$W/pool.xml" -o "$P/metadata"
truncate -s $((DATA_BLOCKS * 65536)) "$P/data"
printf '{"version":1,"devices":{"1":{"size":%d},"2":{"size":%d}}}\n' $((VBLOCKS * 65536)) $((VBLOCKS * 65536)) > "$P/pool.json"
echo "pool: $DATA_BLOCKS data blocks, $MAPPED mapped (+$CHANGED in device 2), metadata $(du -m "$P/metadata" | cut -f1) MiB used, built in $(( $(date +%s) - t0 )) s"

# A small pool and stream for receive (the big pool is the target; the stream's size does not matter).
"$TB" pool create --pool "$W/small" --data-size 64M >/dev/null
"$TB" pool create-thin --pool "$W/small" --dev 7 --size 32M
head -c $((32 << 20)) /dev/urandom > "$W/input"
head -c $((1 << 20)) "$W/input" > "$W/input1"
"$TB" pool write --pool "$W/small" --dev 7 --from "$W/input"
"$TB" send --pool "$W/small" --snap 7 --to "$W/small7.tbs" >/dev/null

# --- the commands ---------------------------------------------------------------------------
rows=()
run() {  # run NAME LIMIT_MIB CMD...
    local name=$1 limit=$2; shift 2
    if ! /usr/bin/time -v -o "$W/time.txt" "$@" > "$W/out.txt" 2> "$W/err.txt"; then
        echo "scale.sh: $name failed:" >&2; cat "$W/err.txt" >&2; exit 1
    fi
    local kb wall
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$W/time.txt")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$W/time.txt")
    local mib=$(( (kb + 1023) / 1024 )) verdict=ok
    [ "$mib" -le "$limit" ] || verdict="OVER ${limit} MiB"
    rows+=("$(printf '| %-34s | %8d | %9s | %s |' "$name" "$mib" "$wall" "$verdict")")
    echo "${rows[-1]}" >&2
}
run "pool info" 128 "$TB" pool info --pool "$P"
run "delta 1 2 --changes-only" 128 "$TB" delta --pool "$P" --thin1 1 --thin2 2 --changes-only
run "send --from 1 --snap 2 (incremental)" 128 "$TB" send --pool "$P" --from 1 --snap 2 --to "$W/inc.tbs"
run "pool create-thin 3 (32 MiB)" 128 "$TB" pool create-thin --pool "$P" --dev 3 --size 32M
run "pool write 32 MiB into device 3" 128 "$TB" pool write --pool "$P" --dev 3 --from "$W/input"
run "receive a 32 MiB full stream" 128 "$TB" receive --pool "$P" --from "$W/small7.tbs"
run "backup device 3 (full)" 128 "$TB" backup --pool "$P" --dev 3 --repo "$W/repo"
run "pool write 1 MiB into device 2" 128 "$TB" pool write --pool "$P" --dev 2 --from "$W/input1" --offset $(( (VBLOCKS / 2) * 65536 )) --commit-every 1M
run "pool create ($DATA_BLOCKS blocks of 64 KiB)" 128 "$TB" pool create --pool "$W/new" --data-size $((DATA_BLOCKS * 64))K
run "pool create-thin 1 (new pool)" 128 "$TB" pool create-thin --pool "$W/new" --dev 1 --size 32M
run "pool write 32 MiB (new pool)" 128 "$TB" pool write --pool "$W/new" --dev 1 --from "$W/input"
run "send device 1 (new pool, full)" 128 "$TB" send --pool "$W/new" --snap 1 --to "$W/new1.tbs"
run "pool ls" 1024 "$TB" pool ls --pool "$P"
run "pool check" 1024 "$TB" pool check --pool "$P"
thin_check -q "$P/metadata" || { echo "scale.sh: thin_check fails on the pool after the commands" >&2; exit 1; }
thin_check -q "$W/new/metadata" || { echo "scale.sh: thin_check fails on the new 64 TiB pool" >&2; exit 1; }
# The outputs: what was written and received reads back, the streams verify, delta saw the change.
check_read() {  # check_read POOL DEV EXPECTED
    "$TB" pool read --pool "$1" --dev "$2" --to "$W/back" >/dev/null
    cmp -n "$(stat -c %s "$3")" "$W/back" "$3" || { echo "scale.sh: device $2 of $1 does not read back as $3" >&2; exit 1; }
    rm -f "$W/back"
}
check_read "$P" 3 "$W/input"
check_read "$P" 7 "$W/input"
check_read "$W/new" 1 "$W/input"
for s in "$W/inc.tbs" "$W/new1.tbs"; do
    "$TB" verify --stream "$s" >/dev/null || { echo "scale.sh: $s does not verify" >&2; exit 1; }
done
"$TB" delta --pool "$P" --thin1 1 --thin2 2 --changes-only | grep -q . || { echo "scale.sh: delta 1 2 found no change" >&2; exit 1; }

echo "binary: $TB"
echo "| command | max RSS MiB | wall | goal |"
echo "|---|---:|---:|---|"
printf '%s\n' "${rows[@]}"
