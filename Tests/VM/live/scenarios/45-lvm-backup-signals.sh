# SIGTERM and SIGINT during `backup --lv` (issue #12): a nightly backup stopped while it sends
# (the kernel's metadata snapshot held, its LVM snapshot made) releases the metadata snapshot,
# removes the snapshot it made, deletes its partial stream and the repository lock, exits
# 128+signal, and leaves the volume group, the catalog and the previous base as they were; the
# next backup then works (full the first time, an increment from the kept base after) and every
# backup restores to the kernel's read of its snapshot. A signal while lvcreate is still making
# the snapshot (held up by a shared lock on the volume group, as another lvm command would)
# waits for it, then removes it: no snapshot outlives the run. After SIGKILL (no cleanup at
# all) the next backup releases the metadata snapshot and deletes the snapshot the killed run
# made, and the chain goes on from the kept base.
. /scenarios/lib.sh
pvcreate -q $LVMDISK && vgcreate -q tbvg $LVMDISK || { fail "LVM setup" "pvcreate/vgcreate"; exit 1; }
lvcreate -q -L 700M -c 64k -T tbvg/pool || { fail "LVM setup" "thin pool"; exit 1; }
lvcreate -q -V 64M -T tbvg/pool -n vol || { fail "LVM setup" "thin volume"; exit 1; }
VOL=/dev/mapper/tbvg-vol
TP=tbvg-pool-tpool
VID=$(lvs --noheadings -o thin_id tbvg/vol | tr -d ' ')
REPO=/out/$SCENARIO/repo
fill $VOL 0 600                  # 37.5 MiB: each send stopped by a signal still runs for seconds

lvs_now() { lvs --noheadings -o lv_name,lv_tags,thin_id tbvg | tr -s ' '; }
tagged() { lvs --noheadings -o lv_name -S "lv_tags=thin-backup" tbvg | tr -d ' ' | tr '\n' ' '; }
streams() { find $REPO -name '*.tbs*' 2>/dev/null | sort | tr '\n' ' '; }
held_wait() { # until the pool holds a metadata snapshot (or 60 s)
	i=0; while [ "$(status_field $TP 4)" = "-" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
# kernel_snap_sha LV: the kernel's read of a (skip-activation) snapshot LV.
kernel_snap_sha() {
	lvchange -q -ay -K tbvg/$1
	kernel_sha /dev/mapper/tbvg-$(echo $1 | sed 's/-/--/g')
	lvchange -q -an tbvg/$1
}

# stopped SIG LABEL: a backup stopped by SIG while it sends leaves everything as it was.
stopped() {
	sig=$1; label=$2
	LVS=$(lvs_now); OBJ=$(streams); LIST=$([ -d $REPO ] && thin-backup list --repo $REPO 2>&1)
	thin-backup backup --lv tbvg/vol --repo $REPO 2> "$label.err" &
	P=$!
	held_wait
	H=$(status_field $TP 4)
	[ "$H" != "-" ] && ok "$label: the backup holds the metadata snapshot (root $H)" || fail "$label: the backup holds the metadata snapshot" "none held"
	sleep 0.5
	kill -$sig $P; wait $P; rc=$?
	[ $sig = TERM ] && want=143 || want=130
	same "$label: exit status $want" "$rc" "$want"
	grep -q "interrupted by SIG$sig; cleaning up: release the metadata snapshot of $TP, delete backup snapshot .* and its partial stream, release the repository lock" "$label.err" \
		&& ok "$label: the line names what it cleaned up" || fail "$label: the line names what it cleaned up" "$(tr '\n' ' ' < "$label.err")"
	[ "$(grep -c . "$label.err")" = 1 ] && ok "$label: one line on stderr" || fail "$label: one line on stderr" "$(tr '\n' ' ' < "$label.err")"
	same "$label: the metadata snapshot is released" "$(status_field $TP 4)" "-"
	[ ! -e /var/lib/thin-backup/metadata-snaps/$TP.json ] && ok "$label: no reservation record left" \
		|| fail "$label: no reservation record left" "$(cat /var/lib/thin-backup/metadata-snaps/$TP.json)"
	same "$label: the volume group as before (the snapshot it made removed)" "$(lvs_now)" "$LVS"
	same "$label: no stream or partial stream left" "$(streams)" "$OBJ"
	[ ! -e $REPO/lock ] && ok "$label: no repository lock left" || fail "$label: no repository lock left" "$(cat $REPO/lock)"
	[ -z "$LIST" ] || same "$label: the catalog as before" "$(thin-backup list --repo $REPO 2>&1)" "$LIST"
	ps | grep -q "[l]vm \|[t]hin-backup " && fail "$label: no thin-backup or lvm process left" "$(ps | grep '[l]vm \|[t]hin-backup ')" \
		|| ok "$label: no thin-backup or lvm process left"
}

# 1. SIGTERM during the first (full) backup; the next backup is a full one.
stopped TERM "SIGTERM during the full backup"
run "backup 1 after SIGTERM" thin-backup backup --lv tbvg/vol --repo $REPO --now 2026-12-01T02:00:00Z
grep -q "backup 1: full" backup_1_after_SIGTERM.out && ok "backup 1 is full" || fail "backup 1 is full" "$(cat backup_1_after_SIGTERM.out)"
S1=$(tagged | tr -d ' ')
K1=$(kernel_snap_sha $S1)

# 2. Writes, then SIGINT during the incremental; the next one is still an increment from backup 1.
fill $VOL 150 300
dd if=/dev/zero of=$VOL bs=65536 seek=950 count=30 conv=notrunc,fsync 2>/dev/null
stopped INT "SIGINT during an incremental backup"
same "SIGINT: the previous backup's snapshot is kept" "$(tagged | tr -d ' ')" "$S1"
run "backup 2 after SIGINT" thin-backup backup --lv tbvg/vol --repo $REPO --now 2026-12-02T02:00:00Z
grep -q "backup 2: incremental of thin device $VID (snapshot .*, base backup 1)" backup_2_after_SIGINT.out \
	&& ok "backup 2 is an increment from backup 1" || fail "backup 2 is an increment from backup 1" "$(cat backup_2_after_SIGINT.out)"
S2=$(tagged | tr -d ' ')
[ "$S2" != "$S1" ] && ok "backup 2 kept its own snapshot ($S2), backup 1's removed" || fail "backup 2 kept its own snapshot" "tagged: $(tagged)"
K2=$(kernel_snap_sha $S2)

# 3. A signal while lvcreate waits for the volume group's lock: the snapshot is made, then removed.
fill $VOL 990 20
LVS=$(lvs_now); LIST=$(thin-backup list --repo $REPO 2>&1); OBJ=$(streams)
command -v flock >/dev/null || { fail "flock is in the guest" "not found: the lock cannot be held"; exit 1; }
mkfifo /tmp/unlock
flock -s /run/lock/lvm/V_tbvg sh -c 'read x < /tmp/unlock' &
L=$!
i=0; while flock -n -x /run/lock/lvm/V_tbvg true && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
flock -n -x /run/lock/lvm/V_tbvg true && { fail "the volume group's lock is held" "flock -n -x still takes it"; exit 1; }
thin-backup backup --lv tbvg/vol --repo $REPO 2> lvcreate.err &
P=$!
i=0; until ps | grep -q "[l]vm lvcreate" || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
ps | grep -q "[l]vm lvcreate" && ok "lvcreate waits for the volume group's lock" || fail "lvcreate waits for the volume group's lock" "no lvcreate seen"
kill -TERM $P
sleep 2
kill -0 $P 2>/dev/null && ok "SIGTERM waits for lvcreate to end" || fail "SIGTERM waits for lvcreate to end" "the backup ended at once: $(tr '\n' ' ' < lvcreate.err)"
echo go > /tmp/unlock
wait $L
wait $P; rc=$?
same "SIGTERM during lvcreate: exit status 143" "$rc" 143
grep -q "interrupted by SIGTERM; finishing taking the backup snapshot first" lvcreate.err \
	&& ok "SIGTERM during lvcreate: it says it finishes the snapshot first" || fail "SIGTERM during lvcreate: it says it finishes the snapshot first" "$(tr '\n' ' ' < lvcreate.err)"
grep -q "cleaning up: delete backup snapshot .* and its partial stream, release the repository lock" lvcreate.err \
	&& ok "SIGTERM during lvcreate: then removes the snapshot" || fail "SIGTERM during lvcreate: then removes the snapshot" "$(tr '\n' ' ' < lvcreate.err)"
same "SIGTERM during lvcreate: the volume group as before (no snapshot left)" "$(lvs_now)" "$LVS"
same "SIGTERM during lvcreate: no metadata snapshot held" "$(status_field $TP 4)" "-"
same "SIGTERM during lvcreate: the catalog as before" "$(thin-backup list --repo $REPO 2>&1)" "$LIST"
same "SIGTERM during lvcreate: no stream left" "$(streams)" "$OBJ"
[ ! -e $REPO/lock ] && ok "SIGTERM during lvcreate: no repository lock left" || fail "SIGTERM during lvcreate: no repository lock left" "$(cat $REPO/lock)"

# 4. SIGKILL during an incremental: nothing cleans up. The next backup releases the metadata
# snapshot and deletes the snapshot the killed run made (both said on stderr), then sends the
# increment from the kept base.
fill $VOL 300 300
thin-backup backup --lv tbvg/vol --repo $REPO 2> killed.err &
P=$!
held_wait
sleep 0.5
kill -9 $P; wait $P
H=$(status_field $TP 4)
[ "$H" != "-" ] && ok "SIGKILL leaves the metadata snapshot held (root $H)" || fail "SIGKILL leaves the metadata snapshot held" "none held"
same "SIGKILL leaves the snapshot it made beside the base" "$(tagged | wc -w)" 2
run "backup 3 after SIGKILL" thin-backup backup --lv tbvg/vol --repo $REPO --now 2026-12-03T02:00:00Z
grep -q "released the metadata snapshot (root $H) left by an interrupted thin-backup run" backup_3_after_SIGKILL.err \
	&& ok "backup 3 released the killed run's metadata snapshot" || fail "backup 3 released the killed run's metadata snapshot" "$(tr '\n' ' ' < backup_3_after_SIGKILL.err)"
grep -q "deleted snapshot [0-9]*, left on LVM thin pool tbvg/pool by an interrupted backup of thin device $VID" backup_3_after_SIGKILL.err \
	&& ok "backup 3 deleted the killed run's snapshot" || fail "backup 3 deleted the killed run's snapshot" "$(tr '\n' ' ' < backup_3_after_SIGKILL.err)"
grep -q "backup 3: incremental of thin device $VID (snapshot .*, base backup 2)" backup_3_after_SIGKILL.out \
	&& ok "backup 3 is an increment from backup 2" || fail "backup 3 is an increment from backup 2" "$(cat backup_3_after_SIGKILL.out)"
S3=$(tagged | tr -d ' ')
same "backup 3: one tagged snapshot left (its own)" "$(tagged | wc -w)" 1
same "backup 3: no metadata snapshot held" "$(status_field $TP 4)" "-"
K3=$(kernel_snap_sha $S3)

# 5. Every backup restores to the kernel's read of its snapshot; the repository verifies.
run "verify the repository" thin-backup verify --repo $REPO
run "restore backup 1" thin-backup restore --repo $REPO --dev $VID --id 1 --to b1.img
same "backup 1 restored == the kernel's read of its snapshot" "$(file_sha b1.img)" "$K1"
run "restore backup 2" thin-backup restore --repo $REPO --dev $VID --id 2 --to b2.img
same "backup 2 restored == the kernel's read of its snapshot" "$(file_sha b2.img)" "$K2"
run "restore backup 3" thin-backup restore --repo $REPO --dev $VID --id 3 --to b3.img
same "backup 3 restored == the kernel's read of its snapshot" "$(file_sha b3.img)" "$K3"
rm -f b1.img b2.img b3.img

vgchange -q -an tbvg
lvchange -q -ay -y tbvg/pool_tmeta
run "thin_check after the scenario" thin_check /dev/mapper/tbvg-pool_tmeta
lvchange -q -an tbvg/pool_tmeta
