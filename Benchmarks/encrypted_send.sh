#!/usr/bin/env bash
# Encrypted vs unencrypted full send (docs/BENCHMARKS.md, "encrypted send").
# Usage: Benchmarks/encrypted_send.sh [WORKDIR=/dev/shm/tb-enc-bench] [SIZE_GIB=1] [ROUNDS=5]
# Builds the release binary, makes the send/receive benchmark's mixed pool (make_mixed_pool.py),
# then sends device 1 in full ROUNDS times each way, alternating (plain, encrypted, plain, …) so both
# see the same machine load; prints every run (wall and CPU seconds from GNU time) and the ratios of
# the medians. Checks that the encrypted stream receives to the same content digest.
# Needs (beyond scripts/setup.sh): python3-numpy, bc, GNU time (/usr/bin/time).
source "$(dirname "$0")/lib.sh"
W=${1:-/dev/shm/tb-enc-bench}
SIZE=${2:-1}
ROUNDS=${3:-5}
workdir "$W"
python3 Benchmarks/make_mixed_pool.py "$W/pool" "$SIZE" 0.05 >/dev/null
P=$W/pool
$TB key create --to "$W/key" >/dev/null

declare -a PW PC EW EC
timed() {  # timed CMD...: prints "wall cpu"
    /usr/bin/time -f "%e %U %S" -o "$W/t" bash -c "$*" >/dev/null
    read -r secs usr sys < "$W/t"
    echo "$secs $(echo "$usr + $sys" | bc -l)"
}
echo "binary: $TB"
echo "device: $SIZE GiB mixed data; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | plain wall | plain CPU | encrypted wall | encrypted CPU |"
echo "|---|---|---|---|---|"
for i in $(seq 1 "$ROUNDS"); do
    read -r pw pc < <(timed "$TB send --pool $P --snap 1 --to $W/plain.tbs --quiet")
    read -r ew ec < <(timed "$TB send --pool $P --snap 1 --to $W/enc.tbs --encrypt-key $W/key --quiet")
    PW+=("$pw"); PC+=("$pc"); EW+=("$ew"); EC+=("$ec")
    printf "| %d | %.2f s | %.2f s | %.2f s | %.2f s |\n" "$i" "$pw" "$pc" "$ew" "$ec"
done
median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mpw=$(median "${PW[@]}"); mpc=$(median "${PC[@]}"); mew=$(median "${EW[@]}"); mec=$(median "${EC[@]}")
echo
printf "medians: plain %.2f s wall / %.2f s CPU, encrypted %.2f s wall / %.2f s CPU\n" "$mpw" "$mpc" "$mew" "$mec"
printf "encrypted speed as a share of plain: wall %.1f %%, CPU %.1f %%\n" \
    "$(echo "100 * $mpw / $mew" | bc -l)" "$(echo "100 * $mpc / $mec" | bc -l)"
echo "stream sizes: plain $(stat -c %s "$W/plain.tbs"), encrypted $(stat -c %s "$W/enc.tbs")"
$TB verify --stream "$W/enc.tbs" --encrypt-key "$W/key" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print('encrypted stream verified with the key, content digest', r['targetDigest'])"
$TB verify --stream "$W/plain.tbs" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print('plain stream content digest                          ', r['targetDigest'])"
