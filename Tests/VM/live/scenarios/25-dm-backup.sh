# The nightly workflow on a raw dm pool (--dm-pool P --dev N): two backups, a writer running
# during each and writes between, the older snapshot deleted, both restored byte for byte;
# SIGTERM while a backup holds the metadata snapshot, then the next backup; sends that fail after
# reserving the metadata snapshot release it;
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

# SIGTERM while a backup holds the metadata snapshot (an increment of 400 new blocks): the
# backup is stopped (SIGSTOP) once the pool shows the snapshot held, so the signal lands while
# it is held however fast the binary is; then it exits 143 having released the snapshot and
# deleted the snapshot it made, its partial stream and the repository lock; the catalog is as
# before and the next backup is an increment from backup 2.
devs() { thin-backup pool ls --dm-pool pool -o DEV --no-headers | tr -d ' ' | sort -n | tr '\n' ' '; }
streams() { find $REPO -name '*.tbs*' | sort | tr '\n' ' '; }
gone() { ! kill -0 $1 2>/dev/null || grep -q '^State:.*Z' /proc/$1/status; }
fill /dev/mapper/vol 400 400
LIST=$(thin-backup list --repo $REPO); OBJ=$(streams); DEVS=$(devs)
thin-backup backup --dm-pool pool --dev 1 --repo $REPO > term.out 2> term.err &
P=$!
i=0; while [ "$(status_field pool 4)" = "-" ] && ! gone $P && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -STOP $P
H=$(status_field pool 4)
[ "$H" != "-" ] && ok "SIGTERM: the backup holds the metadata snapshot (root $H) when signalled" \
	|| fail "SIGTERM: the backup holds the metadata snapshot when signalled" "none held: $(cat term.out term.err | tr '\n' ' ')"
kill -TERM $P; kill -CONT $P; wait $P; rc=$?
same "SIGTERM: exit status 143" "$rc" 143
grep -q "interrupted by SIGTERM; cleaning up: .*release the metadata snapshot of pool" term.err \
	&& grep -q "delete backup snapshot .* and its partial stream" term.err && grep -q "release the repository lock" term.err \
	&& ok "SIGTERM: the line names what it cleaned up" || fail "SIGTERM: the line names what it cleaned up" "$(tr '\n' ' ' < term.err)"
same "SIGTERM: the metadata snapshot is released" "$(status_field pool 4)" "-"
[ ! -e /var/lib/thin-backup/metadata-snaps/pool.json ] && ok "SIGTERM: no reservation record left" \
	|| fail "SIGTERM: no reservation record left" "$(cat /var/lib/thin-backup/metadata-snaps/pool.json)"
same "SIGTERM: the pool's devices as before (the snapshot it made deleted)" "$(devs)" "$DEVS"
same "SIGTERM: no stream or partial stream left" "$(streams)" "$OBJ"
[ ! -e $REPO/lock ] && ok "SIGTERM: no repository lock left" || fail "SIGTERM: no repository lock left" "$(cat $REPO/lock)"
same "SIGTERM: the catalog as before" "$(thin-backup list --repo $REPO)" "$LIST"
run "backup 3 after SIGTERM" thin-backup backup --dm-pool pool --dev 1 --repo $REPO --now 2026-12-03T02:00:00Z
grep -q "backup 3: incremental of thin device 1 (snapshot .*, base backup 2)" backup_3_after_SIGTERM.out \
	&& ok "backup 3 is an increment from backup 2" || fail "backup 3 is an increment from backup 2" "$(cat backup_3_after_SIGTERM.out)"
S3=$(sed -n 's/.*(snapshot \([0-9]*\).*/\1/p' backup_3_after_SIGTERM.out)
thin pool $S3 snap 131072; K3=$(kernel_sha /dev/mapper/snap); dmsetup remove snap
run "restore backup 3" thin-backup restore --repo $REPO --dev 1 --id 3 --to b3.img
same "backup 3 restored == the kernel's read of its snapshot" "$(file_sha b3.img)" "$K3"
rm -f b1.img b2.img b3.img

# A send that fails after reserving the metadata snapshot releases it: a stream file in a
# folder that does not exist (opened after the reserve), a base that is not on the pool.
refused "send --to a missing folder" "no-such-dir" thin-backup send --dm-pool pool --snap $S3 --size 64M --to /no-such-dir/x.tbs
same "the failed send released the metadata snapshot" "$(status_field pool 4)" "-"
refused "send --from a missing base" "thin device 77 not found" thin-backup send --dm-pool pool --from 77 --snap $S3 --size 64M --to x.tbs
same "the send refused its base released the metadata snapshot" "$(status_field pool 4)" "-"
[ ! -e x.tbs ] && [ ! -e x.tbs.partial ] && ok "no stream left by the failed sends" || fail "no stream left by the failed sends" "$(ls x.tbs*)"

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
