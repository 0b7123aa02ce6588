# Thin stays thin on a block device (issue #13): `merge --into /dev/mapper/THIN` of a full and
# an incremental stream onto a thin device of a pool with 256 KiB blocks (the sender's are
# 64 KiB). Zero and discard runs must unmap the receiver's whole blocks (BLKDISCARD) and write
# zeros only on unaligned edges; every byte reads as the kernel reads the source snapshot.
# Expected mapped counts are worked out by hand from the writes below (64 KiB blocks):
#   base (snap 10): random 0-99, zeros written over 20-40 (mapped), 60-69 discarded
#                   -> non-zero 0-19, 41-59, 70-99
#   next (snap 11): zeros over 0-9, 50-59 discarded, random 200-229
#                   -> non-zero 10-19, 41-49, 70-99, 200-229
# In 256 KiB receiver blocks (4 sender blocks each): base 0-4, 10-14, 17-24 = 18 blocks;
# next 2-4, 10-12, 17-24, 50-57 = 22 blocks (1 block = 512 sectors).
. /scenarios/lib.sh
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 src 65536                            # 32 MiB
fill /dev/mapper/src 0 100
dd if=/dev/zero of=/dev/mapper/src bs=65536 seek=20 count=21 conv=notrunc,fsync 2>/dev/null
blkdiscard -o $((60 * 65536)) -l $((10 * 65536)) /dev/mapper/src
ksnap pool src 10 1
dd if=/dev/zero of=/dev/mapper/src bs=65536 seek=0 count=10 conv=notrunc,fsync 2>/dev/null
blkdiscard -o $((50 * 65536)) -l $((10 * 65536)) /dev/mapper/src
fill /dev/mapper/src 200 30
ksnap pool src 11 1
dmsetup message pool 0 reserve_metadata_snap
run "send snapshot 10" thin-backup send --metadata $META --data $DATA -m --snap 10 --size 32M --to s10.tbs
run "send snapshot 11 from 10" thin-backup send --metadata $META --data $DATA -m --snap 11 --from 10 --size 32M --to s11.tbs
dmsetup message pool 0 release_metadata_snap
thin pool 10 snap10 65536
thin pool 11 snap11 65536
K10=$(kernel_sha /dev/mapper/snap10)
K11=$(kernel_sha /dev/mapper/snap11)

# Receiver: 256 KiB blocks.
dmsetup create pool2 --table "0 1048576 thin-pool $META2 $DATA2 512 64"
dmsetup message pool2 0 "create_thin 1"
thin pool2 1 dst 65536
run "merge the full stream into the thin device" thin-backup merge --stream s10.tbs --into /dev/mapper/dst
same "after the full stream: bytes == the kernel's read of snapshot 10" "$(kernel_sha /dev/mapper/dst)" "$K10"
same "after the full stream: 18 receiver blocks mapped (zero runs not written)" "$(dmsetup status dst | awk '{print $4}')" "$((18 * 512))"
run "merge the incremental stream into the thin device" thin-backup merge --stream s11.tbs --into /dev/mapper/dst
same "after the increment: bytes == the kernel's read of snapshot 11" "$(kernel_sha /dev/mapper/dst)" "$K11"
same "after the increment: 22 receiver blocks mapped (whole blocks discarded, edges zeroed)" "$(dmsetup status dst | awk '{print $4}')" "$((22 * 512))"
refused "merge into a device smaller than the stream's" "too small" sh -c 'dmsetup message pool2 0 "create_thin 2" && dmsetup create small --table "0 2048 thin /dev/mapper/pool2 2" && thin-backup merge --stream s10.tbs --into /dev/mapper/small'
dmsetup remove small 2>/dev/null
dmsetup remove dst; dmsetup remove pool2
run "thin_check of the receiving pool" thin_check $META2
dmsetup remove snap10; dmsetup remove snap11; dmsetup remove src; dmsetup remove pool
run "thin_check of the sending pool" thin_check $META
