#!/usr/bin/env bash
# CI step: build the .deb (scripts/package-deb.sh), install it with apt-get as an admin would,
# check the units with systemd-analyze verify, then use the installed binary: --version, one
# backup, a job run with a metrics file, a restore compared byte for byte. Needs root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
start=$(date +%s)
DEB=$(./scripts/package-deb.sh)
echo "package-tests: built $DEB in $(( $(date +%s) - start )) s"
dpkg-deb --info "$DEB" | sed -n '/Package:/,/Description:/p'
dpkg-deb --contents "$DEB" | awk '{print $6}'

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$DEB" >/dev/null
fail() { echo "package-tests: FAIL: $*" >&2; exit 1; }
[ "$(command -v thin-backup)" = /usr/bin/thin-backup ] || fail "thin-backup is not /usr/bin/thin-backup"
want="thin-backup $(./scripts/package-deb.sh --print-version)"
got=$(thin-backup --version)
[ "$got" = "$want" ] || fail "--version printed '$got', expected '$want'"
ldd /usr/bin/thin-backup | grep -q 'libswift' && fail "the installed binary needs Swift's runtime"
# The binary carries packed relative relocations, which only glibc >= 2.36's loader reads: the
# package must say so (dpkg-shlibdeps alone computes an older libc6).
if readelf -V /usr/bin/thin-backup | grep -q GLIBC_ABI_DT_RELR; then
    libc=$(dpkg-deb -f "$DEB" Depends | sed -n 's/.*libc6 (>= \([^)]*\)).*/\1/p')
    [ -n "$libc" ] && dpkg --compare-versions "$libc" ge 2.36 || fail "the binary needs glibc 2.36 (DT_RELR), the package depends on libc6 (>= ${libc:-nothing})"
fi
man -w thin-backup.run >/dev/null 2>&1 || [ -f /usr/share/man/man1/thin-backup.run.1.gz ] || fail "no thin-backup.run man page"
zcat /usr/share/man/man1/thin-backup.1.gz | grep -q 'some volumes failed' || fail "the man page has no exit-code table"
[ -s /usr/share/bash-completion/completions/thin-backup ] || fail "no bash completion"

# The units, as installed (ExecStart names the installed binary).
systemd-analyze verify /usr/lib/systemd/system/thin-backup-serve.service \
    /usr/lib/systemd/system/thin-backup@.service /usr/lib/systemd/system/thin-backup@.timer
systemd-analyze verify /usr/lib/systemd/system/thin-backup@nightly.service /usr/lib/systemd/system/thin-backup@nightly.timer

# One backup and one job run from the installed binary, and a restore compared byte for byte.
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
head -c 3000000 /dev/urandom > "$W/content"
thin-backup pool create --pool "$W/pool" --data-size 64M
thin-backup pool create-thin --pool "$W/pool" --dev 1 --size 8M
thin-backup pool write --pool "$W/pool" --dev 1 --from "$W/content" --offset 65536
thin-backup backup --pool "$W/pool" --dev 1 --repo "$W/repo" --json | tee "$W/backup.json"
grep -q '"kind":"full"' "$W/backup.json" || fail "backup did not report a full backup"
cat > "$W/nightly.conf" <<JOB
repository = $W/repo
state-dir = $W/state
keep-last = 2
verify-every = 1d
[volume one]
pool = $W/pool
dev = 1
JOB
thin-backup run "$W/nightly.conf" --metrics-file "$W/nightly.prom" --log-format json
grep -q 'thin_backup_volume_last_success_timestamp_seconds{job="nightly",volume="one"}' "$W/nightly.prom" \
    || fail "no last-success metric for the volume"
thin-backup restore --repo "$W/repo" --dev 1 --to "$W/restored.img" -q
cmp <(head -c 65536 /dev/zero; cat "$W/content") <(head -c $((65536 + 3000000)) "$W/restored.img") || fail "restore differs"
thin-backup verify --repo "$W/repo" --deep
apt-get remove -y -qq thin-backup >/dev/null
echo "package-tests: OK in $(( $(date +%s) - start )) s"
