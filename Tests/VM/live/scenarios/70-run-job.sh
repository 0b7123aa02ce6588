# `thin-backup run JOB` against live kernel volumes: one job file naming a raw dm pool's thin
# device (dm-pool = NAME, dev = N) and an LVM thin volume (lv = VG/LV). Two nightly runs (full,
# then an increment after writes), keep-last = 1 (the prune consolidates), each volume's kept
# backup restored and compared with the kernel's read, the node_exporter metrics file checked
# value by value, and bad volumes refused at their line before anything starts.
. /scenarios/lib.sh
pool pool $META $DATA
dmsetup message pool 0 "create_thin 5"
thin pool 5 vol 131072                        # 64 MiB
fill /dev/mapper/vol 0 100
pvcreate -q $LVMDISK && vgcreate -q tbvg $LVMDISK || { fail "LVM setup" "pvcreate/vgcreate"; exit 1; }
lvcreate -q -L 256M -c 64k -T tbvg/pool || { fail "LVM setup" "thin pool"; exit 1; }
lvcreate -q -V 64M -T tbvg/pool -n lvol || { fail "LVM setup" "thin volume"; exit 1; }
LVOL=/dev/mapper/tbvg-lvol
fill $LVOL 0 50
VID=$(lvs --noheadings -o thin_id tbvg/lvol | tr -d ' ')
S=/out/$SCENARIO
cat > nightly.conf <<EOF
repository = $S/repo
state-dir = $S/state
keep-last = 1

[volume kern]
dm-pool = pool
dev = 5

[volume lvm]
lv = tbvg/lvol
EOF
# metric NAME{LABELS}: its value in nightly.prom, as a whole number.
metric() { awk -v n="thin_backup_$1" 'index($0, n " ") == 1 { printf "%d\n", $2 }' nightly.prom; }
vol() { metric "volume_$1{job=\"nightly\",volume=\"$2\"}"; }

# Volumes that are not there: refused at their section's line, before anything starts.
cp nightly.conf bad.conf
printf '\n[volume gone]\ndm-pool = pool\ndev = 7\n' >> bad.conf
refused "run: a missing thin device" "bad.conf:12: volume gone: dm pool pool has no thin device 7" thin-backup run ./bad.conf
sed 's/^dm-pool = pool/dm-pool = nosuch/' nightly.conf > nosuch.conf
refused "run: a missing dm pool" "nosuch.conf:5: volume kern: cannot open dm pool nosuch" thin-backup run ./nosuch.conf
sed 's|^lv = tbvg/lvol|lv = tbvg/nosuch|' nightly.conf > nolv.conf
refused "run: a missing LV" "nolv.conf:9: volume lvm: cannot open LVM volume tbvg/nosuch" thin-backup run ./nolv.conf
same "nothing started: no repository, no LVM snapshot" "$(ls $S/repo 2>/dev/null | wc -l) $(lvs --noheadings tbvg | wc -l)" "0 2"

run "run 1 (full)" thin-backup run ./nightly.conf --now 2026-12-01T02:00:00Z --metrics-file nightly.prom
same "run 1: exit code metric" "$(metric 'job_exit_code{job="nightly"}')" 0
same "run 1: both volumes backed up" "$(vol last_run_success kern) $(vol last_run_success lvm)" "1 1"
same "run 1: bytes read (100 and 50 written blocks)" "$(vol read_bytes kern) $(vol read_bytes lvm)" "$((100 * 65536)) $((50 * 65536))"
same "run 1: last success = --now" "$(vol last_success_timestamp_seconds kern) $(vol last_success_timestamp_seconds lvm)" "1796090400 1796090400"

fill /dev/mapper/vol 40 20
fill /dev/mapper/vol 900 5
fill $LVOL 20 10
K2=$(kernel_sha /dev/mapper/vol)
L2=$(kernel_sha $LVOL)
run "run 2 (incremental, prune)" thin-backup run ./nightly.conf --now 2026-12-02T02:00:00Z --metrics-file nightly.prom
same "run 2: bytes read (25 and 10 changed blocks)" "$(vol read_bytes kern) $(vol read_bytes lvm)" "$((25 * 65536)) $((10 * 65536))"
same "run 2: one backup each kept (keep-last = 1)" "$(vol backups_kept kern) $(vol backups_kept lvm)" "1 1"
same "run 2: last success = --now" "$(vol last_success_timestamp_seconds kern) $(metric 'job_last_success_timestamp_seconds{job="nightly"}')" "1796176800 1796176800"
run "restore the dm volume's kept backup" thin-backup restore --repo $S/repo --dev 5 --to k.img
same "dm volume: kept backup == the kernel's read at run 2" "$(file_sha k.img)" "$K2"
run "restore the LV's kept backup" thin-backup restore --repo $S/repo --dev $VID --to l.img
same "LV: kept backup == the kernel's read at run 2" "$(file_sha l.img)" "$L2"
same "LVM keeps one tagged snapshot" "$(lvs --noheadings -o lv_name -S 'lv_tags=thin-backup' tbvg | wc -w)" 1
same "no metadata snapshot left held" "$(status_field pool 4) $(status_field tbvg-pool-tpool 4)" "- -"
dmsetup remove vol
dmsetup remove pool
same "the dm pool holds the volume and the one snapshot the backup keeps" "$(thin_ls -o DEV --no-headers $META | wc -l)" 2
run "thin_check after the scenario" thin_check $META
