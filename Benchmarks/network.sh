#!/usr/bin/env bash
# Network benchmark (docs/BENCHMARKS.md, "network").
# Usage: Benchmarks/network.sh [WORKDIR=/dev/shm/tb-net-bench] [SIZE_MIB=1024]
# Builds the release binary, makes a pool with one SIZE_MIB device of mixed data (random, text,
# zeros) and times, in one run, the same full send:
#   - to a local file (the baseline),
#   - to `serve --spool` over loopback (the transport alone: the stream is stored as a file),
#   - to `serve --pool` over loopback (replication: the receiver replays into a pool),
#   - receive of the file into a pool (the non-network way to replicate: send to file, then receive),
#   - to a moto S3 server (multipart upload; moto keeps objects in RAM).
# Every received result is checked against the sender's digest.
source "$(dirname "$0")/lib.sh"
W=${1:-/dev/shm/tb-net-bench}
SIZE=${2:-1024}
workdir "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

# Mixed data, 1 MiB chunks by i%10: 0-2 random, 3-6 text, 7-8 zeros, 9 records (as in TOOLCHAIN.md §7).
python3 - "$W/device.img" "$SIZE" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261127)
words = [bytes(rng.choice(b"etaoinshrdlu") for _ in range(rng.randint(2, 9))) for _ in range(4096)]
with open(path, "wb") as f:
    for i in range(mib):
        k = i % 10
        if k <= 2: f.write(os.urandom(1 << 20))
        elif k <= 6:
            out = bytearray()
            while len(out) < 1 << 20: out += rng.choice(words) + b" "
            f.write(bytes(out[:1 << 20]))
        elif k <= 8: f.write(bytes(1 << 20))
        else: f.write(b"".join((j * 2654435761 % (1 << 32)).to_bytes(4, "little") + b"rec\0" for j in range(i << 17, (i + 1) << 17)))
PY
mkpool() { $TB pool create --pool "$1" --data-size $((SIZE + 64))M --metadata-size 16M >/dev/null; }
mkpool "$W/src"
$TB pool create-thin --pool "$W/src" --dev 1 --size ${SIZE}M >/dev/null
$TB pool write --pool "$W/src" --dev 1 --from "$W/device.img" >/dev/null
$TB pool snapshot --pool "$W/src" --origin 1 --dev 2 >/dev/null
rm -f "$W/device.img"
BYTES=$((SIZE << 20))
openssl rand -hex 16 > "$W/token"

declare -A SECS
run() {
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$W/t" bash -c "$*" >/dev/null
    read -r secs rss < "$W/t"
    SECS[$name]=$secs
    printf "| %-52s | %6.2f s | %6.0f MB/s | %5.0f MiB |\n" "$name" "$secs" "$(echo "$BYTES / 1000000 / ($secs + 0.0001)" | bc -l)" \
        "$(echo "$rss / 1024" | bc -l)"
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

mkdir -p "$W/spool"; mkpool "$W/dst"; mkpool "$W/dst2"; mkpool "$W/dst3"
P1=$(port); $TB serve --spool "$W/spool" --listen 127.0.0.1:$P1 --token-file "$W/token" 2>/dev/null & PIDS+=($!)
P2=$(port); $TB serve --pool "$W/dst" --listen 127.0.0.1:$P2 --token-file "$W/token" 2>/dev/null & PIDS+=($!)
waitport $P1; waitport $P2

echo "device: $BYTES bytes of mixed data; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $(curl --version | head -1 | cut -d' ' -f1-2)"
echo
echo "| what (full send of the device, zstd -3) | wall | rate (device bytes / wall) | max RSS (client) |"
echo "|---|---|---|---|"
run "send → local file" "$TB send --pool $W/src --snap 2 --to $W/full.tbs --quiet --json > $W/full.json"
run "send → serve --spool (loopback, tb://)" "$TB send --pool $W/src --snap 2 --to tb://127.0.0.1:$P1 --token-file $W/token --quiet"
run "send → serve --pool (loopback replication, tb://)" "$TB send --pool $W/src --snap 2 --to tb://127.0.0.1:$P2 --token-file $W/token --quiet"
run "send → local file (again, after the others)" "$TB send --pool $W/src --snap 2 --to $W/full2.tbs --quiet"
run "receive ← local file (into a pool)" "$TB receive --pool $W/dst2 --from $W/full.tbs --quiet"
DIGEST=$(python3 -c "import json;print(json.load(open('$W/full.json'))['targetDigest'])")
cmp "$W/full.tbs" "$W/spool/2.stream" >/dev/null 2>&1 || echo "(streams differ byte-wise: each send has its own stream id; sizes $(stat -c %s $W/full.tbs) / $(stat -c %s $W/spool/2.stream))"
$TB verify --pool "$W/dst" --dev 2 --digest "$DIGEST" --quiet && echo "serve --pool: device 2 matches the sender's digest"
$TB verify --pool "$W/dst2" --dev 2 --digest "$DIGEST" --quiet && echo "receive from file: device 2 matches the sender's digest"

if python3 -c "import moto.server, boto3" 2>/dev/null; then
    P3=$(port)
    INITIAL_NO_AUTH_ACTION_COUNT=3 python3 -m moto.server -H 127.0.0.1 -p $P3 >/dev/null 2>&1 & PIDS+=($!)
    waitport $P3
    read -r AK SK < <(python3 Tests/Scripts/moto_setup.py http://127.0.0.1:$P3 bench)
    export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1
    run "send → moto S3 (SigV4, 8 MiB multipart parts)" "$TB send --pool $W/src --snap 2 --to s3://bench/full.tbs --endpoint http://127.0.0.1:$P3 --quiet"
    run "receive ← moto S3 (into a pool)" "$TB receive --pool $W/dst3 --from s3://bench/full.tbs --endpoint http://127.0.0.1:$P3 --quiet"
    $TB verify --pool "$W/dst3" --dev 2 --digest "$DIGEST" --quiet && echo "receive from S3: device 2 matches the sender's digest"
fi
echo
r() { printf "%-58s %.2f\n" "$1:" "$(echo "${SECS[$3]} / ${SECS[$2]}" | bc -l)"; }
r "tb:// (spool) speed / file speed" "send → serve --spool (loopback, tb://)" "send → local file"
r "tb:// (pool) speed / file speed" "send → serve --pool (loopback replication, tb://)" "send → local file"
printf "%-58s %.2f\n" "replication over tb:// vs send-to-file then receive (speed):" \
    "$(echo "(${SECS["send → local file"]} + ${SECS["receive ← local file (into a pool)"]}) / ${SECS["send → serve --pool (loopback replication, tb://)"]}" | bc -l)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
