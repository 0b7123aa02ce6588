# A send stopped by SIGTERM or SIGINT while it holds the kernel's metadata snapshot releases
# it on its way out (exit 128+signal, the line says what it cleaned up). A send killed with
# SIGKILL cannot: the snapshot stays held (the kernel keeps it on disk), the next run
# recognises it as ours (the record names a process that is gone), releases it with a
# warning and completes; the result is the kernel's bytes.
. /scenarios/lib.sh
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 thin1 131072                      # 64 MiB (1024 blocks)
fill /dev/mapper/thin1 0 1000                 # 62.5 MiB: a send of it takes seconds in the VM
ksnap pool thin1 2 1
thin pool 2 snap2 131072; K2=$(kernel_sha /dev/mapper/snap2); dmsetup remove snap2

held_wait() { # wait until the pool holds a metadata snapshot (or 60 s)
	i=0; while [ "$(status_field pool 4)" = "-" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
for sig in TERM INT; do
	thin-backup send --dm-pool pool --snap 2 --size 64M --to sig.tbs 2> sig$sig.err &
	P=$!
	held_wait; sleep 1
	kill -$sig $P; wait $P; rc=$?
	[ $sig = TERM ] && want=143 || want=130
	same "SIG$sig: the send ends with status $want" "$rc" "$want"
	same "SIG$sig: the metadata snapshot is released" "$(status_field pool 4)" "-"
	grep -q "interrupted by SIG$sig;.*release the metadata snapshot of pool" sig$sig.err \
		&& ok "SIG$sig: it says it released the snapshot" || fail "SIG$sig: it says it released the snapshot" "$(tail -1 sig$sig.err)"
	[ ! -e /var/lib/thin-backup/metadata-snaps/pool.json ] && ok "SIG$sig: no reservation record left" \
		|| fail "SIG$sig: no reservation record left" "$(cat /var/lib/thin-backup/metadata-snaps/pool.json)"
	rm -f sig.tbs sig.tbs.partial            # /out is guest memory
done
thin-backup send --dm-pool pool --snap 2 --size 64M --to killed.tbs 2> killed.err &
P=$!
held_wait; sleep 1
kill -9 $P; wait $P
H=$(status_field pool 4)
[ "$H" != "-" ] && ok "SIGKILL leaves the metadata snapshot held (root $H)" || fail "SIGKILL leaves the metadata snapshot held" "none held"
rm -f killed.tbs killed.tbs.partial
run "the next send recovers" thin-backup send --dm-pool pool --snap 2 --size 64M --to s2.tbs
grep -q "left by an interrupted thin-backup run" the_next_send_recovers.err && ok "it says it released the interrupted run's snapshot" \
	|| fail "it says it released the interrupted run's snapshot" "$(tail -1 the_next_send_recovers.err)"
same "no metadata snapshot held afterwards" "$(status_field pool 4)" "-"
run "restore" restore s2.tbs 67108864 r.img
same "recovered send == the kernel's read" "$(file_sha r.img)" "$K2"

dmsetup remove thin1; dmsetup remove pool
run "thin_check after the scenario" thin_check $META
