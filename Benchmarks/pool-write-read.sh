#!/usr/bin/env bash
# Sequential write/read through the userspace pool vs dd on a plain file, same bytes, one run.
# Usage: Benchmarks/pool-write-read.sh [SIZE_MIB] [BINARY]   (default 1024 MiB, a release build made here)
TB=${2:-${TB:-}}
source "$(dirname "$0")/lib.sh"
MIB=${1:-1024}
workdir "$(mktemp -d "${TMPDIR:-/tmp}/tb-bench.XXXXXX")"
WORK=$W
head -c $((MIB << 20)) /dev/urandom > "$WORK/src"
cat "$WORK/src" > /dev/null; sync

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

# Writes (each ends with fsync: the pool commits, dd uses conv=fsync).
"$TB" pool create --pool "$WORK/pool" --data-size $(( (MIB + 64) << 20 )) --block-size 64k >/dev/null
"$TB" pool create-thin --pool "$WORK/pool" --dev 1 --size $((MIB << 20))
cat "$WORK/src" > /dev/null; sync
t0=$(now); dd if="$WORK/src" of="$WORK/plain" bs=8M conv=fsync status=none; t1=$(now)
dd_w=$(secs "$t0" "$t1")
cat "$WORK/src" > /dev/null; sync
t0=$(now); "$TB" pool write --pool "$WORK/pool" --dev 1 --from "$WORK/src"; t1=$(now)
tb_w=$(secs "$t0" "$t1")

# Reads (page cache dropped where allowed; otherwise both read warm).
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(now); dd if="$WORK/plain" of="$WORK/out-dd" bs=8M status=none; t1=$(now)
dd_r=$(secs "$t0" "$t1")
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(now); "$TB" pool read --pool "$WORK/pool" --dev 1 --to "$WORK/out-tb"; t1=$(now)
tb_r=$(secs "$t0" "$t1")
cmp "$WORK/src" "$WORK/out-tb"

mbps() { echo "scale=1; $MIB / $1" | bc -l; }
printf "size: %d MiB, block size 64 KiB\n" "$MIB"
printf "write: dd %s MiB/s, pool write %s MiB/s, ratio %.2f\n" "$(mbps "$dd_w")" "$(mbps "$tb_w")" "$(echo "$dd_w / $tb_w" | bc -l)"
printf "read:  dd %s MiB/s, pool read %s MiB/s, ratio %.2f\n" "$(mbps "$dd_r")" "$(mbps "$tb_r")" "$(echo "$dd_r / $tb_r" | bc -l)"
