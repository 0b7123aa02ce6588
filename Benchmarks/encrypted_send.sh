#!/usr/bin/env bash
# Encrypted vs unencrypted full send (docs/BENCHMARKS.md, "Encrypted send"; issue 16's goal: the
# encrypted send runs at >= 90 % of the unencrypted one).
#
#   Benchmarks/encrypted_send.sh [WORKDIR=/dev/shm/tb-enc-bench] [SIZE_GIB=1] [RUNS=5] [THREADS=]
#
# Builds the release binary (TB=path/to/thin-backup skips the build and measures that binary),
# makes the send/receive benchmark's mixed pool (make_mixed_pool.py), then sends device 1 in full,
# encrypted (A) and plain (B) in turn, A B A B … RUNS times after one warm-up pair (paired.py: wall
# time, and CPU time user + sys from wait4). The ratios B/A per pair are plain time / encrypted
# time: the encrypted send's speed as a share of the plain one's; their median is printed. CPU time
# is the figure to quote on a loaded machine (it does not count time spent waiting for a core).
# THREADS: --threads for both sends (default: one compressor per core).
# Checks that the encrypted stream verifies with the key to the plain stream's content digest.
# Needs (beyond scripts/setup.sh): python3-numpy.
TB_BUILD_FLAGS=--static-swift-stdlib
source "$(dirname "$0")/lib.sh"
W=${1:-/dev/shm/tb-enc-bench}
SIZE=${2:-1}
RUNS=${3:-5}
THREADS=${4:-}
workdir "$W"
python3 Benchmarks/make_mixed_pool.py "$W/pool" "$SIZE" 0.05 >/dev/null
P=$W/pool
"$TB" key create --to "$W/key" >/dev/null
T=${THREADS:+--threads $THREADS}
ENC="$TB send --pool $P --snap 1 --to $W/enc.tbs --force --quiet --encrypt-key $W/key $T"
PLAIN="$TB send --pool $P --snap 1 --to $W/plain.tbs --force --quiet $T"

echo "binary: $TB"
echo "device: $SIZE GiB mixed data; $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 Benchmarks/paired.py "$W/r.jsonl" encrypted-send ">= 0.90" "$RUNS" "$ENC" "$PLAIN"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$W/r.jsonl" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
print(f"medians over {r['runs']} pairs: encrypted {r['wallA']:.2f} s wall / {r['cpuA']:.2f} s CPU, "
      f"plain {r['wallB']:.2f} s wall / {r['cpuB']:.2f} s CPU")
print(f"encrypted speed as a share of plain (median of per-pair ratios): "
      f"CPU {100 * r['cpuRatio']:.1f} %, wall {100 * r['wallRatio']:.1f} % "
      f"(wall pairs from {100 * r['wallMin']:.1f} % to {100 * r['wallMax']:.1f} %)")
EOF
echo "stream sizes: plain $(stat -c %s "$W/plain.tbs"), encrypted $(stat -c %s "$W/enc.tbs")"
digest() { python3 -c "import json,sys; print(json.load(sys.stdin)['targetDigest'])"; }
E=$("$TB" verify --stream "$W/enc.tbs" --encrypt-key "$W/key" --json | digest)
C=$("$TB" verify --stream "$W/plain.tbs" --json | digest)
[ "$E" = "$C" ] || { echo "CHECK FAILED: encrypted stream digest $E, plain $C" >&2; exit 1; }
echo "checked: the encrypted stream verifies with the key to the plain stream's content digest ($C)"
