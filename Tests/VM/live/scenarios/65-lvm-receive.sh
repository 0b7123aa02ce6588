# Receiving into LVM thin volumes (issue #13): `receive --lv` LVM → LVM, a full stream and two
# increments (zero writes, discards, rewrites), each version of tbvg/dst equal to the kernel's
# read of the source at its snapshot and mapping the blocks worked out by hand (never more than
# the source: zero runs unmapped); a wrong-base increment and one onto a version written since
# are refused with the volumes unchanged; SIGKILL right after lvcreate (the next receive removes
# the half volume), after a checkpoint (a plain re-run is refused naming --resume, which finishes it) and between the receipt and the
# renames (the next receive completes them); a pending receive discarded with the commands its
# refusal names; `restore --to-lv` of a backup chain of two;
# `serve --thin-pool` of an increment sent to tb://; thin_check of the receiving pool. The
# source pool is read with --dm-pool (its tpool): no lvm runs for sending. Kept small: every
# thin-backup and lvm run costs seconds under TCG. lvm lvs reports per receive (`counted`): one
# when it opens the pool, one after each lvcreate, one before removing an older version (restore).
#
# Source tbvg/src (8 MiB, 64 KiB blocks); mapped blocks source / receiver:
#   s1: random 0-19                                     -> 20 / 20
#   s2: zeros over 0-2, discard 10-14, random 40-49     -> 25 / 22
#   s3: random 5-7 (rewrite), discard 45-47,
#       random 100-104                                  -> 27 / 24
. /scenarios/lib.sh
T0=$(cut -d. -f1 /proc/uptime)
t() { echo "T $(($(cut -d. -f1 /proc/uptime) - T0))s $*"; }
pvcreate -q $LVMDISK && vgcreate -q tbvg $LVMDISK || { fail "LVM setup" "pvcreate/vgcreate"; exit 1; }
lvcreate -q -L 96M -c 64k -T tbvg/spool && lvcreate -q -L 96M -c 64k -T tbvg/rpool || { fail "LVM setup" "thin pools"; exit 1; }
lvcreate -q -V 8M -T tbvg/spool -n src || { fail "LVM setup" "thin volume"; exit 1; }
t "LVM setup"
SRC=/dev/mapper/tbvg-src
# snap N: the kernel's read of src (sha, mapped sectors) as K_N, M_N, then lvcreate -s sN.
snap() {
	eval "K$1=$(kernel_sha $SRC)"
	eval "M$1=$(dmsetup status tbvg-src | awk '{print $4}')"
	lvcreate -q -s -n s$1 tbvg/src
}
fill $SRC 0 20
snap 1
dd if=/dev/zero of=$SRC bs=65536 seek=0 count=3 conv=notrunc,fsync 2>/dev/null
blkdiscard -o $((10 * 65536)) -l $((5 * 65536)) $SRC
fill $SRC 40 10
snap 2
fill $SRC 5 3
blkdiscard -o $((45 * 65536)) -l $((3 * 65536)) $SRC
fill $SRC 100 5
snap 3
same "source mapped sectors as worked out (s1..s3)" "$M1 $M2 $M3" "$((20 * 128)) $((25 * 128)) $((27 * 128))"
IDS=$(lvs --noheadings -o lv_name,thin_id tbvg)
id() { echo "$IDS" | awk -v n=$1 '$1 == n {print $2}'; }
I1=$(id s1); I2=$(id s2); I3=$(id s3)
t "snapshots"
SP="--dm-pool tbvg-spool-tpool --size 8M"
run "send full s1" thin-backup send $SP --snap $I1 --to s1.tbs
run "send s1->s2" thin-backup send $SP --from $I1 --snap $I2 --to s2.tbs
run "send s2->s3" thin-backup send $SP --from $I2 --snap $I3 --to s3.tbs
t "sends"

lvs_now() { lvs --noheadings -o lv_name,thin_id,lv_tags -S pool_lv=rpool tbvg | tr -s ' ' | sort; }
# version LV N BLOCKS: tbvg/LV reads as the source at snapshot N and maps BLOCKS 64 KiB blocks
# (read through its thin id: dmsetup, no lvm activation).
version() {
	_id=$(lvs --noheadings -o thin_id tbvg/$1 | tr -d ' ')
	dmsetup create chk --table "0 16384 thin /dev/mapper/tbvg-rpool-tpool $_id"
	same "tbvg/$1 version $2: bytes == the kernel's read of the source at s$2" "$(kernel_sha /dev/mapper/chk)" "$(eval echo \$K$2)"
	same "tbvg/$1 version $2: mapped sectors (source: $(eval echo \$M$2))" "$(dmsetup status chk | awk '{print $4}')" "$(($3 * 128))"
	dmsetup remove chk
}

# The receiving pool is inactive (no volume of it active): the receive activates it.
counted 2 "receive --lv --thin-pool: full s1 creates tbvg/dst" thin-backup receive --lv tbvg/dst --thin-pool tbvg/rpool --from s1.tbs
same "tbvg/dst is tagged tb-received,thin-backup" "$(lvs --noheadings -o lv_tags tbvg/dst | tr -d ' ')" "tb-received,thin-backup"
version dst 1 20
BEFORE=$(lvs_now)
refused "an increment whose base tbvg/dst never received" "never received" thin-backup receive --lv tbvg/dst --from s3.tbs
same "the refusal changed no volume" "$(lvs_now)" "$BEFORE"
t "full"

# SIGKILL (THIN_BACKUP_FAULT steps: each state store is two, file and folder sync; a flush is
# one). s2: killed right after lvcreate -s (step 3: the new volume dst-tbrecv made, its UUID not
# recorded yet); the next run removes it (steps 1-2), records its own (3-6), flushes and records
# its first checkpoint (7-9) and is killed at its second checkpoint's flush (10); --resume ends it.
THIN_BACKUP_FAULT=kill:3 thin-backup receive --lv tbvg/dst --from s2.tbs > k1.out 2> k1.err
same "receive s2 killed after lvcreate" "$?" 137
THIN_BACKUP_FAULT=kill:10 thin-backup receive --lv tbvg/dst --from s2.tbs --checkpoint 128k > k2.out 2> k2.err
same "receive s2 killed after its first checkpoint" "$?" 137
grep -q "removed tbvg/dst-tbrecv, left half received" k2.err && ok "the next receive removed the half volume" || fail "the next receive removed the half volume" "$(tail -1 k2.err)"
same "tbvg/dst is still version 1 after the kills" "$(lvs --noheadings -o thin_id tbvg/dst | tr -d ' ')" "$(echo "$BEFORE" | awk '$1 == "dst" {print $2}')"
# A new run without --resume: refused, saying what is pending and how to go on (not "already exists").
refused "a plain re-run while the checkpointed receive is pending" "an interrupted receive into tbvg/dst is pending: continue it with receive --resume" thin-backup receive --lv tbvg/dst --from s2.tbs
grep -q "or discard it: .*lvremove tbvg/dst-tbrecv" a_plain_re-run_while_the_checkpointed_receive_is_pending.err && ok "the refusal says how to discard it" || fail "the refusal says how to discard it" "$(tail -1 a_plain_re-run_while_the_checkpointed_receive_is_pending.err)"
counted 1 "receive --resume finishes s2" thin-backup receive --lv tbvg/dst --from s2.tbs --resume --json
grep -q '"outcome" *: *"resumed"' receive_--resume_finishes_s2.out && ok "it was resumed" || fail "it was resumed" "$(cat receive_--resume_finishes_s2.out)"
version dst 2 22
KEPT1=$(lvs --noheadings -o lv_name tbvg | tr -d ' ' | grep '^dst-v')
same "version 1 kept beside it as dst-vTHINID" "$KEPT1" "dst-v$(echo "$BEFORE" | awk '$1 == "dst" {print $2}')"
version $KEPT1 1 20
t "s2 resumed"

# s3 into an active tbvg/dst: killed after its receipt is recorded, before the renames (step 8:
# 1-4 the new volume, 5-6 flushes, 7-8 the receipt); the next run completes them.
lvchange -q -ay tbvg/dst
THIN_BACKUP_FAULT=kill:8 thin-backup receive --lv tbvg/dst --from s3.tbs > k3.out 2> k3.err
same "receive s3 killed after its receipt, before the renames" "$?" 137
same "tbvg/dst is still version 2 before the renames" "$(kernel_sha /dev/mapper/tbvg-dst)" "$K2"
counted 1 "receive s3 again" thin-backup receive --lv tbvg/dst --from s3.tbs
grep -q "completed the interrupted receive of tbvg/dst" receive_s3_again.err && ok "it completed the renames" || fail "it completed the renames" "$(tail -1 receive_s3_again.err)"
grep -q "already received" receive_s3_again.out && ok "s3 counted as received" || fail "s3 counted as received" "$(cat receive_s3_again.out)"
same "the new tbvg/dst is active, as the old one was" "$(lvs --noheadings -o lv_attr tbvg/dst | tr -d ' ' | cut -c5)" "a"
version dst 3 24
t "s3 kills"

# restore --to-lv: a backup chain of two of a raw dm pool's device (no lvm on the sending side).
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 rsrc 16384
fill /dev/mapper/rsrc 0 10
run "backup --dm-pool: full" thin-backup backup --dm-pool pool --dev 1 --repo repo
fill /dev/mapper/rsrc 60 2
run "backup --dm-pool: incremental" thin-backup backup --dm-pool pool --dev 1 --repo repo
KR=$(kernel_sha /dev/mapper/rsrc)
counted 4 "restore --to-lv: the chain of two" thin-backup restore --repo repo --dev 1 --to-lv tbvg/restored --thin-pool tbvg/rpool
_id=$(lvs --noheadings -o thin_id tbvg/restored | tr -d ' ')
dmsetup create chk --table "0 16384 thin /dev/mapper/tbvg-rpool-tpool $_id"
same "tbvg/restored == the kernel's read of the source" "$(kernel_sha /dev/mapper/chk)" "$KR"
dmsetup remove chk
same "restore kept no intermediate version" "$(lvs --noheadings -o lv_name tbvg | tr -d ' ' | grep '^restored')" "restored"
t "restore"

# --thin-pool alone: device 5 is tbvg/tb-5. The full stream received here, the increment sent to
# serve --thin-pool over tb://.
counted 2 "receive --thin-pool --as 5: full s1 creates tbvg/tb-5" thin-backup receive --thin-pool tbvg/rpool --as 5 --from s1.tbs
echo secret > token
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
thin-backup serve --thin-pool tbvg/rpool --listen 127.0.0.1:0 --token-file token --port-file port > serve.out 2> serve.err &
SERVE=$!
i=0; while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
run "send s1->s2 to serve --thin-pool (tb://…/5)" thin-backup send $SP --from $I1 --snap $I2 --to "tb://127.0.0.1:$(cat port)/5" --token-file token
kill $SERVE; wait $SERVE
version tb-5 2 22
# A received version written since is no longer a base: block 40, which only version 2 of tb-5
# maps (armed: the write breaks sharing, so its mappings change).
_id=$(lvs --noheadings -o thin_id tbvg/tb-5 | tr -d ' ')
dmsetup create chk --table "0 16384 thin /dev/mapper/tbvg-rpool-tpool $_id"
fill /dev/mapper/chk 40 1
dmsetup remove chk
BEFORE=$(lvs_now)
refused "an increment onto tbvg/tb-5 written since it was received" "modified since it was received" thin-backup receive --thin-pool tbvg/rpool --as 5 --from s3.tbs
same "the refusal changed no volume" "$(lvs_now)" "$BEFORE"
t "serve"

# Discarding a pending receive the way its refusal says: s1 into a new tbvg/dis killed at its second
# checkpoint's flush (steps 1-4 the new volume, 5-7 the first checkpoint, 8), a plain re-run refused,
# the commands the refusal names run, then a plain receive of s1 makes tbvg/dis afresh.
THIN_BACKUP_FAULT=kill:8 thin-backup receive --lv tbvg/dis --thin-pool tbvg/rpool --from s1.tbs --checkpoint 128k > k4.out 2> k4.err
same "receive s1 into tbvg/dis killed after its first checkpoint" "$?" 137
refused "a plain receive into tbvg/dis while it is pending" "an interrupted receive into tbvg/dis is pending" thin-backup receive --lv tbvg/dis --thin-pool tbvg/rpool --from s1.tbs
CMD=$(sed -n 's/.*or discard it: \(.*\); not starting another over it$/\1/p' a_plain_receive_into_tbvg_dis_while_it_is_pending.err)
case "$CMD" in *"lvremove tbvg/dis-tbrecv") sh -c "$CMD" > discard.out 2>&1 && ok "the discard the refusal names ran: $CMD" || fail "the discard the refusal names ran" "$CMD: $(tail -1 discard.out)" ;;
*) fail "the refusal names the discard" "'$CMD'" ;; esac
run "a plain receive of s1 into tbvg/dis after the discard" thin-backup receive --lv tbvg/dis --thin-pool tbvg/rpool --from s1.tbs
version dis 1 20
t "discard"

same "no tbr- activation left" "$(dmsetup ls | grep -c '^tbr-')" 0
vgchange -q -an tbvg
lvchange -q -ay -y tbvg/rpool_tmeta
run "thin_check of the receiving pool" thin_check /dev/mapper/tbvg-rpool_tmeta
t "end"
echo "LP|INFO|65-lvm-receive guest seconds $(($(cut -d. -f1 /proc/uptime) - T0))"
