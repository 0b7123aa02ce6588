# An LVM thin volume (--lv VG/LV, --thin-pool VG/POOL): bad names and states refused with one
# line and nothing changed; reading commands (dump/pool ls/delta -m byte for byte against the
# thin tools on the pool's metadata LV); a send of a thin snapshot made by lvcreate; the
# nightly workflow: three backups with writes between and a writer running during each, older
# snapshots dropped (only tagged ones), every backup restored byte for byte; a user's volume
# with the snapshot's name never touched; a volume renamed between two backups still backed up
# as an increment from the kept base. The reading commands, send and backup each read the volume
# group's lvs report once, plus once after backup's lvcreate and before its lvremove (`counted`).
# (Until 2026-12-01 this hung: Foundation's Process lost an lvm child's exit; LVM.run now
# spawns lvm itself, drains both pipes and has a deadline.)
. /scenarios/lib.sh
pvcreate -q $LVMDISK && vgcreate -q tbvg $LVMDISK || { fail "LVM setup" "pvcreate/vgcreate"; exit 1; }
lvcreate -q -L 256M -T tbvg/pool || { fail "LVM setup" "thin pool"; exit 1; }
lvcreate -q -V 40M -T tbvg/pool -n vol || { fail "LVM setup" "thin volume"; exit 1; }
lvcreate -q -L 8M -n thick tbvg
VOL=/dev/mapper/tbvg-vol
fill $VOL 0 200
lvs_now() { lvs --noheadings -o lv_name,lv_tags tbvg | tr -s ' '; }

# Bad names: one line each, exit 1, the volume group as it was.
BEFORE=$(lvs_now)
refused "the LVM pool device as --metadata" "tmeta\|--lv\|--thin-pool" thin-backup pool ls --metadata /dev/mapper/tbvg-pool
refused "a thick (not thin) LV" "not a thin volume" thin-backup backup --lv tbvg/thick --repo /tmp/x
refused "a missing LV" "no such logical volume" thin-backup backup --lv tbvg/nosuch --repo /tmp/x
refused "a missing pool" "no such logical volume" thin-backup pool ls --thin-pool tbvg/nopool
refused "a thin volume as --thin-pool" "not a thin pool" thin-backup pool ls --thin-pool tbvg/vol
refused "a missing volume group" "novg" thin-backup send --lv novg/vol --to x.tbs
same "the volume group unchanged by the refusals" "$(lvs_now)" "$BEFORE"
[ ! -e /tmp/x ] && [ ! -e x.tbs ] && ok "no repository or stream left by the refusals" || fail "no repository or stream left by the refusals" "$(ls -d /tmp/x x.tbs 2>&1)"

# Reading commands.
VID=$(lvs --noheadings -o thin_id tbvg/vol | tr -d ' ')
counted 1 "pool ls --thin-pool" thin-backup pool ls --thin-pool tbvg/pool
grep -q "^ *$VID " pool_ls_--thin-pool.out && ok "pool ls lists the volume's thin id $VID" || fail "pool ls lists the volume's thin id $VID" "$(head -3 pool_ls_--thin-pool.out)"
counted 1 "pool check --lv (through a metadata snapshot)" thin-backup pool check --lv tbvg/vol
grep -q "clean: metadata snapshot at block" pool_check_--lv_\(through_a_metadata_snapshot\).out && ok "pool check read the snapshot" \
	|| fail "pool check read the snapshot" "$(cat pool_check_--lv_*.out)"
same "no metadata snapshot held after pool check" "$(status_field tbvg-pool-tpool 4)" "-"
lvcreate -q -s -n manual tbvg/vol
MID=$(lvs --noheadings -o thin_id tbvg/manual | tr -d ' ')

# The reading commands against the thin tools, byte for byte, through a metadata snapshot
# reserved by message: the volume written after the snapshot (new blocks, zeroes, a discard)
# so that delta has changes to show. thin_dump -m and thin_ls -m read the pool's active
# metadata LV (tbvg-pool_tmeta); thin_delta 0.9.0 opens its device O_EXCL even with -m, which
# the pool holding tbvg-pool_tmeta refuses, so it reads the same sectors through a read-only
# linear alias.
fill $VOL 150 20
dd if=/dev/zero of=$VOL bs=65536 seek=20 count=4 conv=notrunc,fsync 2>/dev/null
blkdiscard -o $((60 * 65536)) -l $((8 * 65536)) $VOL
TM=/dev/mapper/tbvg-pool_tmeta
dmsetup message tbvg-pool-tpool 0 reserve_metadata_snap
[ "$(status_field tbvg-pool-tpool 4)" != "-" ] && ok "reserve_metadata_snap by message holds a snapshot" || fail "reserve_metadata_snap by message holds a snapshot" "status field 4 is -"
thin_dump -m $TM > ref-dump.xml
counted 1 "dump --thin-pool -m" thin-backup dump --thin-pool tbvg/pool -m
same "dump --thin-pool -m == thin_dump -m of tbvg-pool_tmeta" "$(file_sha dump_--thin-pool_-m.out)" "$(file_sha ref-dump.xml)"
grep -q "<device dev_id=\"$MID\"" ref-dump.xml && ok "the dumps hold the snapshot $MID" || fail "the dumps hold the snapshot $MID" "$(grep '<device' ref-dump.xml | tr '\n' ' ')"
LSF=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME
thin_ls -m -o $LSF $TM > ref-ls.txt
counted 1 "pool ls --thin-pool -m" thin-backup pool ls --thin-pool tbvg/pool -m -o $LSF
same "pool ls --thin-pool -m == thin_ls -m (same columns)" "$(file_sha pool_ls_--thin-pool_-m.out)" "$(file_sha ref-ls.txt)"
dmsetup create tbmeta-alias --readonly --table "$(dmsetup table tbvg-pool_tmeta)"
thin_delta -m --snap1 $MID --snap2 $VID /dev/mapper/tbmeta-alias > ref-delta.xml 2> ref-delta.err \
	|| fail "thin_delta -m through the alias" "$(tail -1 ref-delta.err)"
dmsetup remove tbmeta-alias
counted 1 "delta --lv -m" thin-backup delta --lv tbvg/vol -m --snap1 $MID --snap2 $VID
same "delta --lv -m == thin_delta -m" "$(file_sha delta_--lv_-m.out)" "$(file_sha ref-delta.xml)"
grep -q "<different\|<left_only\|<right_only" ref-delta.xml && ok "the delta shows changes" || fail "the delta shows changes" "$(head -c 300 ref-delta.xml)"
dmsetup message tbvg-pool-tpool 0 release_metadata_snap
same "the metadata snapshot released" "$(status_field tbvg-pool-tpool 4)" "-"

counted 1 "send --lv of an lvcreate snapshot" thin-backup send --lv tbvg/manual --to manual.tbs
lvchange -q -ay -K tbvg/manual
KM=$(kernel_sha /dev/mapper/tbvg-manual)
run "restore the snapshot" restore manual.tbs 41943040 r.img
same "send --lv == the kernel's read" "$(file_sha r.img)" "$KM"
lvremove -q -f tbvg/manual

# Three nightly backups; a writer runs during each; writes between them.
REPO=/out/$SCENARIO/repo
n=1
while [ $n -le 3 ]; do
	fill $VOL $((n * 37)) 40
	( fill $VOL 300 60 ) &
	W=$!
	# lvm lvs: one report to open, one after its lvcreate, one before removing the old base.
	counted $([ $n = 1 ] && echo 2 || echo 3) "backup $n --lv" thin-backup backup --lv tbvg/vol --repo $REPO --now 2026-12-0${n}T02:00:00Z
	wait $W
	# The snapshot this backup kept (tagged) is what it must have saved.
	S=$(lvs --noheadings -o lv_name -S "lv_tags=thin-backup" tbvg | tr -d ' ')
	same "backup $n: one tagged snapshot kept, older ones dropped" "$(echo $S | wc -w)" 1
	same "backup $n: the snapshot is named by --now" "$S" "vol-tb-2026120${n}020000"
	lvchange -q -ay -K tbvg/$S
	eval "K$n=$(kernel_sha /dev/mapper/tbvg-$(echo $S | sed 's/-/--/g'))"
	lvchange -q -an tbvg/$S
	n=$((n + 1))
done
run "list" thin-backup list --repo $REPO
run "verify the repository" thin-backup verify --repo $REPO
n=1
while [ $n -le 3 ]; do
	run "restore backup $n" thin-backup restore --repo $REPO --dev $VID --id $n --to b$n.img
	eval "want=\$K$n"
	same "backup $n restored == the kernel's read of its snapshot" "$(file_sha b$n.img)" "$want"
	n=$((n + 1))
done

# A volume of the name backup would give its snapshot (the user's): never touched; the
# snapshot takes the next free name (-2).
lvcreate -q -s -n vol-tb-20261209020000 tbvg/vol
counted 3 "backup when its snapshot name exists" env THIN_BACKUP_NOW=2026-12-09T02:00:00Z thin-backup backup --lv tbvg/vol --repo $REPO
same "the snapshot is vol-tb-20261209020000-2, the one tagged" "$(lvs --noheadings -o lv_name -S lv_tags=thin-backup tbvg | tr -d ' ')" "vol-tb-20261209020000-2"
same "the user's volume of that name untouched (untagged, kept)" "$(lvs --noheadings -o lv_name,lv_tags tbvg/vol-tb-20261209020000 | tr -d ' ')" "vol-tb-20261209020000"
lvremove -q -f tbvg/vol-tb-20261209020000

# Bad states: one line, exit 1, nothing changed (volumes, catalog, held snapshot).
LIST=$(thin-backup list --repo $REPO)
BEFORE=$(lvs_now)
dmsetup message tbvg-pool-tpool 0 reserve_metadata_snap
HELD=$(status_field tbvg-pool-tpool 4)
refused "backup while another tool holds the metadata snapshot" "held by another tool" thin-backup backup --lv tbvg/vol --repo $REPO
same "their metadata snapshot still held" "$(status_field tbvg-pool-tpool 4)" "$HELD"
same "no volume left by the refused backup" "$(lvs_now)" "$BEFORE"
dmsetup message tbvg-pool-tpool 0 release_metadata_snap
same "the catalog unchanged by the refusals" "$(thin-backup list --repo $REPO)" "$LIST"

# A volume renamed between two backups is the same volume (state keyed by the pool's LV UUID
# and the thin id, not the name): the next backup is an increment from the kept base.
lvm lvrename -q tbvg/vol tbvg/vol2 || fail "lvrename tbvg/vol tbvg/vol2" "exit $?"
fill /dev/mapper/tbvg-vol2 500 30
counted 3 "backup after lvrename --lv tbvg/vol2" thin-backup backup --lv tbvg/vol2 --repo $REPO --now 2026-12-10T02:00:00Z
grep -q "backup 5: incremental of thin device $VID (snapshot .*, base backup 4)" backup_after_lvrename_--lv_tbvg_vol2.out \
	&& ok "the renamed volume's backup 5 is an increment from backup 4" || fail "the renamed volume's backup 5 is an increment from backup 4" "$(cat backup_after_lvrename_--lv_tbvg_vol2.out)"
S=$(lvs --noheadings -o lv_name -S "lv_tags=thin-backup" tbvg | tr -d ' ')
same "after lvrename: one tagged snapshot kept, of the new name and --now's time" "$S" "vol2-tb-20261210020000"
lvchange -q -ay -K tbvg/$S
K5=$(kernel_sha /dev/mapper/tbvg-$(echo $S | sed 's/-/--/g'))
lvchange -q -an tbvg/$S
run "restore backup 5" thin-backup restore --repo $REPO --dev $VID --id 5 --to b5.img
same "backup 5 (renamed volume) restored == the kernel's read of its snapshot" "$(file_sha b5.img)" "$K5"
rm -f b1.img b2.img b3.img b5.img

run "user's volume still there" lvs tbvg/vol2
same "no metadata snapshot left held" "$(status_field tbvg-pool-tpool 4)" "-"
vgchange -q -an tbvg
lvchange -q -ay -y tbvg/pool_tmeta      # component activation: the pool's metadata alone, read-only
run "thin_check after the scenario" thin_check /dev/mapper/tbvg-pool_tmeta
lvchange -q -an tbvg/pool_tmeta
