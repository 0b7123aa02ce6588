#!/usr/bin/env bash
# send/receive benchmark (docs/BENCHMARKS.md, "send/receive").
# Usage: Benchmarks/send_receive.sh [WORKDIR=/dev/shm/tb-bench] [SIZE_GIB=2]
# Builds the release binary, makes a pool with a SIZE_GIB device of mixed data (make_mixed_pool.py)
# and a 5% clustered-change snapshot of it, then in one run times:
#   send (full, incremental) vs thin_dump/thin_delta + dd of each run + zstd -3 (and -3 -T0),
#   receive vs dd writing the same bytes; max RSS of each from /usr/bin/time.
# Needs (beyond scripts/setup.sh): python3-numpy, bc, GNU time (/usr/bin/time); about 6 GiB free in WORKDIR.
source "$(dirname "$0")/lib.sh"
W=${1:-/dev/shm/tb-bench}
SIZE=${2:-2}
workdir "$W"
python3 Benchmarks/make_mixed_pool.py "$W/pool" "$SIZE" 0.05
P=$W/pool
BS=65536
NBLK=$(python3 -c "import json;print(json.load(open('$P/pool.json'))['devices']['1']['size']//$BS)")
DEVBYTES=$((NBLK * BS))

# run NAME BYTES CMD...: times CMD, prints a table row (seconds, MB/s of BYTES, max RSS).
# CPU seconds (user+sys of the command and all its children) are shown too: on a shared machine
# wall time depends on how many runnable processes a command has, CPU time much less.
declare -A SECS CPU
run() {
    local name=$1 bytes=$2; shift 2
    /usr/bin/time -f "%e %U %S %M" -o "$W/t" bash -c "$*" >/dev/null
    read -r secs usr sys rss < "$W/t"
    SECS[$name]=$secs
    CPU[$name]=$(echo "$usr + $sys" | bc -l)
    printf "| %-46s | %7.2f s | %6.0f MB/s | %7.2f s | %5.0f MiB |\n" "$name" "$secs" \
        "$(echo "$bytes / 1000000 / ($secs + 0.0001)" | bc -l)" "${CPU[$name]}" "$(echo "$rss / 1024" | bc -l)"
}
ratio() {
    printf "%-40s wall %.2f×, CPU %.2f×\n" "$1:" "$(echo "${SECS[$2]} / ${SECS[$3]}" | bc -l)" \
        "$(echo "${CPU[$2]} / (${CPU[$3]} + 0.001)" | bc -l)"
}

# dd of each mapped run (full) or changed run (incremental) from the data file, concatenated.
ddruns='while read -r db len; do dd if='"$P"'/data bs=64K skip=$db count=$len status=none; done'
fullruns="thin_dump --dev-id 1 $P/metadata | awk 'match(\$0,/data_begin=\"[0-9]+\"/){d=substr(\$0,RSTART+12,RLENGTH-13); match(\$0,/length=\"[0-9]+\"/); print d, substr(\$0,RSTART+8,RLENGTH-9)} match(\$0,/data_block=\"[0-9]+\"/){print substr(\$0,RSTART+12,RLENGTH-13), 1}'"
incruns="thin_delta --verbose --thin1 1 --thin2 2 $P/metadata | awk '/<different>|<right_only>/{s=1} /<same>|<left_only>/{s=0} s && match(\$0,/(right_)?data_begin=\"[0-9]+\"/){x=substr(\$0,RSTART,RLENGTH); sub(/.*=\"/,\"\",x); sub(/\"/,\"\",x); match(\$0,/length=\"[0-9]+\"/); print x, substr(\$0,RSTART+8,RLENGTH-9)}'"
CHANGED=$(bash -c "$incruns" | awk '{s+=$2} END {print s*65536}')

echo "device: $DEVBYTES bytes; incremental: $CHANGED changed bytes; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| what | wall | rate (device or changed bytes / wall) | CPU (user+sys) | max RSS |"
echo "|---|---|---|---|---|"
run "send full (thin-backup, zstd -3, 2 threads)" $DEVBYTES "$TB send --pool $P --snap 1 --to $W/full.tbs --quiet --json > $W/full.json"
run "pipeline full: thin_dump + dd + zstd -3" $DEVBYTES "$fullruns | $ddruns | zstd -3 -q -c > $W/pipe_full.zst"
run "pipeline full: thin_dump + dd + zstd -3 -T0" $DEVBYTES "$fullruns | $ddruns | zstd -3 -T0 -q -c > $W/pipe_full_t.zst"
D1=$(python3 -c "import json;print(json.load(open('$W/full.json'))['targetDigest'])")
run "send 5% incr. (--base-digest)" $CHANGED "$TB send --pool $P --from 1 --snap 2 --base-digest $D1 --to $W/inc.tbs --quiet --json > $W/inc.json"
run "send 5% incr. (reads the base for its digest)" $CHANGED "$TB send --pool $P --from 1 --snap 2 --to $W/inc2.tbs --quiet"
run "pipeline incr.: thin_delta + dd + zstd -3" $CHANGED "$incruns | $ddruns | zstd -3 -q -c > $W/pipe_inc.zst"
run "pipeline incr.: thin_delta + dd + zstd -3 -T0" $CHANGED "$incruns | $ddruns | zstd -3 -T0 -q -c > $W/pipe_inc_t.zst"

# Receiving pool: empty metadata from thin_restore, data file, sidecar.
mkdir -p "$W/dst"
NDATA=$(grep -o 'nr_data_blocks="[0-9]*"' "$P/pool.xml" | grep -o '[0-9]*')
echo "<superblock uuid=\"\" time=\"0\" transaction=\"0\" flags=\"0\" version=\"2\" data_block_size=\"128\" nr_data_blocks=\"$NDATA\"></superblock>" > "$W/empty.xml"
truncate -s 64M "$W/dst/metadata"; thin_restore -q -i "$W/empty.xml" -o "$W/dst/metadata" 2>/dev/null || thin_restore -i "$W/empty.xml" -o "$W/dst/metadata" >/dev/null
truncate -s $((NDATA * BS)) "$W/dst/data"; echo '{"version":1,"devices":{}}' > "$W/dst/pool.json"
run "receive full" $DEVBYTES "$TB receive --pool $W/dst --from $W/full.tbs --quiet"
run "dd of the device's bytes (bs=1M, fdatasync)" $DEVBYTES "dd if=$P/data of=$W/dd.out bs=1M count=$((DEVBYTES >> 20)) conv=fdatasync status=none"
run "receive 5% incr." $CHANGED "$TB receive --pool $W/dst --from $W/inc.tbs --quiet"
run "dd of the changed bytes (bs=1M, fdatasync)" $CHANGED "dd if=$P/data of=$W/dd2.out bs=1M skip=$((DEVBYTES >> 20)) count=$((CHANGED >> 20)) conv=fdatasync status=none"
echo
D2=$(python3 -c "import json;print(json.load(open('$W/inc.json'))['targetDigest'])")
$TB verify --pool "$W/dst" --dev 2 --digest "$D2" --quiet && echo "received device 2 matches the sender's digest $D2"
cmp <(zstd -d -c "$W/pipe_inc.zst") <(zstd -d -c "$W/pipe_inc_t.zst") && echo "pipeline outputs agree"
echo "stream sizes: full $(stat -c %s $W/full.tbs), pipeline full $(stat -c %s $W/pipe_full.zst); incr. $(stat -c %s $W/inc.tbs), pipeline incr. $(stat -c %s $W/pipe_inc.zst)"
ratio "send full vs pipeline (zstd -3)" "pipeline full: thin_dump + dd + zstd -3" "send full (thin-backup, zstd -3, 2 threads)"
ratio "send full vs pipeline (zstd -3 -T0)" "pipeline full: thin_dump + dd + zstd -3 -T0" "send full (thin-backup, zstd -3, 2 threads)"
ratio "send incr. vs pipeline (zstd -3)" "pipeline incr.: thin_delta + dd + zstd -3" "send 5% incr. (--base-digest)"
ratio "send incr. vs pipeline (zstd -3 -T0)" "pipeline incr.: thin_delta + dd + zstd -3 -T0" "send 5% incr. (--base-digest)"
ratio "receive full: dd / receive" "dd of the device's bytes (bs=1M, fdatasync)" "receive full"
ratio "receive incr.: dd / receive" "dd of the changed bytes (bs=1M, fdatasync)" "receive 5% incr."
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
