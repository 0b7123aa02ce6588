#!/bin/busybox sh
# /init of the live VM (Tests/VM/live/live.sh): modules, disks by serial, then each
# /scenarios/NAME.sh in /scenarios/order in its own clean state; /out goes back as a tar.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin HOME=/root
export DM_DISABLE_UDEV=1
[ ! -f /etc/tb-env ] || . /etc/tb-env   # live.sh's TB_VM_LVM_LOG=1: THIN_BACKUP_LVM=/sbin/tb-lvm-log
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock/lvm /run/lvm
dmesg -n 1
echo "LP|INFO|kernel $(uname -r)"
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "LP|FAIL|init|insmod $m"; done
export META= DATA= META2= DATA2= OUTDISK= LVMDISK=
for d in /sys/block/vd*; do
	case "$(cat "$d/serial" 2>/dev/null)" in
	tb-meta) META=/dev/${d##*/} ;;
	tb-data) DATA=/dev/${d##*/} ;;
	tb-meta2) META2=/dev/${d##*/} ;;
	tb-data2) DATA2=/dev/${d##*/} ;;
	tb-lvm) LVMDISK=/dev/${d##*/} ;;
	tb-out) OUTDISK=/dev/${d##*/} ;;
	*) echo "LP|FAIL|init|unexpected disk ${d##*/}"; poweroff -f ;;
	esac
done
echo "LP|INFO|disks META=$META DATA=$DATA META2=$META2 DATA2=$DATA2 LVM=$LVMDISK OUT=$OUTDISK"
# A clean slate for each scenario: no dm devices, no LVM signatures, zeroed metadata heads,
# no thin-backup state (/var/lib/thin-backup) from the scenario before.
reset_disks() {
	rm -rf /var/lib/thin-backup
	vgchange -an >/dev/null 2>&1
	dmsetup remove_all -f >/dev/null 2>&1
	for d in $META $META2 $LVMDISK; do dd if=/dev/zero of=$d bs=1M count=4 conv=fsync 2>/dev/null; done
	blkdiscard $DATA 2>/dev/null; blkdiscard $DATA2 2>/dev/null
	blockdev --flushbufs $META $DATA $META2 $DATA2 $LVMDISK 2>/dev/null
}
for s in $(cat /scenarios/order); do
	reset_disks
	mkdir -p /out/$s
	echo "LP|INFO|scenario $s start $(cut -d' ' -f1 /proc/uptime)"
	( cd /out/$s && SCENARIO=$s timeout 1500 sh /scenarios/$s.sh; echo $? > /tmp/rc ) 2>&1 | tee /out/$s/log.txt
	echo "LP|END|$s|$(cat /tmp/rc)"
	# /out is guest memory and goes back through a 1 GiB disk: each scenario's streams, images
	# and repository objects over 1 MiB go once it ends (its check outputs and log stay).
	find /out/$s -type f -size +2048 -exec rm -f {} \;   # busybox find has no -delete
	echo "LP|INFO|scenario $s end $(cut -d' ' -f1 /proc/uptime)"
done
dmesg > /out/dmesg.txt
sync
tar -c -C /out . > "$OUTDISK" && sync
echo "LP|DONE"
poweroff -f
while :; do sleep 1; done
