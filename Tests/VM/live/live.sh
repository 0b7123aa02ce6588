#!/bin/bash
# Tests/VM/live/live.sh OUTDIR [SCENARIO...]
#
# Boots Debian's own kernel (6.1) once under QEMU with thin-backup, dmsetup, lvm2,
# thin_check and thin_dump in the initramfs, and runs the guest scenario scripts
# Tests/VM/live/scenarios/NAME.sh (all of them by default) one after another against
# live kernel dm-thin pools and LVM thin volumes. Each scenario reports its checks on the
# serial console (`LP|OK|scenario|check`, `LP|FAIL|scenario|check|why`, see
# scenarios/lib.sh); the host collects them into OUTDIR/results.txt.
# Exit 0 only when every scenario ran to its end with no failed check.
#
# Environment:
#   TB_BIN          the thin-backup to test (required; its libraries go along, without debug
#                   sections; one linked with --static-swift-stdlib makes the initramfs smaller)
#   TB_VM_TIMEOUT   seconds before the VM is killed (default 1200)
#   TB_VM_MEM       guest memory in MiB (default 2048; /out lives in it)
#   TB_VM_EXTRA     more host programs for the guest, e.g. "strace" (debugging a scenario)
#   TB_VM_LVM_LOG=1 every thin-backup run in the guest runs lvm through /sbin/tb-lvm-log, which logs
#                   each call (guest uptime, thin-backup's pid and command line, lvm's arguments)
#                   to /out/SCENARIO/lvm-calls.txt; OUTDIR/lvm-calls.txt then counts them per run
#                   (a scenario may use the wrapper itself: THIN_BACKUP_LVM=/sbin/tb-lvm-log)
#   TB_VM_ROOT, TB_VM_KERNEL_PKG, TB_VM_ACCEL, TB_VM_KEEP_WORK=1: see ../vm-lib.sh
#
# The guest gets only image files: two pairs of disks for raw dm pools (META/DATA,
# META2/DATA2: 64 MiB + 512 MiB), one 1 GiB disk for an LVM volume group (LVMDISK), and
# an output disk whose tar comes back as OUTDIR/out/ (each scenario's files under
# /out/NAME/). No network, no other disk.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[vm-live %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
. "$HERE/../vm-lib.sh"
[ $# -ge 1 ] || { sed -n '2,25p' "$0"; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (device nodes in the initramfs tree)"
OUTDIR=$(realpath -m "$1"); shift
SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} = 0 ]; then
	for f in "$HERE"/scenarios/[0-9]*.sh; do SCENARIOS+=("$(basename "$f" .sh)"); done
fi
for s in "${SCENARIOS[@]}"; do [ -f "$HERE/scenarios/$s.sh" ] || die "no scenario $s in $HERE/scenarios"; done
TB=${TB_BIN:-}
[ -n "$TB" ] && [ -x "$TB" ] || die "TB_BIN=/path/to/thin-backup is required"
T0=$(date +%s)

vm_host_packages qemu-system-x86 thin-provisioning-tools dmsetup
vm_kernel
mkdir -p "$TB_VM_ROOT/work"
WORK=$(mktemp -d "$TB_VM_ROOT/work/live.XXXXXX")
trap '[ "${TB_VM_KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"' EXIT
R=$WORK/root
vm_root_tree "$R"
mkdir -p "$R/out" "$R/scenarios"
vm_copy_bin "$R" "$(command -v dmsetup)"
vm_copy_bin "$R" "$TB"
[ "$(basename "$TB")" = thin-backup ] || mv "$R/sbin/$(basename "$TB")" "$R/sbin/thin-backup"
# thin-backup loads libcurl and libdevmapper on first use (dlopen), so ldd does not list them:
# libdevmapper comes with dmsetup above; copy libcurl and its libraries.
CURL=$(ldconfig -p | awk '/libcurl\.so\.4 .*x86-64/ {print $NF; exit}')
[ -n "$CURL" ] || die "libcurl.so.4: not on this host (apt-get install libcurl4)"
mkdir -p "$R$(dirname "$CURL")"; cp -L "$CURL" "$R$CURL"; vm_copy_libs "$R" "$CURL"
# flock (util-linux; busybox here has none): 45-lvm-backup-signals holds the volume group's lock with it.
for b in thin_check thin_dump thin_ls thin_delta flock ${TB_VM_EXTRA:-}; do
	command -v "$b" >/dev/null || die "$b: not on this host"
	vm_copy_bin "$R" "$(command -v "$b")"
done
# lvm2 from its .deb (not installed on the host), with the libraries it needs beyond the host's.
LX=$(vm_extract "$(vm_fetch_deb lvm2)")
EX=$(vm_extract "$(vm_fetch_deb libdevmapper-event1.02.1)")
AX=$(vm_extract "$(vm_fetch_deb libaio1)")
LP=$EX/lib/x86_64-linux-gnu:$AX/lib/x86_64-linux-gnu:$EX/usr/lib/x86_64-linux-gnu:$AX/usr/lib/x86_64-linux-gnu
vm_copy_bin "$R" "$LX/sbin/lvm" "$LP"
for t in pvcreate vgcreate lvcreate lvs vgs pvs lvchange vgchange lvremove vgremove lvdisplay lvconvert; do
	ln -s lvm "$R/sbin/$t"
done
# lvm with a log of each call (THIN_BACKUP_LVM=/sbin/tb-lvm-log): uptime, the caller's pid and
# command line, lvm's arguments, tab-separated, to /out/SCENARIO/lvm-calls.txt and $TB_LVM_LOG.
cat > "$R/sbin/tb-lvm-log" <<'LOGGER'
#!/bin/sh
read up _ < /proc/uptime
line=$(printf '%s\t%s\t%s\t%s' "$up" "$PPID" "$(tr '\0' ' ' < /proc/$PPID/cmdline)" "$*")
echo "$line" >> "/out/${SCENARIO:-none}/lvm-calls.txt"
[ -z "${TB_LVM_LOG:-}" ] || echo "$line" >> "$TB_LVM_LOG"
exec /sbin/lvm "$@"
LOGGER
chmod 755 "$R/sbin/tb-lvm-log"
[ "${TB_VM_LVM_LOG:-0}" != 1 ] || echo "export THIN_BACKUP_LVM=/sbin/tb-lvm-log" > "$R/etc/tb-env"
mkdir -p "$R/etc/lvm" "$R/run/lock/lvm" "$R/run/lvm"
# udev is absent: LVM creates its /dev nodes itself. Its thin_check hook is off (the
# scenarios run thin_check themselves, on what they choose).
cat > "$R/etc/lvm/lvm.conf" <<'EOF'
config { checks = 1 }
devices { obtain_device_list_from_udev = 0 external_device_info_source = "none" scan = [ "/dev" ] filter = [ "a|^/dev/vd|", "r|.*|" ] }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
global { use_lvmpolld = 0 thin_check_executable = "" thin_repair_executable = "" event_activation = 0 }
EOF
vm_modules "$R" virtio_pci virtio_blk dm-thin-pool dm-snapshot dm-flakey
install -m 755 "$HERE/guest-init.sh" "$R/init"
install -m 644 "$HERE/scenarios/lib.sh" "$R/scenarios/lib.sh"
for s in "${SCENARIOS[@]}"; do install -m 755 "$HERE/scenarios/$s.sh" "$R/scenarios/$s.sh"; echo "$s" >> "$R/scenarios/order"; done
vm_cpio "$R" "$WORK/initramfs.cpio"
MIB=$(du -m "$WORK/initramfs.cpio" | cut -f1)
log "initramfs $MIB MiB"

mkdir -p "$OUTDIR"; rm -rf "$OUTDIR/out"
rm -f "$OUTDIR"/{meta,data,meta2,data2,out,lvm}.img "$OUTDIR"/{console.log,results.txt,timing.txt}
truncate -s 64M "$OUTDIR/meta.img"; truncate -s 512M "$OUTDIR/data.img"
truncate -s 64M "$OUTDIR/meta2.img"; truncate -s 512M "$OUTDIR/data2.img"
truncate -s 1G "$OUTDIR/lvm.img"; truncate -s 1G "$OUTDIR/out.img"
DRIVES=()
disk() { DRIVES+=(-drive "file=$OUTDIR/$1,format=raw,if=none,id=$2,cache=writeback,discard=unmap" -device "virtio-blk-pci,drive=$2,serial=$3"); }
disk meta.img d0 tb-meta; disk data.img d1 tb-data; disk meta2.img d2 tb-meta2; disk data2.img d3 tb-data2
disk lvm.img d4 tb-lvm; disk out.img d5 tb-out
vm_accel
log "booting $KREL ($ACCEL) for ${SCENARIOS[*]}"
TV0=$(date +%s)
rc=0
timeout "${TB_VM_TIMEOUT:-1200}" qemu-system-x86_64 -nodefaults -no-user-config -no-reboot -display none \
	-machine q35,accel="$ACCEL" -cpu "$CPU" -smp 2 -m "${TB_VM_MEM:-2048}" \
	-kernel "$VMLINUZ" -initrd "$WORK/initramfs.cpio" \
	-append "console=ttyS0,115200 panic=-1 loglevel=4 no_timer_check" \
	-chardev file,id=con,path="$OUTDIR/console.log" -serial chardev:con \
	"${DRIVES[@]}" > "$OUTDIR/qemu.log" 2>&1 || rc=$?
TV1=$(date +%s)
mkdir -p "$OUTDIR/out"
tar -xf "$OUTDIR/out.img" -C "$OUTDIR/out" 2>/dev/null || log "no tar on the out disk"
rm -f "$OUTDIR"/{meta,data,meta2,data2,out,lvm}.img
echo "qemu_rc=$rc vm_seconds=$((TV1 - TV0)) total_seconds=$(($(date +%s) - T0)) initramfs_mib=$MIB" | tee "$OUTDIR/timing.txt" >&2
# The lvm calls logged, per thin-backup run: scenario, lvm subcommands counted, its command line.
rm -f "$OUTDIR/lvm-calls.txt"
for f in "$OUTDIR"/out/*/lvm-calls.txt; do
	[ -f "$f" ] || continue
	awk -F'\t' -v s="$(basename "$(dirname "$f")")" '
		{ split($4, a, " "); k = $2; if (!(k in cmd)) { order[++n] = k; cmd[k] = $3 }
		  if (!((k, a[1]) in c)) verbs[k] = verbs[k] " " a[1]; c[k, a[1]]++ }
		END { for (i = 1; i <= n; i++) { k = order[i]; line = ""; m = split(verbs[k], v, " ")
			for (j = 1; j <= m; j++) line = line v[j] "=" c[k, v[j]] " "
			printf "%s\t%s\t%s\n", s, line, cmd[k] } }' "$f" >> "$OUTDIR/lvm-calls.txt"
done
[ ! -s "$OUTDIR/lvm-calls.txt" ] || log "lvm calls per thin-backup run: $OUTDIR/lvm-calls.txt"

# Results: every check line, then one line per scenario that did not end.
tr -d '\r' < "$OUTDIR/console.log" | grep -E '^LP\|(OK|FAIL|END)\|' > "$OUTDIR/results.txt" || true
failed=0
while IFS='|' read -r _ kind scen check why; do
	case $kind in
	OK) echo "ok   $scen: $check" ;;
	FAIL) echo "FAIL $scen: $check${why:+ — $why}"; failed=1 ;;
	END) [ "$check" = 0 ] || { echo "FAIL $scen: the scenario script stopped with status $check"; failed=1; } ;;
	esac
done < "$OUTDIR/results.txt"
for s in "${SCENARIOS[@]}"; do
	grep -q "^LP|END|$s|" "$OUTDIR/results.txt" || { echo "FAIL $s: did not run to its end (see $OUTDIR/console.log)"; failed=1; }
done
grep -q '^LP|DONE' "$OUTDIR/console.log" || { echo "FAIL the guest did not finish (qemu exit $rc; see $OUTDIR/console.log)"; failed=1; }
exit $failed
