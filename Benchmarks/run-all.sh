#!/usr/bin/env bash
# Every throughput and start-up comparison of issue 15, in one run, as one table of ratios
# (docs/BENCHMARKS.md, "All comparisons").
#
#   Benchmarks/run-all.sh [WORKDIR=/dev/shm/tb-all] [SIZE_MIB=512] [RUNS=3] [DELTA_BLOCKS=1000000]
#
# Builds the release binary (--static-swift-stdlib, as shipped; TB=path skips the build), makes a
# pool with a SIZE_MIB device of mixed data and a 5% clustered-change snapshot of it
# (make_mixed_pool.py), and times, each pair A B A B … RUNS times after one warm-up pair
# (paired.py: medians, and the median of the per-pair ratios B/A, so above 1 means thin-backup is
# faster):
#   full send                vs zstd -3 -T0 alone over the device's bytes, and vs thin_dump + dd + zstd -3 -T0
#   incremental send         vs thin_delta + dd + zstd -3 -T0 (the changed runs)
#   full / incr. receive     vs dd bs=1M conv=fdatasync of the same bytes
#   restore (full + 6 incr.) vs dd of the device's bytes (the newest backup of a 7-backup chain, into a file)
#   process start            thin-backup --version vs thin_delta -V
#   delta --changes-only     vs thin_delta, DELTA_BLOCKS mapped blocks, 1% clustered change (make_delta_pool.sh)
# Receives, restores and their dd references write to DST (default /var/tmp/tb-all-dst, on the disk:
# "at the disk's speed"; DST=/dev/shm/... measures CPU-bound copies instead); sources stay in WORKDIR.
# Each of those runs starts after a `sync`, untimed, so that no run pays for the writeback another
# left (the full receives' hundreds of MB once made the next pair's flushes wait).
# Every output is checked against its reference: the streams received and compared by content
# digest, decompressed outputs and restored files by cmp, the delta listing by cmp with thin_delta's.
# Needs (beyond scripts/setup.sh): python3-numpy; about 6 × SIZE_MIB of free space in WORKDIR.
TB_BUILD_FLAGS=--static-swift-stdlib
source "$(dirname "$0")/lib.sh"
W=${1:-/dev/shm/tb-all}
SIZE_MIB=${2:-512}
RUNS=${3:-3}
DELTA_BLOCKS=${4:-1000000}
workdir "$W"
D=${DST:-/var/tmp/tb-all-dst}
rm -rf "$D"; mkdir -p "$D"
trap 'rm -rf "$W" "$D"' EXIT
R=$W/results.jsonl
pair() { python3 Benchmarks/paired.py "$R" "$@"; }
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }

echo "== pools (load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
python3 Benchmarks/make_mixed_pool.py "$W/pool" "$(echo "$SIZE_MIB / 1024" | bc -l)" 0.05
P=$W/pool
BS=65536
NBLK=$(python3 -c "import json;print(json.load(open('$P/pool.json'))['devices']['1']['size']//$BS)")
DEVBYTES=$((NBLK * BS))
# Device 1 maps virtual block i to data block i: its bytes are the data file's first NBLK blocks.
head -c "$DEVBYTES" "$P/data" > "$W/dev1.raw"
# Runs (data block, length) of a full send (thin_dump) and of the incremental (thin_delta).
ddruns='while read -r db len; do dd if='"$P"'/data bs=64K skip=$db count=$len status=none; done'
fullruns="thin_dump --dev-id 1 $P/metadata | awk 'match(\$0,/data_begin=\"[0-9]+\"/){d=substr(\$0,RSTART+12,RLENGTH-13); match(\$0,/length=\"[0-9]+\"/); print d, substr(\$0,RSTART+8,RLENGTH-9)} match(\$0,/data_block=\"[0-9]+\"/){print substr(\$0,RSTART+12,RLENGTH-13), 1}'"
# A <different> range names left_data_begin before right_data_begin: the new blocks are the right's
# (before 2026-12-03 this matched left_data_begin, so the pipeline compressed the base's old blocks).
incruns="thin_delta --verbose --thin1 1 --thin2 2 $P/metadata | awk '/<different>|<right_only>/{s=1} /<same>|<left_only>/{s=0} s && match(\$0,/(right_data_begin| data_begin)=\"[0-9]+\"/){x=substr(\$0,RSTART,RLENGTH); sub(/.*=\"/,\"\",x); sub(/\"/,\"\",x); match(\$0,/length=\"[0-9]+\"/); print x, substr(\$0,RSTART+8,RLENGTH-9)}'"
bash -c "$incruns | $ddruns" > "$W/changed.raw"
# The pipeline's input checked independently: device 2's bytes (thin_dump) at the changed virtual ranges.
bash -c "${fullruns/--dev-id 1/--dev-id 2} | $ddruns" > "$W/dev2.raw"
incvirt="thin_delta --verbose --thin1 1 --thin2 2 $P/metadata | awk '/<different>|<right_only>/{s=1} /<same>|<left_only>/{s=0} s && match(\$0,/ begin=\"[0-9]+\"/){x=substr(\$0,RSTART+8,RLENGTH-9); match(\$0,/length=\"[0-9]+\"/); print x, substr(\$0,RSTART+8,RLENGTH-9)}'"
bash -c "$incvirt | while read -r v len; do dd if=$W/dev2.raw bs=64K skip=\$v count=\$len status=none; done" | cmp - "$W/changed.raw" \
    || fail "the incremental pipeline's input is not device 2's changed blocks"
rm -f "$W/dev2.raw"
CHANGED=$(stat -c %s "$W/changed.raw")

echo "== send"
pair "full send vs zstd -3 -T0 alone (same bytes)" "≥ 1.2" "$RUNS" \
    "$TB send --pool $P --snap 1 --to $W/full.tbs --force --quiet --json > $W/full.json" \
    "zstd -3 -T0 -q -c $W/dev1.raw > $W/zstd.zst"
pair "full send vs thin_dump + dd + zstd -3 -T0" "> 1" "$RUNS" \
    "$TB send --pool $P --snap 1 --to $W/full.tbs --force --quiet" \
    "$fullruns | $ddruns | zstd -3 -T0 -q -c > $W/pipe_full.zst"
D1=$(python3 -c "import json;print(json.load(open('$W/full.json'))['targetDigest'])")
pair "incr. send (5%) vs thin_delta + dd + zstd -3 -T0" "≥ 2" "$RUNS" \
    "$TB send --pool $P --from 1 --snap 2 --base-digest $D1 --to $W/inc.tbs --force --quiet --json > $W/inc.json" \
    "$incruns | $ddruns | zstd -3 -T0 -q -c > $W/pipe_inc.zst"
D2=$(python3 -c "import json;print(json.load(open('$W/inc.json'))['targetDigest'])")
zstd -d -q -c "$W/zstd.zst" | cmp - "$W/dev1.raw" || fail "zstd output"
zstd -d -q -c "$W/pipe_full.zst" | cmp - "$W/dev1.raw" || fail "full pipeline output"
zstd -d -q -c "$W/pipe_inc.zst" | cmp - "$W/changed.raw" || fail "incremental pipeline output"
SIZES=$(python3 -c "import os; s=lambda f: os.path.getsize('$W/'+f); print(f\"stream sizes: full send {s('full.tbs')} B, zstd alone {s('zstd.zst')} B, full pipeline {s('pipe_full.zst')} B (send/pipeline {s('full.tbs')/s('pipe_full.zst'):.4f}); incremental {s('inc.tbs')} B, pipeline {s('pipe_inc.zst')} B ({s('inc.tbs')/s('pipe_inc.zst'):.4f})\")")
echo "$SIZES"

echo "== receive"
NDATA=$(grep -o 'nr_data_blocks="[0-9]*"' "$P/pool.xml" | grep -o '[0-9]*')
"$TB" pool create --pool "$D/dst" --data-size $(( (NDATA * 3 + 64) * BS )) --metadata-size 64M >/dev/null
"$TB" receive --pool "$D/dst" --from "$W/full.tbs" --quiet
pair "full receive vs dd (fdatasync) of the device's bytes" "≥ 0.95" "$RUNS" \
    "$TB receive --pool $D/dst --from $W/full.tbs --as 100 --quiet" \
    "dd if=$W/dev1.raw of=$D/dd.out bs=1M conv=fdatasync status=none" \
    --cleanup-a "$TB pool delete --pool $D/dst --dev 100" --cleanup-b "rm -f $D/dd.out" --setup-a sync --setup-b sync
pair "incr. receive vs dd (fdatasync) of the changed bytes" "≥ 0.9" "$RUNS" \
    "$TB receive --pool $D/dst --from $W/inc.tbs --as 200 --quiet" \
    "dd if=$W/changed.raw of=$D/dd.out bs=1M conv=fdatasync status=none" \
    --cleanup-a "$TB pool delete --pool $D/dst --dev 200" --cleanup-b "rm -f $D/dd.out" --setup-a sync --setup-b sync
"$TB" receive --pool "$D/dst" --from "$W/inc.tbs" --as 2 --quiet
"$TB" verify --pool "$D/dst" --dev 1 --digest "$D1" --quiet || fail "received device 1"
"$TB" verify --pool "$D/dst" --dev 2 --digest "$D2" --quiet || fail "received device 2"
"$TB" pool read --pool "$D/dst" --dev 1 --to "$W/got.raw"
cmp "$W/got.raw" "$W/dev1.raw" || fail "received device 1's bytes"
rm -f "$W/got.raw"

echo "== restore (a chain of a full backup and 6 increments)"
# Device 1 of the source pool, backed up 7 times into a folder repository; between backups 5% of
# its blocks are rewritten in clusters (slices of the pool's mixed data).
"$TB" pool resize --pool "$P" --data-size $(( (NDATA + NBLK / 2 + 64) * BS )) >/dev/null
for night in 0 1 2 3 4 5 6; do
    if [ "$night" -gt 0 ]; then
        python3 - "$P/data" "$NBLK" "$night" "$W/extent" <<'PY' | while read -r off; do "$TB" pool write --pool "$P" --dev 1 --from "$W/extent.$off" --offset "$off" 2>/dev/null; done
import random, sys
data, n, night, stem = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(20261127 + night)
left = n // 20
with open(data, "rb") as f:
    while left > 0:
        k = min(left, rng.randint(8, 64)); left -= k
        v = rng.randrange(0, n - k)
        f.seek(rng.randrange(0, n - k) * 65536)
        open(f"{stem}.{v * 65536}", "wb").write(f.read(k * 65536))
        print(v * 65536)
PY
        rm -f "$W"/extent.*
    fi
    THIN_BACKUP_NOW="2026-03-0$((night + 1))T02:30:00Z" "$TB" backup --pool "$P" --dev 1 --repo "$W/repo" --quiet
done
bash -c "$fullruns | $ddruns" > "$W/dev1-now.raw"
pair "restore newest of 7 (full + 6 incr.) into a file vs dd" "≥ 0.8" "$RUNS" \
    "$TB restore --repo $W/repo --dev 1 --to $D/restored.img --quiet" \
    "dd if=$W/dev1-now.raw of=$D/dd.out bs=1M conv=fdatasync status=none" \
    --cleanup-b "rm -f $D/dd.out" --setup-a "rm -f $D/restored.img; sync" --setup-b sync
cmp "$D/restored.img" "$W/dev1-now.raw" || fail "restored file"
rm -f "$W"/*.raw "$D/restored.img"

echo "== process start"
pair "process start: --version vs thin_delta -V (CPU)" "≤ 5 ms, ≤ 15 MiB" $((RUNS * 10)) "$TB --version" "thin_delta -V"
"$TB" --version | grep -q '^thin-backup ' || fail "--version output"

echo "== delta --changes-only ($DELTA_BLOCKS blocks, 1% clustered)"
rm -rf "$W/pool" "$D/dst" "$W/repo"
mkdir -p "$W/delta"
Benchmarks/make_delta_pool.sh "$W/delta" "$DELTA_BLOCKS" "$TB" >/dev/null
M=$W/delta/pool/metadata
thin_delta --snap1 2 --snap2 1 "$M" | grep -v '^    <same ' > "$W/td.xml"
"$TB" delta --metadata "$M" --thin1 2 --thin2 1 --changes-only | cmp - "$W/td.xml" || fail "delta --changes-only output"
pair "delta --changes-only vs thin_delta" "≥ 20" $((RUNS * 3)) \
    "$TB delta --metadata $M --thin1 2 --thin2 1 --changes-only" "thin_delta --snap1 2 --snap2 1 $M"

echo
echo "$SIZES"
echo "All outputs matched their references. device: $DEVBYTES bytes; changed: $CHANGED bytes;" \
     "$(nproc) cores; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$R" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print("| comparison (A = thin-backup, B = reference) | A wall | B wall | A CPU | B CPU | A max RSS | speed B/A (wall, min–max) | CPU B/A | goal |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    ms = lambda s: f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
    print(f"| {r['name']} | {ms(r['wallA'])} | {ms(r['wallB'])} | {ms(r['cpuA'])} | {ms(r['cpuB'])} | {r['rssA']:.1f} MiB "
          f"| **{r['wallRatio']:.2f}×** ({r['wallMin']:.2f}–{r['wallMax']:.2f}) | {r['cpuRatio']:.2f}× | {r['goal']} |")
PY
