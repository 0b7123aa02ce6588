# Sourced by every guest scenario (busybox sh). Checks print one console line each:
#   LP|OK|<scenario>|<check>          LP|FAIL|<scenario>|<check>|<why>
# and the scenario's own files stay in the current folder (/out/<scenario>/).
# Disks: $META $DATA (pool 1), $META2 $DATA2 (pool 2), $LVMDISK (LVM); 64 KiB pool blocks.

ok() { echo "LP|OK|$SCENARIO|$1"; }
fail() { echo "LP|FAIL|$SCENARIO|$1|$2"; }

# run CHECK CMD...: CMD must exit 0 (its output in CHECK.out / CHECK.err).
run() {
	_c=$1; shift
	f=$(echo "$_c" | tr ' /' '__')
	"$@" > "$f.out" 2> "$f.err"
	rc=$?
	if [ $rc = 0 ]; then ok "$_c"; return 0; fi
	fail "$_c" "exit $rc: $(tail -1 "$f.err" | tr '|' '/')"
	return 1
}

# refused CHECK PATTERN CMD...: CMD must exit 1 with one stderr line matching PATTERN.
refused() {
	_c=$1; _p=$2; shift 2
	f=$(echo "$_c" | tr ' /' '__')
	"$@" > "$f.out" 2> "$f.err"
	rc=$?
	if [ $rc != 1 ]; then fail "$_c" "exit $rc (expected 1): $(tail -1 "$f.err" | tr '|' '/')"; return 1; fi
	if ! grep -q -- "$_p" "$f.err"; then fail "$_c" "message does not say '$_p': $(tail -1 "$f.err" | tr '|' '/')"; return 1; fi
	ok "$_c"
}

# same CHECK A B: two values must be equal.
same() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "'$2' != '$3'"; fi
}

# kernel_sha DEV: sha256 of a device as the kernel reads it now (page cache dropped first).
kernel_sha() {
	blockdev --flushbufs "$1" 2>/dev/null
	sha256sum < "$1" | cut -d' ' -f1
}

file_sha() { sha256sum < "$1" | cut -d' ' -f1; }

# pool NAME META DATA: a 512 MiB pool (64 KiB blocks, low water 64 blocks).
pool() {
	dmsetup create "$1" --table "0 1048576 thin-pool $2 $3 128 64"
}

# thin POOL ID NAME SECTORS: activate thin device ID as /dev/mapper/NAME.
thin() {
	dmsetup create "$3" --table "0 $4 thin /dev/mapper/$1 $2"
}

# fill DEV FIRST_BLOCK COUNT: COUNT random 64 KiB blocks from pool block FIRST_BLOCK on.
fill() {
	dd if=/dev/urandom of="$1" bs=65536 seek="$2" count="$3" conv=notrunc,fsync 2>/dev/null
}

# ksnap POOL ORIGIN_NAME NEW ORIGIN: kernel snapshot of an active origin, the dmsetup way.
ksnap() {
	sync
	dmsetup suspend "$2" && dmsetup message "$1" 0 "create_snap $3 $4"; _r=$?
	dmsetup resume "$2"
	return $_r
}

# status_field POOL N: field N of the pool's status params (1 = transaction id; 4 = held root).
status_field() {
	dmsetup status "$1" | awk -v n="$2" '{print $(n + 3)}'
}

# restore STREAM SIZE_BYTES OUT: the stream's bytes applied onto a new zero file of SIZE.
restore() {
	rm -f "$3"; truncate -s "$2" "$3"
	thin-backup merge --stream "$1" --into "$3"
}

# counted N CHECK CMD...: `run CHECK CMD...` with thin-backup's lvm calls logged through
# /sbin/tb-lvm-log (live.sh) into lvm-last.txt; CMD must then have read exactly N `lvm lvs`
# reports (one when it opens the pool, one after each lvcreate and before each lvremove of its
# own: README "Kernel tests"). The log of every counted run stays in lvm-calls.txt.
counted() {
	_want=$1; _k=$2; shift 2
	: > lvm-last.txt
	run "$_k" env THIN_BACKUP_LVM=/sbin/tb-lvm-log TB_LVM_LOG="$PWD/lvm-last.txt" "$@"
	same "$_k: $_want lvm lvs report(s)" "$(grep -c "$(printf '\t')lvs " lvm-last.txt)" "$_want"
}
