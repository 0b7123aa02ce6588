#!/usr/bin/env bash
# Builds thin-backup and runs the main job end to end on a small built-in demo pool:
# a userspace thin pool in the kernel's format, two snapshots, a full and an incremental
# zstd-compressed delta stream, replay into a second pool, and byte-for-byte checks
# (Debian's thin_check judges both pools' metadata).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "demo: building thin-backup (release)…"
swift build -c release --product thin-backup >/dev/null
TB="$(swift build -c release --show-bin-path)/thin-backup"
DEMO="${DEMO_DIR:-$(mktemp -d /tmp/thin-backup-demo.XXXXXX)}"
mkdir -p "$DEMO"
echo "demo: working in $DEMO"
step() { echo; echo "== $*"; }

# Demo data: 8 MiB of random bytes, 8 MiB of text, 4 MiB of zeros.
head -c 8M /dev/urandom > "$DEMO/random.bin"
{ yes "ThinBackup demo: block-level backups of dm-thin pools." || true; } | head -c 8M > "$DEMO/text.bin"
head -c 4M /dev/zero > "$DEMO/zeros.bin"
cat "$DEMO/random.bin" "$DEMO/text.bin" "$DEMO/zeros.bin" > "$DEMO/volume.bin"

step "source pool A: a 32 MiB thin volume (device 1) written with 20 MiB of data"
"$TB" pool create --pool "$DEMO/A" --data-size 256M
"$TB" pool create-thin --pool "$DEMO/A" --dev 1 --size 32M
"$TB" pool write --pool "$DEMO/A" --dev 1 --from "$DEMO/volume.bin"

step "snapshot 2 of device 1, then a full send of it"
"$TB" pool snapshot --pool "$DEMO/A" --origin 1 --dev 2
"$TB" send --pool "$DEMO/A" --snap 2 --to "$DEMO/full.tbs"

step "the volume changes: 1 MiB rewritten, 2 MiB discarded; snapshot 3"
head -c 1M /dev/urandom > "$DEMO/patch.bin"
"$TB" pool write --pool "$DEMO/A" --dev 1 --from "$DEMO/patch.bin" --offset 4194304
"$TB" pool discard --pool "$DEMO/A" --dev 1 --offset 10485760 --length 2097152
"$TB" pool snapshot --pool "$DEMO/A" --origin 1 --dev 3

step "what changed between snapshots 2 and 3 (sharing-aware diff, thin_delta's format)"
"$TB" delta --pool "$DEMO/A" --thin1 2 --thin2 3 --changes-only

step "incremental send: only the changed blocks"
"$TB" send --pool "$DEMO/A" --from 2 --snap 3 --to "$DEMO/incr.tbs"
ls -l "$DEMO"/*.tbs

step "receiver pool B: replay the full stream, then the incremental"
"$TB" pool create --pool "$DEMO/B" --data-size 256M
"$TB" receive --pool "$DEMO/B" --from "$DEMO/full.tbs"
"$TB" receive --pool "$DEMO/B" --from "$DEMO/incr.tbs"

step "byte-for-byte: B's devices equal A's snapshots"
for dev in 2 3; do
    "$TB" pool read --pool "$DEMO/A" --dev $dev --to "$DEMO/A-$dev.img"
    "$TB" pool read --pool "$DEMO/B" --dev $dev --to "$DEMO/B-$dev.img"
    cmp "$DEMO/A-$dev.img" "$DEMO/B-$dev.img"
    echo "device $dev: identical ($(sha256sum < "$DEMO/B-$dev.img" | cut -c1-16)…)"
done

step "nightly backups into a repository (a folder here; http(s):// and s3:// work the same)"
"$TB" backup --pool "$DEMO/A" --dev 1 --repo "$DEMO/repo" --now 2026-11-25T02:00:00Z
"$TB" pool write --pool "$DEMO/A" --dev 1 --from "$DEMO/patch.bin" --offset 0
"$TB" backup --pool "$DEMO/A" --dev 1 --repo "$DEMO/repo" --now 2026-11-26T02:00:00Z
"$TB" list --repo "$DEMO/repo"
"$TB" verify --repo "$DEMO/repo"

step "restore the first night into a file, and the newest into a fresh pool C"
"$TB" restore --repo "$DEMO/repo" --dev 1 --at 2026-11-25T12:00:00Z --to "$DEMO/night1.img"
cmp "$DEMO/A-3.img" "$DEMO/night1.img" && echo "night 1: identical to snapshot 3 (device 1 did not change in between)"
"$TB" pool create --pool "$DEMO/C" --data-size 256M
"$TB" restore --repo "$DEMO/repo" --dev 1 --to "$DEMO/C"
"$TB" pool read --pool "$DEMO/A" --dev 1 --to "$DEMO/A-1.img"
"$TB" pool read --pool "$DEMO/C" --dev 1 --to "$DEMO/C-1.img"
cmp "$DEMO/A-1.img" "$DEMO/C-1.img" && echo "newest backup: identical to device 1"

step "B's metadata, as Debian's thin_check and thin-backup see it"
thin_check "$DEMO/B/metadata"
"$TB" pool check --metadata "$DEMO/B/metadata"
"$TB" pool ls --metadata "$DEMO/B/metadata"
"$TB" dump --metadata "$DEMO/B/metadata" --skip-mappings
echo
echo "demo: done (files in $DEMO)"
