#!/usr/bin/env bash
# Benchmark (not a test): `thin-backup dump` against thin_dump 0.9.0 on the same
# metadata file with ≥ 1,000,000 mappings, in one run; prints both times and the ratio.
#
#   Benchmarks/dump-vs-thin_dump.sh [MAPPINGS_PER_DEVICE (default 300000)] [RUNS (default 5)]
#
# The pool: 4 devices — an origin, two snapshots that share most of its data blocks
# and rewrite some, and an unrelated device — with singles, ranges, holes and mixed
# times; restored with thin_restore. Output goes to /dev/null; both outputs are
# compared with cmp first.
source "$(dirname "$0")/lib.sh"
PER_DEV="${1:-300000}"
RUNS="${2:-5}"
workdir "$(mktemp -d /tmp/tb-dump-bench.XXXXXX)"
WORK=$W

awk -v per="$PER_DEV" 'BEGIN {
    srand(20261127)
    nd = 0
    # origin: runs of contiguous data blocks with holes between them
    v = 0; n = 0
    while (n < per) {
        if (rand() < 0.5) v += int(rand() * 20)
        len = (rand() < 0.35) ? 1 : 1 + int(rand() * 40)
        if (n + len > per) len = per - n
        t = (rand() < 0.1) ? 1 : 0
        for (i = 0; i < len; i++) { ov[n] = v; od[n] = nd; ot[n] = t; v++; nd++; n++ }
        nd += 1 + int(rand() * 3)   # break data contiguity between runs
    }
    print "<superblock uuid=\"\" time=\"3\" transaction=\"42\" flags=\"0\" version=\"2\" data_block_size=\"128\" nr_data_blocks=\"" (per * 8 + 100000) "\">"
    print "  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"1\" creation_time=\"0\" snap_time=\"2\">"
    for (i = 0; i < per; i++) print "    <single_mapping origin_block=\"" ov[i] "\" data_block=\"" od[i] "\" time=\"" ot[i] "\"/>"
    print "  </device>"
    for (s = 2; s <= 3; s++) {
        print "  <device dev_id=\"" s "\" mapped_blocks=\"0\" transaction=\"" s "\" creation_time=\"" (s - 1) "\" snap_time=\"" (s - 1) "\">"
        i = 0
        while (i < per) {
            len = 1 + int(rand() * 30)
            rewrite = (rand() < 0.2)
            for (j = 0; j < len && i < per; j++) {
                if (rewrite) { d = nd; nd += (rand() < 0.5) ? 1 : 2; t = s - 1 } else { d = od[i]; t = ot[i] }
                print "    <single_mapping origin_block=\"" ov[i] "\" data_block=\"" d "\" time=\"" t "\"/>"
                i++
            }
        }
        print "  </device>"
    }
    print "  <device dev_id=\"7\" mapped_blocks=\"0\" transaction=\"3\" creation_time=\"3\" snap_time=\"3\">"
    v = 1000000
    for (i = 0; i < per; i++) {
        if (rand() < 0.05) { v += int(rand() * 100); nd += int(rand() * 3) }
        print "    <single_mapping origin_block=\"" v "\" data_block=\"" nd "\" time=\"3\"/>"
        v++; nd += 2   # every mapping its own single_mapping line
    }
    print "  </device>"
    print "</superblock>"
}' > "$WORK/pool.xml"

META="$WORK/metadata"
truncate -s 512M "$META"
thin_restore -i "$WORK/pool.xml" -o "$META" >/dev/null
rm -f "$WORK/pool.xml"
MAPPINGS=$("$TB" pool check --metadata "$META" | sed -n 's/.* \([0-9]*\) mappings in distinct leaves.*/\1/p')
echo "metadata: $MAPPINGS mappings in 4 devices ($(du -h --apparent-size "$META" | cut -f1) file)"

"$TB" dump --metadata "$META" > "$WORK/ours.xml"
thin_dump "$META" > "$WORK/theirs.xml"
cmp "$WORK/ours.xml" "$WORK/theirs.xml"
echo "outputs identical ($(wc -l < "$WORK/ours.xml") lines)"
rm -f "$WORK/ours.xml" "$WORK/theirs.xml"

# Best of RUNS wall-clock times (page cache warm for both).
best() {
    local best_ns="" start end ns
    for _ in $(seq "$RUNS"); do
        start=$(date +%s%N)
        "$@" > /dev/null 2>&1
        end=$(date +%s%N)
        ns=$((end - start))
        if [ -z "$best_ns" ] || [ "$ns" -lt "$best_ns" ]; then best_ns=$ns; fi
    done
    echo "$best_ns"
}
OURS=$(best "$TB" dump --metadata "$META")
THEIRS=$(best thin_dump "$META")
printf 'thin-backup dump: %d ms (best of %d)\n' $((OURS / 1000000)) "$RUNS"
printf 'thin_dump 0.9.0:  %d ms (best of %d)\n' $((THEIRS / 1000000)) "$RUNS"
awk -v a="$OURS" -v b="$THEIRS" 'BEGIN { printf "ratio thin_dump / thin-backup dump = %.2fx (> 1: ours is faster)\n", b / a }'

# For reference, the other two read commands against their oracles on the same file.
LS=$(best "$TB" pool ls --metadata "$META")
TLS=$(best thin_ls "$META" -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,CREATE_TIME,SNAP_TIME)
CHK=$(best "$TB" pool check --metadata "$META")
TCHK=$(best thin_check "$META" 2>/dev/null)
printf 'pool ls: %d ms, thin_ls: %d ms; pool check (data counts too): %d ms, thin_check: %d ms\n' \
    $((LS / 1000000)) $((TLS / 1000000)) $((CHK / 1000000)) $((TCHK / 1000000))
