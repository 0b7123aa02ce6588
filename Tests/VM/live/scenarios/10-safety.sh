# Safety on a live kernel pool given by its devices (--metadata/--data):
#  * the stale-readahead wrong backup of issue #12: a send reads data blocks whose
#    neighbours the kernel writes next (below the page cache); a later send of a snapshot
#    holding those blocks must carry the kernel's bytes (O_DIRECT reads);
#  * never write a device device-mapper holds: send without -m (which reserves the metadata
#    snapshot itself in userspace on a pool folder: the corrupted pool of issue #12) is
#    refused, and the metadata device stays byte for byte as it was;
#  * a send over the bare devices records the thin device's size, not the data device's;
#  * the pool device itself given as metadata gets a helpful error.
. /scenarios/lib.sh
pool pool $META $DATA
dmsetup message pool 0 "create_thin 20"
thin pool 20 thin20 131072                       # 64 MiB
fill /dev/mapper/thin20 0 450                    # data blocks 0-449
ksnap pool thin20 21 20
dmsetup message pool 0 "create_thin 22"
thin pool 22 thin22 131072
fill /dev/mapper/thin22 0 64                     # 450-513
ksnap pool thin22 23 22                          # 23 maps data blocks 450-513
dmsetup message pool 0 reserve_metadata_snap
run "send -m of snapshot 23" thin-backup send --metadata $META --data $DATA -m --snap 23 --size 64M --to s23.tbs
dmsetup message pool 0 release_metadata_snap
# The kernel now writes thin 22 into the next free blocks (514-577), right after what the
# send read: a buffered reader's readahead has those blocks cached, still empty.
fill /dev/mapper/thin22 0 64
ksnap pool thin22 24 22
dmsetup message pool 0 reserve_metadata_snap
run "send -m of snapshot 24 (blocks written after the first send)" \
	thin-backup send --metadata $META --data $DATA -m --snap 24 --size 64M --to s24.tbs
dmsetup message pool 0 release_metadata_snap
thin pool 24 snap24 131072
K24=$(kernel_sha /dev/mapper/snap24)
run "restore snapshot 24" restore s24.tbs 67108864 r24.img
same "snapshot 24 restored == the kernel's read (no stale page cache)" "$(file_sha r24.img)" "$K24"
if cat send_-m_of_snapshot_24_* | grep -q "64 data, 0 zero"; then ok "send of 24 counted 64 data blocks"
else fail "send of 24 counted 64 data blocks" "$(cat send_-m_of_snapshot_24_* | tail -1)"; fi
dmsetup remove snap24

# The device's size over bare paths (issue #12: a send recorded the data device's 512 MiB):
# the active thin table's 64 MiB, found through the pool that holds the metadata device; an
# inactive device's size is unknown, so the send is refused and asks for --size.
dmsetup message pool 0 reserve_metadata_snap
run "send -m of active thin 22 without --size" \
	thin-backup send --metadata $META --data $DATA -m --snap 22 --to s22.tbs
refused "send -m of inactive snapshot 21 without --size" "is not active, so its size is unknown.*--size" \
	thin-backup send --metadata $META --data $DATA -m --snap 21 --to s21n.tbs
[ ! -e s21n.tbs ] && ok "no stream left by the refusal of 21" || fail "no stream left by the refusal of 21" "s21n.tbs exists"
dmsetup message pool 0 release_metadata_snap
rm -f n22.img
run "merge of 22's stream into a new file" thin-backup merge --stream s22.tbs --into n22.img
same "the new file has thin 22's size (64 MiB, not the data device's)" "$(stat -c %s n22.img)" 67108864
same "thin 22 restored == the kernel's read" "$(file_sha n22.img)" "$(kernel_sha /dev/mapper/thin22)"
rm -f n22.img s22.tbs

# Writing a held device: send without -m would reserve in userspace (write the metadata).
BEFORE=$(kernel_sha $META)
refused "send without -m on the held metadata device" "in use by device-mapper" \
	thin-backup send --metadata $META --data $DATA --snap 21 --to s21.tbs
same "metadata device unchanged after the refusal" "$(kernel_sha $META)" "$BEFORE"
[ ! -e s21.tbs ] && ok "no stream left by the refusal" || fail "no stream left by the refusal" "s21.tbs exists"
refused "pool reserve-metadata-snap on the held metadata device" "in use by device-mapper" \
	thin-backup pool reserve-metadata-snap --metadata $META --data $DATA
same "status: no metadata snapshot held" "$(status_field pool 4)" "-"

# The pool device given as its metadata: says what it is and what to give instead.
refused "the pool device as --metadata" "is the live thin pool pool, not its metadata device" \
	thin-backup pool ls --metadata /dev/mapper/pool

dmsetup remove thin20; dmsetup remove thin22; dmsetup remove pool
run "thin_check after the scenario" thin_check $META
