# The nightly workflow on a raw dm pool (--dm-pool P --dev N): two backups, a writer running
# during each and writes between, the older snapshot deleted, both restored byte for byte;
# a read-only pool, a pool out of data space and one that needs a check refused with one
# line, nothing changed.
. /scenarios/lib.sh
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 vol 131072                        # 64 MiB
fill /dev/mapper/vol 0 200
REPO=/out/$SCENARIO/repo
snaps() { thin-backup pool ls --dm-pool pool -m 2>/dev/null; }
n=1
while [ $n -le 2 ]; do
	fill /dev/mapper/vol $((n * 37)) 40
	( fill /dev/mapper/vol 300 60 ) &
	W=$!
	run "backup $n --dm-pool" thin-backup backup --dm-pool pool --dev 1 --repo $REPO --now 2026-12-0${n}T02:00:00Z
	wait $W
	S=$(sed -n 's/.*(snapshot \([0-9]*\).*/\1/p' backup_${n}_--dm-pool.out)
	[ -n "$S" ] && ok "backup $n names its snapshot ($S)" || fail "backup $n names its snapshot" "$(cat backup_${n}_--dm-pool.out)"
	eval "S$n=$S"
	thin pool $S snap 131072; eval "K$n=$(kernel_sha /dev/mapper/snap)"; dmsetup remove snap
	n=$((n + 1))
done
grep -q "deleted old snapshot $S1" backup_2_--dm-pool.out && ok "backup 2 deleted the older snapshot $S1" \
	|| fail "backup 2 deleted the older snapshot $S1" "$(cat backup_2_--dm-pool.out)"
dmsetup message pool 0 reserve_metadata_snap
thin_ls -m -o DEV $META | tr -d ' ' | grep -v DEV | sort -n | tr '\n' ' ' > devs.txt
dmsetup message pool 0 release_metadata_snap
same "the pool holds the volume and the newest snapshot only" "$(cat devs.txt)" "1 $S2 "
n=1
while [ $n -le 2 ]; do
	run "restore backup $n" thin-backup restore --repo $REPO --dev 1 --id $n --to b$n.img
	eval "want=\$K$n"
	same "backup $n restored == the kernel's read of its snapshot" "$(file_sha b$n.img)" "$want"
	n=$((n + 1))
done

# A read-only pool: refused, nothing changed.
LIST=$(thin-backup list --repo $REPO)
TABLE=$(dmsetup table pool)
dmsetup suspend vol; dmsetup suspend pool
dmsetup reload pool --table "$(echo "$TABLE" | sed 's/ 128 64.*/ 128 64 1 read_only/')"
dmsetup resume pool; dmsetup resume vol
same "the pool is read-only" "$(status_field pool 5)" "ro"
TXN=$(status_field pool 1)
refused "backup of a read-only pool" "read-only" thin-backup backup --dm-pool pool --dev 1 --repo $REPO
same "read-only: the pool's transaction unchanged" "$(status_field pool 1)" "$TXN"
same "read-only: no metadata snapshot held" "$(status_field pool 4)" "-"
same "read-only: the catalog unchanged" "$(thin-backup list --repo $REPO)" "$LIST"
dmsetup suspend vol; dmsetup suspend pool; dmsetup reload pool --table "$TABLE"; dmsetup resume pool; dmsetup resume vol

# A pool out of data space (1 MiB of data: 16 blocks; writes past it fail).
dmsetup create small-data --table "0 2048 linear $DATA2 0"
dmsetup create small --table "0 2048 thin-pool $META2 /dev/mapper/small-data 128 4 1 error_if_no_space"
dmsetup message small 0 "create_thin 1"
thin small 1 svol 65536
dd if=/dev/urandom of=/dev/mapper/svol bs=65536 count=32 conv=fsync 2>/dev/null
same "the small pool is out of data space" "$(status_field small 5)" "out_of_data_space"
TXN=$(status_field small 1)
refused "backup of a pool out of data space" "out of data space" thin-backup backup --dm-pool small --dev 1 --repo $REPO
same "out of data space: the pool's transaction unchanged" "$(status_field small 1)" "$TXN"
same "out of data space: the catalog unchanged" "$(thin-backup list --repo $REPO)" "$LIST"
dmsetup remove svol; dmsetup remove small; dmsetup remove small-data

# A pool whose metadata commit failed (writes to its metadata device fail: dm-flakey
# error_writes): the kernel aborts the transaction, sets needs_check and goes read-only.
dd if=/dev/zero of=$META2 bs=1M count=4 conv=fsync 2>/dev/null
dmsetup create mfl --table "0 131072 linear $META2 0"
dmsetup create npool --table "0 1048576 thin-pool /dev/mapper/mfl $DATA2 128 64"
dmsetup message npool 0 "create_thin 1"
thin npool 1 nvol 65536
fill /dev/mapper/nvol 0 10
dmsetup suspend nvol; dmsetup suspend npool; dmsetup suspend mfl
dmsetup load mfl --table "0 131072 flakey $META2 0 0 1 1 error_writes"
dmsetup resume mfl; dmsetup resume npool; dmsetup resume nvol
dmsetup message npool 0 "create_thin 2" 2>/dev/null
same "the pool needs a check" "$(status_field npool 5) $(status_field npool 8)" "ro needs_check"
TXN=$(status_field npool 1)
refused "backup of a pool that needs a check" "needs_check is set: repair it" thin-backup backup --dm-pool npool --dev 1 --repo $REPO
same "needs_check: the pool's transaction unchanged" "$(status_field npool 1)" "$TXN"
same "needs_check: the catalog unchanged" "$(thin-backup list --repo $REPO)" "$LIST"
dmsetup remove nvol; dmsetup remove npool; dmsetup remove mfl

dmsetup remove vol; dmsetup remove pool
run "thin_check after the scenario" thin_check $META
