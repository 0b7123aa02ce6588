#!/usr/bin/env bash
# Builds the delta benchmark's pool (used by delta-vs-thin_delta.sh and run-all.sh).
# Usage: make_delta_pool.sh WORK BLOCKS TB
#   WORK/pool: device 1 with BLOCKS mapped blocks (runs of 1–512 blocks, small holes), restored by
#   thin_restore over a sparse data file; device 2 = `pool snapshot` of device 1; then 1 % of
#   device 1's blocks rewritten in 40 clustered extents by `pool write`; device 3 = device 1's
#   virtual layout on other data blocks, no node shared. thin_check must pass on the result.
set -euo pipefail
RANDOM=20261127
WORK="$1"; BLOCKS="$2"; TB="$3"
P="$WORK/pool"
mkdir -p "$P"

awk -v blocks="$BLOCKS" 'BEGIN {
    srand(20261127)
    n = 0; v = 0; d = 0
    while (n < blocks) {
        len = 1 + int(rand() * 512); if (n + len > blocks) len = blocks - n
        rv[++r] = v; rd[r] = d; rl[r] = len
        v += len + ((rand() < 0.3) ? int(rand() * 16) : 0)
        d += len + ((rand() < 0.5) ? 1 + int(rand() * 4) : 0)
        n += len
    }
    nd = d * 2 + blocks / 10 + 100000
    print "<superblock uuid=\"\" time=\"1\" transaction=\"1\" flags=\"0\" version=\"2\" data_block_size=\"128\" nr_data_blocks=\"" nd "\">"
    print "  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">"
    for (i = 1; i <= r; i++) print "    <range_mapping origin_begin=\"" rv[i] "\" data_begin=\"" rd[i] "\" length=\"" rl[i] "\" time=\"0\"/>"
    print "  </device>"
    print "  <device dev_id=\"3\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"1\" snap_time=\"1\">"
    for (i = 1; i <= r; i++) print "    <range_mapping origin_begin=\"" rv[i] "\" data_begin=\"" (d + 50000 + rd[i]) "\" length=\"" rl[i] "\" time=\"1\"/>"
    print "  </device>"
    print "</superblock>"
    printf "%d %d\n", nd, v > "/dev/stderr"
}' > "$WORK/pool.xml" 2> "$WORK/sizes"
read -r NR_DATA VSPAN < "$WORK/sizes"
truncate -s 512M "$P/metadata"
thin_restore -i "$WORK/pool.xml" -o "$P/metadata" >/dev/null
truncate -s $((NR_DATA * 65536)) "$P/data"
"$TB" pool snapshot --pool "$P" --origin 1 --dev 2

# 1 % of the blocks in 40 clustered extents, rewritten in device 1 (the origin).
EXTENTS=40
PER=$(( BLOCKS / 100 / EXTENTS ))
head -c $((PER * 65536)) /dev/urandom > "$WORK/extent.bin"
for i in $(seq 1 $EXTENTS); do
    start=$(( (VSPAN / EXTENTS) * (i - 1) + (RANDOM * 37) % (VSPAN / EXTENTS - PER) ))
    "$TB" pool write --pool "$P" --dev 1 --from "$WORK/extent.bin" --offset $((start * 65536)) \
        2> >(grep -v 'warning: data space low' >&2)   # the pool is sized tight on purpose
done
thin_check "$P/metadata" >/dev/null 2>&1 || { echo "thin_check failed on the benchmark pool"; exit 1; }

