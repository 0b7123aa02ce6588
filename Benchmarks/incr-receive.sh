#!/usr/bin/env bash
# The incremental receive of issue 15 on its own, paired against dd (docs/BENCHMARKS.md):
#
#   Benchmarks/incr-receive.sh [WORKDIR=/dev/shm/tb-ir] [SIZE_MIB=512] [RUNS=15]
#   KEEP=1 ...        keeps WORKDIR and DST for profiling (prints the receive's command line)
#   DST=/path ...     where the pools and dd write (default /var/tmp/tb-ir-dst, the disk)
#   SETUP=true ...    runs without the `sync` before each run (run-all's way)
#
# Makes run-all's pool (make_mixed_pool.py: a SIZE_MIB device of mixed data, a 5 % clustered-change
# snapshot), sends the full and the incremental stream, receives the full one into a pool in DST, and
# times A = `receive` of the incremental (as a new device, deleted after each run) against B = dd
# bs=1M conv=fdatasync of the changed bytes (thin_delta + dd, as run-all takes them). Each run starts
# after a `sync`, untimed, so that neither side pays for the other's or the setup's writeback. Checks:
# the received device's content digest is the sender's, and its bytes at the changed ranges are dd's.
source "$(dirname "$0")/lib.sh"
W=${1:-/dev/shm/tb-ir}
SIZE_MIB=${2:-512}
RUNS=${3:-15}
workdir "$W"
D=${DST:-/var/tmp/tb-ir-dst}
rm -rf "$D"; mkdir -p "$D"
if [ -n "${KEEP:-}" ]; then trap - EXIT; else trap 'rm -rf "$W" "$D"' EXIT; fi
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }

echo "== pool: $SIZE_MIB MiB (load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
python3 Benchmarks/make_mixed_pool.py "$W/pool" "$(echo "$SIZE_MIB / 1024" | bc -l)" 0.05 >/dev/null
P=$W/pool
BS=65536
"$TB" send --pool "$P" --snap 1 --to "$W/full.tbs" --quiet --json > "$W/full.json"
D1=$(python3 -c "import json;print(json.load(open('$W/full.json'))['targetDigest'])")
"$TB" send --pool "$P" --from 1 --snap 2 --base-digest "$D1" --to "$W/inc.tbs" --quiet --json > "$W/inc.json"
D2=$(python3 -c "import json;print(json.load(open('$W/inc.json'))['targetDigest'])")
incruns="thin_delta --verbose --thin1 1 --thin2 2 $P/metadata | awk '/<different>|<right_only>/{s=1} /<same>|<left_only>/{s=0} s && match(\$0,/(right_data_begin| data_begin)=\"[0-9]+\"/){x=substr(\$0,RSTART,RLENGTH); sub(/.*=\"/,\"\",x); sub(/\"/,\"\",x); match(\$0,/length=\"[0-9]+\"/); print x, substr(\$0,RSTART+8,RLENGTH-9)}'"
bash -c "$incruns | while read -r db len; do dd if=$P/data bs=64K skip=\$db count=\$len status=none; done" > "$W/changed.raw"
echo "stream $(stat -c %s "$W/inc.tbs") B for $(stat -c %s "$W/changed.raw") changed bytes"

NDATA=$(grep -o 'nr_data_blocks="[0-9]*"' "$P/pool.xml" | grep -o '[0-9]*')
"$TB" pool create --pool "$D/dst" --data-size $(( (NDATA * 3 + 64) * BS )) --metadata-size 64M >/dev/null
"$TB" receive --pool "$D/dst" --from "$W/full.tbs" --quiet
A="$TB receive --pool $D/dst --from $W/inc.tbs --as 200 --quiet"
B="dd if=$W/changed.raw of=$D/dd.out bs=1M conv=fdatasync status=none"
python3 Benchmarks/paired.py "$W/results.jsonl" "incr. receive vs dd (fdatasync) of the changed bytes" "≥ 0.9" "$RUNS" \
    "$A" "$B" --setup-a "${SETUP:-sync}" --setup-b "${SETUP:-sync}" \
    --cleanup-a "$TB pool delete --pool $D/dst --dev 200" --cleanup-b "rm -f $D/dd.out"

# The outputs: the received device is the sender's snapshot 2 (digest), its changed bytes are dd's.
"$TB" receive --pool "$D/dst" --from "$W/inc.tbs" --as 2 --quiet
"$TB" verify --pool "$D/dst" --dev 2 --digest "$D2" --quiet || fail "received device 2's digest"
"$TB" pool read --pool "$D/dst" --dev 2 --to "$W/got.raw"
incvirt="thin_delta --verbose --thin1 1 --thin2 2 $P/metadata | awk '/<different>|<right_only>/{s=1} /<same>|<left_only>/{s=0} s && match(\$0,/ begin=\"[0-9]+\"/){x=substr(\$0,RSTART+8,RLENGTH-9); match(\$0,/length=\"[0-9]+\"/); print x, substr(\$0,RSTART+8,RLENGTH-9)}'"
bash -c "$incvirt | while read -r v len; do dd if=$W/got.raw bs=64K skip=\$v count=\$len status=none; done" | cmp - "$W/changed.raw" \
    || fail "received device 2's changed bytes"
rm -f "$W/got.raw"
"$TB" pool delete --pool "$D/dst" --dev 2 >/dev/null
python3 - "$W/results.jsonl" <<'EOF'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    ms = lambda s: f"{s * 1000:.1f} ms"
    print(f"| {r['name']} | {ms(r['wallA'])} | {ms(r['wallB'])} | {ms(r['cpuA'])} | {ms(r['cpuB'])} | "
          f"{r['rssA']:.1f} MiB | **{r['wallRatio']:.2f}×** ({r['wallMin']:.2f}–{r['wallMax']:.2f}) | {r['cpuRatio']:.2f}× | {r['goal']} |")
EOF
[ -n "${KEEP:-}" ] && echo "kept: $W $D; receive: $A (then: $TB pool delete --pool $D/dst --dev 200)"
exit 0
