# Merge into an external origin (issue #13): a thin device made over a read-only external origin
# (a linear dm device, 32 MiB of random data) collects writes; `merge --dm-pool pool --dev 1
# --into /dev/mapper/origin` writes exactly its mapped blocks into the origin. The oracle is the
# kernel: the origin's sha256 afterwards equals the kernel's read of the thin device before.
# Writes (64 KiB pool blocks): random 5-14, zeros 20-21 (mapped), 4 KiB into block 30 (the
# kernel copies the origin's block first), block 50 written then discarded (unmapped again)
# -> 13 mapped blocks. Also: `send --dm-pool` of the device flags its stream "reads origin".
. /scenarios/lib.sh
dmsetup create origin --table "0 65536 linear $DATA2 0"
fill /dev/mapper/origin 0 512
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
over() { dmsetup create "$1" --table "0 65536 thin /dev/mapper/pool $2 /dev/mapper/origin"; }
over thin1 1
fill /dev/mapper/thin1 5 10
dd if=/dev/zero of=/dev/mapper/thin1 bs=65536 seek=20 count=2 conv=notrunc,fsync 2>/dev/null
dd if=/dev/urandom of=/dev/mapper/thin1 bs=4096 seek=$((30 * 16)) count=1 conv=notrunc,fsync 2>/dev/null
fill /dev/mapper/thin1 50 1
blkdiscard -o $((50 * 65536)) -l 65536 /dev/mapper/thin1
K=$(kernel_sha /dev/mapper/thin1)
O0=$(kernel_sha /dev/mapper/origin)
same "13 blocks mapped before the merge" "$(dmsetup status thin1 | awk '{print $4}')" "$((13 * 128))"

# The stream of a device over an origin says so (its unmapped blocks read the origin): merged
# onto a copy of the origin it gives the device's bytes.
run "send the device over the origin" thin-backup send --dm-pool pool --snap 1 --to s1.tbs
same "the stream is flagged: unmapped blocks read the origin" "$(thin-backup verify --stream s1.tbs --json | grep -o '"readsOrigin":true')" '"readsOrigin":true'
cp /dev/mapper/origin /tmp/copy.img
run "merge the stream onto a copy of the origin" thin-backup merge --stream s1.tbs --into /tmp/copy.img --origin /dev/mapper/origin
same "the copy reads as the device" "$(file_sha /tmp/copy.img)" "$K"
rm -f /tmp/copy.img s1.tbs

refused "merge while the thin device is active" "is active as thin1" \
	thin-backup merge --dm-pool pool --dev 1 --into /dev/mapper/origin
dmsetup remove thin1
dmsetup message pool 0 "create_thin 2"
over other 2
refused "merge while another thin device over the origin is active" "held by other" \
	thin-backup merge --dm-pool pool --dev 1 --into /dev/mapper/origin
dmsetup remove other
sh -c 'exec 3<>/dev/mapper/origin; exec sleep 60' &
W=$!
sleep 1
refused "merge while a process has the origin open for writing" "pid $W" \
	thin-backup merge --dm-pool pool --dev 1 --into /dev/mapper/origin
kill $W; wait $W 2>/dev/null
refused "merge into a device too small for the mapped blocks" "past the end of" \
	sh -c 'dmsetup create tiny --table "0 2048 linear '"$DATA2"' 131072" && thin-backup merge --dm-pool pool --dev 1 --into /dev/mapper/tiny'
dmsetup remove tiny 2>/dev/null
same "the refusals left the origin as it was" "$(kernel_sha /dev/mapper/origin)" "$O0"

run "merge thin device 1 into the origin" thin-backup merge --dm-pool pool --dev 1 --into /dev/mapper/origin --json
same "sha256 of the origin == the kernel's read of the thin device before the merge" "$(kernel_sha /dev/mapper/origin)" "$K"
same "the report counts 13 mapped blocks" "$(grep -o '"mappedBlocks":[0-9]*' merge_thin_device_1_into_the_origin.out)" '"mappedBlocks":13'
same "no temporary device left" "$(dmsetup ls | grep -c thin-backup-merge)" "0"
same "no metadata snapshot left held" "$(status_field pool 4)" "-"

run "merge again with --reset" thin-backup merge --dm-pool pool --dev 1 --into /dev/mapper/origin --reset
over thin1 1
same "after --reset: nothing mapped" "$(dmsetup status thin1 | awk '{print $4}')" "0"
same "after --reset: the empty device reads as before" "$(kernel_sha /dev/mapper/thin1)" "$K"
dmsetup remove thin1; dmsetup message pool 0 "delete 2"; dmsetup remove pool; dmsetup remove origin
run "thin_check of the pool" thin_check $META
