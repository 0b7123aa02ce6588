# Replication into a live kernel pool (issue #13): `receive --dm-pool` of a full stream and four
# increments (rewrites, zero writes, discards) from a kernel pool into another kernel pool, each
# version's sha256 equal to the kernel's read of the source snapshot and its mapped blocks as
# worked out by hand; refusals (a base never received, a name that exists, a truncated stream, a
# base written after it was received) change nothing; SIGKILL at two points, then the next
# receive / --resume; --keep; a pool with 192 KiB blocks; a pool out of data space mid-receive.
#
# Source writes (64 KiB blocks, device 20 MiB); mapped = source's count / receiver's count
# (blocks written with zeros stay mapped on the source, the receiver unmaps them):
#   10: random 0-99                                   -> 100 / 100
#   11: zeros over 0-9, discard 50-59, random 200-229 -> 120 / 110
#   12: random 20-29 (rewrite), discard 70-79         -> 110 / 100
#   13: random 300-304                                -> 115 / 105
#   14: random 0-1 (over the zero blocks)             -> 115 / 107
. /scenarios/lib.sh
t() { echo "T $(cut -d' ' -f1 /proc/uptime) $*"; }
t "start"
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 src 40960
fill /dev/mapper/src 0 100
ksnap pool src 10 1
dd if=/dev/zero of=/dev/mapper/src bs=65536 seek=0 count=10 conv=notrunc,fsync 2>/dev/null
blkdiscard -o $((50 * 65536)) -l $((10 * 65536)) /dev/mapper/src
fill /dev/mapper/src 200 30
ksnap pool src 11 1
fill /dev/mapper/src 20 10
blkdiscard -o $((70 * 65536)) -l $((10 * 65536)) /dev/mapper/src
ksnap pool src 12 1
fill /dev/mapper/src 300 5
ksnap pool src 13 1
fill /dev/mapper/src 0 2
ksnap pool src 14 1
run "send full 10" thin-backup send --dm-pool pool --snap 10 --size 20M --to s10.tbs
for n in 11 12 13 14; do
	run "send $((n - 1))->$n" thin-backup send --dm-pool pool --from $((n - 1)) --snap $n --size 20M --to s$n.tbs
done
t "sends done"
for n in 10 11 12 13 14; do
	thin pool $n k$n 40960
	eval "K$n=$(kernel_sha /dev/mapper/k$n)"
	eval "M$n=$(dmsetup status k$n | awk '{print $4}')"
	dmsetup remove k$n
done
same "source mapped sectors as worked out (10..14)" "$M10 $M11 $M12 $M13 $M14" "$((100 * 128)) $((120 * 128)) $((110 * 128)) $((115 * 128)) $((115 * 128))"

# devs POOL META: the pool's thin ids, as thin_dump reads them through a metadata snapshot.
devs() {
	dmsetup message $1 0 reserve_metadata_snap
	thin_dump -m $2 | grep -o 'dev_id="[0-9]*"' | tr -dc '0-9 \n' | tr '\n' ' '
	dmsetup message $1 0 release_metadata_snap
}
# version POOL N BLOCKS: received version N reads as source snapshot N and maps BLOCKS 64 KiB blocks.
version() {
	thin $1 $2 r$2 40960
	same "$1 version $2: bytes == the kernel's read of source snapshot $2" "$(kernel_sha /dev/mapper/r$2)" "$(eval echo \$K$2)"
	same "$1 version $2: mapped sectors" "$(dmsetup status r$2 | awk '{print $4}')" "$(($3 * 128))"
	dmsetup remove r$2
}

t "source read"
dmsetup create pool2 --table "0 1048576 thin-pool $META2 $DATA2 128 64"
run "receive --dm-pool: full 10" thin-backup receive --dm-pool pool2 --from s10.tbs
version pool2 10 100
before=$(devs pool2 $META2)
refused "an increment whose base was never received" "never received" thin-backup receive --dm-pool pool2 --from s12.tbs
refused "a stream onto a thin id that exists" "already exists" thin-backup receive --dm-pool pool2 --from s11.tbs --as 10
same "refusals changed no device" "$(devs pool2 $META2)" "$before"

# SIGKILL at durability steps (THIN_BACKUP_FAULT; each state-file store is two syncs, file and
# folder): kill:2 stops the first run once its new device is recorded in progress (no receipt
# yet); the second run removes that half device (steps 1-2), records its own (3-4), flushes and
# records its first checkpoint (5-7) and is killed at the next flush (8). The next receive
# --resume finishes from the checkpoint.
t "kill tests"
THIN_BACKUP_FAULT=kill:2 thin-backup receive --dm-pool pool2 --from s11.tbs --checkpoint 256k > k1.out 2> k1.err
same "receive killed at its first flush" "$?" 137
THIN_BACKUP_FAULT=kill:8 thin-backup receive --dm-pool pool2 --from s11.tbs --checkpoint 256k > k2.out 2> k2.err
same "receive killed after its first checkpoint" "$?" 137
if grep -q "removed thin device 11, left half received" k2.err; then ok "the next receive removed the half device"; else fail "the next receive removed the half device" "$(tail -1 k2.err)"; fi
run "receive --resume finishes it" thin-backup receive --dm-pool pool2 --from s11.tbs --resume --json
if grep -q '"outcome" *: *"resumed"' receive_--resume_finishes_it.out; then ok "it was resumed"; else fail "it was resumed" "$(cat receive_--resume_finishes_it.out)"; fi
version pool2 11 110
t "resumed"
run "receive 12 with --keep 2" thin-backup receive --dm-pool pool2 --from s12.tbs --keep 2
same "--keep 2 deleted version 10" "$(devs pool2 $META2)" "11 12 "
version pool2 12 100
head -c 100000 s13.tbs > t13.tbs
before=$(devs pool2 $META2)
refused "a truncated stream" "truncated" thin-backup receive --dm-pool pool2 --from t13.tbs
same "the truncated stream left no device" "$(devs pool2 $META2)" "$before"
run "receive 13" thin-backup receive --dm-pool pool2 --from s13.tbs
version pool2 13 105
# A received version written in place (a whole block rewritten) is no longer a base.
thin pool2 13 w13 40960
fill /dev/mapper/w13 300 1
dmsetup remove w13
before=$(devs pool2 $META2)
refused "an increment onto a base written after it was received" "modified since it was received" thin-backup receive --dm-pool pool2 --from s14.tbs
same "the refused increment left no device" "$(devs pool2 $META2)" "$before"
dmsetup remove pool2
run "thin_check of the receiving pool" thin_check $META2

# A receiver with 192 KiB blocks (3 sender blocks each): 10 maps receiver blocks 0-33 (34);
# 11 maps 3-16, 20-33, 66-76 (39: whole blocks of zero and discard runs unmapped, edges zeroed).
t "pool2 done"
dd if=/dev/zero of=$META2 bs=4096 count=1 conv=fsync 2>/dev/null
dmsetup create pool3 --table "0 1048576 thin-pool $META2 $DATA2 384 64"
run "receive into 192 KiB blocks: full 10" thin-backup receive --dm-pool pool3 --from s10.tbs
version pool3 10 $((34 * 3))
run "receive into 192 KiB blocks: 10->11" thin-backup receive --dm-pool pool3 --from s11.tbs
version pool3 11 $((39 * 3))
# serve --dm-pool: the increment 11->12 sent to tb:// (discard 70-79 unmaps receiver blocks
# 24-25 whole and zeroes the edges in 23 and 26, which hold data: 37 blocks).
t "serve"
echo secret > token
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
thin-backup serve --dm-pool pool3 --listen 127.0.0.1:0 --token-file token --port-file port > serve.out 2> serve.err &
SERVE=$!
i=0; while [ ! -s port ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
run "send 11->12 to serve --dm-pool" thin-backup send --dm-pool pool --from 11 --snap 12 --size 20M --to "tb://127.0.0.1:$(cat port)" --token-file token
kill $SERVE; wait $SERVE
version pool3 12 $((37 * 3))
# restore --to-dm-pool: a backup chain of two (full, incremental) of the live source device.
t "backup"
run "backup --dm-pool: full" thin-backup backup --dm-pool pool --dev 1 --repo repo
fill /dev/mapper/src 310 3
run "backup --dm-pool: incremental" thin-backup backup --dm-pool pool --dev 1 --repo repo
KS=$(kernel_sha /dev/mapper/src)
run "restore --to-dm-pool: the chain of two" thin-backup restore --repo repo --dev 1 --to-dm-pool pool3 --as 40
thin pool3 40 r40 40960
same "restored device == the kernel's read of the source" "$(kernel_sha /dev/mapper/r40)" "$KS"
dmsetup remove r40
same "restore removed its intermediate version" "$(devs pool3 $META2)" "10 11 12 40 "
dmsetup remove pool3
run "thin_check of the 192 KiB pool" thin_check $META2

# Out of data space: a pool of 4 MiB (64 blocks) takes the 100 blocks of 10 and fails cleanly.
t "pool3 done"
dd if=/dev/zero of=$META2 bs=4096 count=1 conv=fsync 2>/dev/null
dmsetup create small --table "0 8192 linear $DATA2 0"
dmsetup create pool4 --table "0 8192 thin-pool $META2 /dev/mapper/small 128 0 1 error_if_no_space"
refused "out of data space mid-receive" "out of data space" thin-backup receive --dm-pool pool4 --from s10.tbs
same "the half device was deleted" "$(devs pool4 $META2)" ""
dmsetup remove pool4; dmsetup remove small
run "thin_check after out of data space" thin_check $META2
dmsetup remove src; dmsetup remove pool
t "end"
