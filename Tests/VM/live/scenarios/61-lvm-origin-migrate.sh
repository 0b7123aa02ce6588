# LVM (issue #13): `migrate --lv` of a thin volume with a writer running until the cutover (the
# volume is made read-only for the final round and stays so), and `merge --lv` of a thin volume
# made over an external origin LV back into that origin.
. /scenarios/lib.sh
ifconfig lo 127.0.0.1 up 2>/dev/null || ip link set lo up
pvcreate -q $LVMDISK && vgcreate -q tbvg $LVMDISK || { fail "LVM setup" "pvcreate/vgcreate"; exit 1; }
lvcreate -q -L 256M -T tbvg/pool || { fail "LVM setup" "thin pool"; exit 1; }
lvcreate -q -V 32M -T tbvg/pool -n vol || { fail "LVM setup" "thin volume"; exit 1; }
VOL=/dev/mapper/tbvg-vol
fill $VOL 0 128

# migrate --lv, a writer running until the cutover.
rm -rf /tmp/dst
run "create the receiving pool" thin-backup pool create --pool /tmp/dst --data-size 128M
printf %s "vm-migrate-token-0123456789abcdef" > token
thin-backup serve --pool /tmp/dst --listen 127.0.0.1:0 --token-file token --port-file port 2> serve.log &
S=$!
i=0; while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
sh -c 'i=0; while :; do dd if=/dev/urandom of=/dev/mapper/tbvg-vol bs=65536 seek=$(( (i * 37) % 500 )) count=2 conv=notrunc,fsync 2>/dev/null; i=$((i + 1)); done' &
W=$!
sleep 2
run "migrate --lv with a writer running until the cutover" thin-backup migrate --lv tbvg/vol \
	--to "tb://127.0.0.1:$(cat port)" --token-file token --until-delta 128k --max-rounds 2 --json || { kill $W $S; exit 1; }
R=migrate_--lv_with_a_writer_running_until_the_cutover.out
FINAL=$(grep -o '"finalSnapshot":[0-9]*' $R | cut -d: -f2)
echo "LP|INFO|migrate --lv: $(grep -o '"downtimeSeconds":[0-9.]*' $R) rounds $(grep -o '"round":[0-9]*' $R | tr '\n' ' ')"
same "the volume was left read-only" "$(lvs --noheadings -o lv_attr tbvg/vol | tr -d ' ' | cut -c2)" "r"
same "the report says read-only" "$(grep -o '"frozenAs":"read-only"' $R)" '"frozenAs":"read-only"'
kill $W; wait $W 2>/dev/null
kill $S; wait $S 2>/dev/null
SNAP=$(lvs --noheadings -o lv_name -S "thin_id=$FINAL" tbvg | tr -d ' ')
same "one tagged snapshot left: the final round's" "$(lvs --noheadings -o lv_name -S 'lv_tags=thin-backup' tbvg | tr -d ' ')" "$SNAP"
lvchange -q -ay -K tbvg/$SNAP
run "read the migrated device" thin-backup pool read --pool /tmp/dst --dev "$FINAL" --to /tmp/migrated.img
same "migrated device == the kernel's read of the final snapshot" "$(file_sha /tmp/migrated.img)" "$(kernel_sha /dev/mapper/tbvg-$(echo $SNAP | sed 's/-/--/g'))"
rm -f /tmp/migrated.img
lvremove -q -f tbvg/$SNAP
rm -rf /tmp/dst

# merge --lv: tbvg/clone is a thin volume over the external origin tbvg/golden (read-only, as LVM wants it).
lvcreate -q -L 32M -n golden tbvg
fill /dev/mapper/tbvg-golden 0 512
lvchange -q -an tbvg/golden && lvchange -q -p r tbvg/golden
lvcreate -q -s tbvg/golden --thinpool tbvg/pool -n clone || fail "LVM setup" "external origin snapshot"
lvchange -q -ay -K tbvg/clone
fill /dev/mapper/tbvg-clone 5 10
dd if=/dev/urandom of=/dev/mapper/tbvg-clone bs=4096 seek=$((30 * 16)) count=1 conv=notrunc,fsync 2>/dev/null
K=$(kernel_sha /dev/mapper/tbvg-clone)
refused "merge --lv while the volume is active" "is active as" thin-backup merge --lv tbvg/clone --into /dev/tbvg/golden
lvchange -q -an tbvg/clone
echo "LP|INFO|after deactivating the clone: $(lvs --noheadings -o lv_name,lv_attr,origin tbvg | tr -s ' ' | tr '\n' ';')"
lvchange -q -ay tbvg/golden 2>/dev/null
refused "merge --lv into another LV than its origin" "reads its unmapped blocks from" thin-backup merge --lv tbvg/clone --into /dev/tbvg/vol
refused "merge --lv into the read-only origin" "read-only" thin-backup merge --lv tbvg/clone --into /dev/tbvg/golden
# LVM refuses `lvchange -p rw` on an external origin: its dm table is made writable for the
# merge (README), and read-only again after.
if lvchange -q -p rw tbvg/golden 2> perm.err; then fail "LVM keeps the external origin read-only" "lvchange -p rw worked"
elif grep -q external_origin perm.err; then ok "LVM keeps the external origin read-only"
else fail "LVM keeps the external origin read-only" "$(tail -1 perm.err)"; fi
T=$(dmsetup table tbvg-golden)
dmsetup reload tbvg-golden --table "$T" && dmsetup resume tbvg-golden
run "merge --lv into the origin" thin-backup merge --lv tbvg/clone --into /dev/tbvg/golden
dmsetup reload --readonly tbvg-golden --table "$T" && dmsetup resume tbvg-golden
same "sha256 of the origin == the kernel's read of the volume before" "$(kernel_sha /dev/mapper/tbvg-golden)" "$K"
lvchange -q -ay -K tbvg/clone
same "the volume still reads as before over the merged origin" "$(kernel_sha /dev/mapper/tbvg-clone)" "$K"
lvchange -q -an tbvg/clone
same "no metadata snapshot left held" "$(status_field tbvg-pool-tpool 4)" "-"
vgchange -q -an tbvg
lvchange -q -ay -y tbvg/pool_tmeta 2>/dev/null
run "thin_check of the LVM pool" thin_check /dev/mapper/tbvg-pool_tmeta
