# A raw kernel dm pool named with --dm-pool: reading commands equal the thin tools, sends
# (full, incremental, while the kernel commits) restore to the kernel's bytes, metadata
# snapshots are the kernel's (reserved and released by message; someone else's used with -m
# only and never released), bad states refused with one line.
. /scenarios/lib.sh
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 thin1 65536                      # 32 MiB on a 512 MiB data device (blocks up to 408 written)
fill /dev/mapper/thin1 0 300
ksnap pool thin1 2 1
fill /dev/mapper/thin1 100 50
dd if=/dev/zero of=/dev/mapper/thin1 bs=65536 seek=400 count=8 conv=notrunc,fsync 2>/dev/null
blkdiscard -o $((200 * 65536)) -l $((20 * 65536)) /dev/mapper/thin1
ksnap pool thin1 3 1
dmsetup suspend pool && dmsetup resume pool   # commit: the thin tools read the same metadata

# Reading commands against the thin tools, through a metadata snapshot reserved by message
# (the thin tools refuse the live metadata of an active pool; so do we for writes).
dmsetup message pool 0 reserve_metadata_snap
thin_dump -m $META > ref-dump.xml
run "dump --dm-pool -m" thin-backup dump --dm-pool pool -m
same "dump --dm-pool -m == thin_dump -m" "$(file_sha dump_--dm-pool_-m.out)" "$(file_sha ref-dump.xml)"
thin_ls -m -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS $META > ref-ls.txt
run "pool ls --dm-pool -m" thin-backup pool ls --dm-pool pool -m -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS
same "pool ls --dm-pool -m == thin_ls -m" "$(tr -s ' ' < pool_ls_--dm-pool_-m.out)" "$(tr -s ' ' < ref-ls.txt)"
dmsetup message pool 0 release_metadata_snap
run "pool check --dm-pool" thin-backup pool check --dm-pool pool
grep -q "clean: metadata snapshot at block .* (reserved for this check, released): .* 3 devices" pool_check_--dm-pool.out \
	&& ok "pool check read the 3 devices through a snapshot it reserved" || fail "pool check read the 3 devices through a snapshot it reserved" "$(cat pool_check_--dm-pool.out)"
same "no metadata snapshot left held" "$(status_field pool 4)" "-"

# Full and incremental sends; the kernel reads each snapshot for comparison.
thin pool 2 snap2 65536; K2=$(kernel_sha /dev/mapper/snap2); dmsetup remove snap2
thin pool 3 snap3 65536; K3=$(kernel_sha /dev/mapper/snap3); dmsetup remove snap3
run "send --dm-pool full of 2" thin-backup send --dm-pool pool --snap 2 --size 32M --to s2.tbs
run "send --dm-pool incremental 2->3" thin-backup send --dm-pool pool --from 2 --snap 3 --size 32M --to s3.tbs
same "no metadata snapshot held after the sends" "$(status_field pool 4)" "-"
run "restore 2" restore s2.tbs 33554432 r.img
same "full send of 2 == the kernel's read" "$(file_sha r.img)" "$K2"
run "merge 3 onto 2" thin-backup merge --stream s3.tbs --into r.img
same "incremental 2->3 == the kernel's read" "$(file_sha r.img)" "$K3"

# The size comes from the thin device's table when it is active (not the data device's 512 MiB).
thin pool 2 snap2 65536
run "send of an active snapshot without --size" thin-backup send --dm-pool pool --snap 2 --to s2b.tbs
run "verify the stream" thin-backup verify --stream s2b.tbs --json
grep -q '"virtualSize" *: *33554432' verify_the_stream.out && ok "stream records the table's size (32 MiB)" \
	|| fail "stream records the table's size (32 MiB)" "$(head -c 300 verify_the_stream.out)"
dmsetup remove snap2

# The kernel commits (snapshots, writes on another device) during a send.
dmsetup message pool 0 "create_thin 9"; thin pool 9 busy 65536
( i=0; while [ $i -lt 6 ]; do fill /dev/mapper/busy $((i * 20)) 20; ksnap pool busy $((50 + i)) 9; i=$((i + 1)); done ) &
BUSY=$!
run "pool check while the kernel commits" thin-backup pool check --dm-pool pool
run "send while the kernel commits" thin-backup send --dm-pool pool --from 2 --snap 3 --size 32M --to s3b.tbs
wait $BUSY
restore s2.tbs 33554432 r.img; thin-backup merge --stream s3b.tbs --into r.img
same "send during kernel commits == the kernel's read" "$(file_sha r.img)" "$K3"

# Someone else's metadata snapshot: used with -m, never released; refused without.
dmsetup message pool 0 reserve_metadata_snap
HELD=$(status_field pool 4)
refused "send without -m while another tool holds the snapshot" "held by another tool" \
	thin-backup send --dm-pool pool --snap 2 --size 32M --to x.tbs
run "send -m through someone else's snapshot" thin-backup send --dm-pool pool -m --snap 2 --size 32M --to s2m.tbs
run "pool check -m through someone else's snapshot" thin-backup pool check --dm-pool pool -m
same "their snapshot is still held, unchanged" "$(status_field pool 4)" "$HELD"
dmsetup message pool 0 release_metadata_snap

# Bad input and states.
refused "missing pool" "no device-mapper device named nosuch" thin-backup send --dm-pool nosuch --snap 2 --to x.tbs
refused "a thin device is not a pool" "not a thin-pool" thin-backup pool ls --dm-pool thin1
refused "a missing thin device" "no thin device 77\|not found\|77" thin-backup send --dm-pool pool --snap 77 --size 1M --to x.tbs
[ ! -e x.tbs ] && ok "no stream left by the refusals" || fail "no stream left by the refusals" "x.tbs exists"

# delta against thin_delta: thin_delta refuses an active pool's metadata even with -m, so
# ours runs live through a reserved snapshot and thin_delta reads the same snapshot offline.
dmsetup message pool 0 reserve_metadata_snap
run "delta --dm-pool -m" thin-backup delta --dm-pool pool -m --thin1 2 --thin2 3
dmsetup remove busy; dmsetup remove thin1; dmsetup remove pool
thin_delta -m --snap1 2 --snap2 3 $META > ref-delta.xml
same "delta --dm-pool -m == thin_delta -m" "$(file_sha delta_--dm-pool_-m.out)" "$(file_sha ref-delta.xml)"
run "thin_check after the scenario" thin_check $META
