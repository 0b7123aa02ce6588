# Migrate a live dm thin device into a kernel pool (issue #13): a writer keeps writing to
# /dev/mapper/src while `migrate --dm-pool pool --dev 1` sends rounds of increments over tb:// to
# `serve --dm-pool pool2` (a second kernel pool); for the final round migrate suspends src (the
# writer's next write waits) and leaves it suspended. The migrated device must read exactly as the
# kernel reads the final snapshot made at the cutover.
. /scenarios/lib.sh
ifconfig lo 127.0.0.1 up 2>/dev/null || ip link set lo up
pool pool $META $DATA
dmsetup message pool 0 "create_thin 1"
thin pool 1 src 65536                            # 32 MiB
fill /dev/mapper/src 0 256
pool pool2 $META2 $DATA2
printf %s "vm-migrate-token-0123456789abcdef" > token
thin-backup serve --dm-pool pool2 --listen 127.0.0.1:0 --token-file token --port-file port 2> serve.log &
S=$!
i=0; while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
# The writer: two random blocks at a time, all over the device, until the cutover stops it.
sh -c 'i=0; while :; do dd if=/dev/urandom of=/dev/mapper/src bs=65536 seek=$(( (i * 37) % 500 )) count=2 conv=notrunc,fsync 2>/dev/null; i=$((i + 1)); done' &
W=$!
sleep 2
run "migrate with a writer running until the cutover" thin-backup migrate --dm-pool pool --dev 1 \
	--to "tb://127.0.0.1:$(cat port)" --token-file token --until-delta 128k --max-rounds 3 --json || { kill $W $S; dmsetup resume src; exit 1; }
R=migrate_with_a_writer_running_until_the_cutover.out
FINAL=$(grep -o '"finalSnapshot":[0-9]*' $R | cut -d: -f2)
echo "LP|INFO|migrate: $(grep -o '"downtimeSeconds":[0-9.]*' $R) rounds $(grep -o '"round":[0-9]*' $R | tr '\n' ' ')"
same "the writer wrote during the rounds (more than one round)" "$(grep -c '"round":2' $R)" "1"
same "the final round is the frozen one" "$(grep -o '"frozen":true' $R | wc -l)" "1"
same "the source was left suspended" "$(dmsetup info src | grep -c SUSPENDED)" "1"
same "the report names the suspended source" "$(grep -o '"frozenSource":\["src"\]' $R)" '"frozenSource":["src"]'
kill $W
dmsetup resume src
wait $W 2>/dev/null
kill $S; wait $S 2>/dev/null
thin pool "$FINAL" final 65536
thin pool2 "$FINAL" migrated 65536
KF=$(kernel_sha /dev/mapper/final)
same "migrated device (pool2) == the kernel's read of the source at the cutover" "$(kernel_sha /dev/mapper/migrated)" "$KF"
same "as many blocks mapped on both sides" "$(dmsetup status migrated | awk '{print $4}')" "$(dmsetup status final | awk '{print $4}')"
same "only the final round's snapshot is left on the source" "$(thin-backup pool ls --dm-pool pool -o DEV --no-headers | tr -d ' ' | tr '\n' ' ')" "1 $FINAL "
dmsetup remove final; dmsetup remove src; dmsetup remove pool; dmsetup remove migrated; dmsetup remove pool2
run "thin_check of the source pool" thin_check $META
run "thin_check of the receiving pool" thin_check $META2
