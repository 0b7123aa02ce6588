# PENDING, NOT RUN (live.sh runs scenarios/[0-9]*.sh only): in the VM of 2026-12-01 this
# scenario passed its first two checks and then hung in `backup --lv tbvg/nosuch` (more than
# 5 minutes, cause not found: the `lvm lvs` child run through Foundation's Process is the
# suspect). Move it back to scenarios/ once that is fixed.
# An LVM thin volume (--lv VG/LV): reading commands, a send of a thin snapshot made by
# lvcreate, and the nightly workflow: three backups with writes between and a writer
# running during each, older snapshots dropped, every backup restored byte for byte.
. /scenarios/lib.sh
pvcreate -q $LVMDISK && vgcreate -q tbvg $LVMDISK || { fail "LVM setup" "pvcreate/vgcreate"; exit 1; }
lvcreate -q -L 512M -T tbvg/pool || { fail "LVM setup" "thin pool"; exit 1; }
lvcreate -q -V 128M -T tbvg/pool -n vol || { fail "LVM setup" "thin volume"; exit 1; }
VOL=/dev/mapper/tbvg-vol
fill $VOL 0 200
TMETA=/dev/mapper/tbvg-pool_tmeta

# The pool's front device given as metadata: a helpful error.
refused "the LVM pool device as --metadata" "tmeta\|--lv\|--thin-pool" thin-backup pool ls --metadata /dev/mapper/tbvg-pool
lvcreate -q -L 8M -n thick tbvg
refused "a thick (not thin) LV" "not a thin volume" thin-backup backup --lv tbvg/thick --repo /tmp/x
refused "a missing LV" "no such logical volume" thin-backup backup --lv tbvg/nosuch --repo /tmp/x

run "pool ls --thin-pool" thin-backup pool ls --thin-pool tbvg/pool
lvcreate -q -s -n manual tbvg/vol
run "send --lv of an lvcreate snapshot" thin-backup send --lv tbvg/manual --to manual.tbs
lvchange -q -ay -K tbvg/manual
KM=$(kernel_sha /dev/mapper/tbvg-manual)
run "restore the snapshot" restore manual.tbs 134217728 r.img
same "send --lv == the kernel's read" "$(file_sha r.img)" "$KM"
lvremove -q -f tbvg/manual

# Three nightly backups; a writer runs during each; writes between them.
REPO=/out/$SCENARIO/repo
n=1
while [ $n -le 3 ]; do
	fill $VOL $((n * 37)) 40
	( fill $VOL 300 60 ) &
	W=$!
	run "backup $n --lv" thin-backup backup --lv tbvg/vol --repo $REPO --now 2026-12-0${n}T02:00:00Z
	wait $W
	# The snapshot this backup kept (tagged) is what it must have saved.
	S=$(lvs --noheadings -o lv_name -S "lv_tags=thin-backup && origin=vol" tbvg | tr -d ' ')
	same "backup $n kept one tagged snapshot" "$(echo "$S" | wc -w)" 1
	lvchange -q -ay -K tbvg/$S
	eval "K$n=$(kernel_sha /dev/mapper/tbvg-$(echo $S | sed 's/-/--/g'))"
	lvchange -q -an tbvg/$S
	n=$((n + 1))
done
VID=$(lvs --noheadings -o thin_id tbvg/vol | tr -d ' ')
run "list" thin-backup list --repo $REPO
run "verify the repository" thin-backup verify --repo $REPO
n=1
while [ $n -le 3 ]; do
	run "restore backup $n" thin-backup restore --repo $REPO --dev $VID --id $n --to b$n.img
	eval "want=\$K$n"
	same "backup $n restored == the kernel's read of its snapshot" "$(file_sha b$n.img)" "$want"
	n=$((n + 1))
done
run "user's volume still there" lvs tbvg/vol
same "no metadata snapshot left held" "$(status_field tbvg-pool-tpool 4)" "-"
vgchange -q -an tbvg
lvchange -q -ay -y tbvg/pool_tmeta      # component activation: the pool's metadata alone, read-only
run "thin_check after the scenario" thin_check /dev/mapper/tbvg-pool_tmeta
lvchange -q -an tbvg/pool_tmeta
