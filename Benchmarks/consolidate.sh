#!/usr/bin/env bash
# Consolidation benchmark (docs/BENCHMARKS.md, "prune: consolidation").
# Usage: Benchmarks/consolidate.sh [WORKDIR=/tmp/tb-consolidate] [NIGHTS=30] [DEVICE_MIB=256] [NIGHTLY_MIB=4]
# Makes a pool with a DEVICE_MIB device filled with mixed data, backs it up NIGHTS nights into a
# folder repository (each night NIGHTLY_MIB of clustered writes and a discard), then consolidates
# the newest backup's chain two ways and prints bytes written to storage, wall and CPU time:
#   new: `prune --keep-last 1` (the chain's records composed into one full stream; nothing replayed),
#        and `prune --keep-monthly 2` (the newest rewritten as one increment of night 0, the full),
#   old: what prune did before issue 18: the chain replayed into a scratch pool (`restore --to POOL`)
#        and the device sent again (`send`, full).
# "written" is the kernel's count of bytes the process and its children dirtied (ru_oublock × 512),
# so WORKDIR must be on a disk filesystem (not tmpfs). TB=path overrides the binary (default: a
# release build made here).
source "$(dirname "$0")/lib.sh"
W=${1:-/tmp/tb-consolidate}
NIGHTS=${2:-30}
DEV_MIB=${3:-256}
NIGHTLY_MIB=${4:-4}
workdir "$W"
P=$W/pool R=$W/repo

# measure NAME CMD...: runs CMD, prints a table row (written bytes, wall, CPU user+sys).
measure() {
    local name=$1; shift
    python3 - "$name" "$@" <<'EOF'
import os, resource, sys, time
name, cmd = sys.argv[1], sys.argv[2:]
t = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp("bash", ["bash", "-c", " ".join(cmd)])
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t
if status != 0:
    sys.exit(f"{name}: failed ({status})")
print(f"| {name:<58} | {ru.ru_oublock * 512 / 2**20:9.1f} MiB | {wall:7.2f} s | {ru.ru_utime + ru.ru_stime:7.2f} s |")
EOF
}

$TB pool create --pool "$P" --data-size $((DEV_MIB * 3))M --block-size 64k >/dev/null
$TB pool create-thin --pool "$P" --dev 1 --size ${DEV_MIB}M >/dev/null
# Mixed content: random, text-like and zero 1 MiB pieces (deterministic).
python3 - "$W/fill" "$DEV_MIB" <<'EOF'
import random, sys
r = random.Random(18)
with open(sys.argv[1], "wb") as f:
    for i in range(int(sys.argv[2])):
        k = i % 4
        if k == 0: f.write(r.randbytes(1 << 20))
        elif k == 1:
            line = b"the quick brown fox %08d jumps over the lazy dog\n" % i
            f.write((line * ((1 << 20) // len(line) + 1))[: 1 << 20])
        elif k == 2: f.write(bytes(1 << 20))
        else: f.write(r.randbytes(1 << 19) + bytes(1 << 19))
EOF
$TB pool write --pool "$P" --dev 1 --from "$W/fill" --offset 0 >/dev/null
for n in $(seq 0 $((NIGHTS - 1))); do
    python3 - "$W/night" "$n" "$NIGHTLY_MIB" <<'EOF'
import random, sys
r = random.Random(int(sys.argv[2]))
open(sys.argv[1], "wb").write(r.randbytes(int(sys.argv[3]) << 19) + bytes(int(sys.argv[3]) << 19))
EOF
    off=$(( (n * 7919 % (DEV_MIB - NIGHTLY_MIB)) * 1048576 ))
    $TB pool write --pool "$P" --dev 1 --from "$W/night" --offset $off >/dev/null
    $TB pool discard --pool "$P" --dev 1 --offset $(( ((n * 104729) % (DEV_MIB - 1)) * 1048576 )) --length 1048576 >/dev/null
    # Night 0 on 2025-12-31, then 2026-01-01 …: --keep-monthly 2 keeps night 0 (the full) and the newest.
    day=$(printf '2026-01-%02dT02:00:00Z' "$n")
    [ "$n" -eq 0 ] && day=2025-12-31T02:00:00Z
    $TB backup --pool "$P" --dev 1 --repo "$R" --now "$day" --quiet
done
echo "device ${DEV_MIB} MiB, ${NIGHTS} nights of ${NIGHTLY_MIB} MiB writes + 1 MiB discard; repository $(du -sh "$R" | cut -f1); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| consolidate the newest backup's ${NIGHTS}-stream chain into one full stream | written | wall | CPU |"
echo "|---|---|---|---|"
cp -a "$R" "$W/repo-new"
cp -a "$R" "$W/repo-inc"
sync
measure "new: prune --keep-last 1 (records composed)" "$TB prune --repo $W/repo-new --keep-last 1 --quiet"
sync
measure "new: prune --keep-monthly 2 (newest onto night 0, an increment)" "$TB prune --repo $W/repo-inc --keep-monthly 2 --quiet"
sync
$TB pool create --pool "$W/scratch" --data-size $((DEV_MIB * 3))M --block-size 64k >/dev/null
sync
measure "old: replay the chain into a scratch pool (restore --to POOL)" "$TB restore --repo $R --dev 1 --to $W/scratch --quiet"
measure "old: send the device again (send, full, 1 thread)" "$TB send --pool $W/scratch --snap 1 --to $W/old.tbs --threads 1 --quiet"
NEW=$(ls "$W/repo-new"/streams/*/dev1/*rebased* 2>/dev/null | head -1)
echo
INC=$(ls "$W/repo-inc"/streams/*/dev1/*rebased* 2>/dev/null | head -1)
echo "composed full stream: $(stat -c %s "$NEW") bytes; re-sent full stream: $(stat -c %s "$W/old.tbs") bytes; composed increment: $(stat -c %s "$INC") bytes"
# Both restore the same bytes.
$TB restore --repo "$W/repo-new" --dev 1 --to "$W/a.img" --quiet
$TB restore --repo "$W/repo-inc" --dev 1 --to "$W/i.img" --quiet
cmp "$W/a.img" "$W/i.img"
$TB pool read --pool "$W/scratch" --dev 1 --to "$W/b.img"
$TB pool read --pool "$P" --dev 1 --to "$W/c.img"
cmp "$W/a.img" "$W/b.img" && cmp "$W/a.img" "$W/c.img" && echo "restored images equal (new full, new increment, old, source device)"
