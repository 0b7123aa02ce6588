#!/usr/bin/env bash
# Benchmark (not a test): `thin-backup delta` against thin_delta 0.9.0 on the same
# metadata, in one run; prints times, metadata blocks read, and the ratios.
#
#   Benchmarks/delta-vs-thin_delta.sh [BLOCKS (default 1000000)] [RUNS (default 5)]
#
# The pool: device 1 with BLOCKS mapped blocks (runs of 1–512 blocks, small holes),
# restored by thin_restore into pool/metadata over a sparse pool/data file; device 2
# = `thin-backup pool snapshot` of device 1 (shares its whole tree); then 1 % of
# device 1's blocks rewritten in 40 clustered extents by `thin-backup pool write`.
# Case A diffs 2 → 1 (1 % clustered change, trees shared elsewhere).
# Case B diffs 1 → 3, device 3 being device 1's virtual layout with every block on
# another data block and no node shared: what a snapshot diff looks like once every
# block was rewritten (written by thin_restore: rewriting 64 GB of data through
# `pool write` does not fit this VM).
# Blocks read are counted as the metadata reads each tool makes: io_submit calls of
# thin_delta (one 4 KiB block each, through its block cache), pread64 calls of ours
# (strace -c). Outputs are checked with cmp before timing.
source "$(dirname "$0")/lib.sh"
BLOCKS="${1:-1000000}"
RUNS="${2:-5}"
workdir "$(mktemp -d /tmp/tb-delta-bench.XXXXXX)"
WORK=$W
P="$WORK/pool"
Benchmarks/make_delta_pool.sh "$WORK" "$BLOCKS" "$TB"

bench_case() {  # name left right
    local name="$1" a="$2" b="$3"
    local M="$P/metadata"
    thin_delta --snap1 "$a" --snap2 "$b" "$M" > "$WORK/td.xml"
    "$TB" delta --pool "$P" --thin1 "$a" --thin2 "$b" > "$WORK/tb.xml"
    "$TB" delta --pool "$P" --thin1 "$a" --thin2 "$b" --changes-only > "$WORK/tbc.xml"
    cmp "$WORK/td.xml" "$WORK/tb.xml"
    grep -v '^    <same ' "$WORK/td.xml" | cmp - "$WORK/tbc.xml"
    local lines changes
    lines=$(wc -l < "$WORK/td.xml"); changes=$(wc -l < "$WORK/tbc.xml")
    echo "== case $name: thin $a → thin $b; thin_delta output $lines lines, changes-only $changes lines (outputs identical)"
    local td_io tb_io tbc_io
    td_io=$(strace -f -c -e trace=io_submit -o "$WORK/s1" thin_delta --snap1 "$a" --snap2 "$b" "$M" >/dev/null; awk '/io_submit/ {print $4}' "$WORK/s1")
    tb_io=$(strace -f -c -e trace=pread64 -o "$WORK/s2" "$TB" delta --metadata "$M" --thin1 "$a" --thin2 "$b" >/dev/null; awk '/pread64/ {print $4}' "$WORK/s2")
    tbc_io=$(strace -f -c -e trace=pread64 -o "$WORK/s3" "$TB" delta --metadata "$M" --thin1 "$a" --thin2 "$b" --changes-only >/dev/null; awk '/pread64/ {print $4}' "$WORK/s3")
    echo "metadata blocks read: thin_delta $td_io, thin-backup delta $tb_io, thin-backup delta --changes-only $tbc_io"
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/$name.json" \
        -n thin_delta "thin_delta --snap1 $a --snap2 $b $M" \
        -n "thin-backup delta" "$TB delta --metadata $M --thin1 $a --thin2 $b" \
        -n "thin-backup delta --changes-only" "$TB delta --metadata $M --thin1 $a --thin2 $b --changes-only" \
        -n "start: thin_delta -V" "thin_delta -V" \
        -n "start: thin-backup --help" "$TB --help" >/dev/null
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/$name-pipe.json" \
        -n "thin_delta | grep -v same" "thin_delta --snap1 $a --snap2 $b $M | grep -v '<same' > /dev/null" >/dev/null
    python3 - "$WORK/$name.json" "$WORK/$name-pipe.json" <<'PY'
import json, sys
r = {x["command"]: x for f in sys.argv[1:] for x in json.load(open(f))["results"]}
td = r["thin_delta"]["min"]
s_td, s_tb = r["start: thin_delta -V"]["min"], r["start: thin-backup --help"]["min"]
for name, x in r.items():
    if name.startswith("start:"):
        print(f"  {name:36s} min {x['min']*1000:8.1f} ms  (process start and exit, no work)")
        continue
    line = f"  {name:36s} min {x['min']*1000:8.1f} ms  mean {x['mean']*1000:8.1f} ms  thin_delta/this {td / x['min']:6.1f}x"
    if name.startswith("thin-backup"):
        net = max(x["min"] - s_tb, 1e-4)
        line += f"   net of process start: {net*1000:7.1f} ms vs {(td - s_td)*1000:7.1f} ms = {(td - s_td) / net:6.1f}x"
    print(line)
PY
}

bench_case "1pct" 2 1
bench_case "all" 1 3
