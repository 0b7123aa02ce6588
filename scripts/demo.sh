#!/usr/bin/env bash
# Builds thin-backup and runs the main job end to end on a small built-in demo pool.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product thin-backup >/dev/null
TB="$(swift build -c release --show-bin-path)/thin-backup"
DEMO="${DEMO_DIR:-$(mktemp -d /tmp/thin-backup-demo.XXXXXX)}"
echo "demo: working in $DEMO"
cat > "$DEMO/pool.xml" <<'XML'
<superblock uuid="" time="1" transaction="3" flags="0" version="2" data_block_size="128" nr_data_blocks="1024">
  <device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="16" time="0"/>
    <single_mapping origin_block="20" data_block="30" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="0" transaction="1" creation_time="1" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="8" time="0"/>
    <range_mapping origin_begin="8" data_begin="100" length="8" time="1"/>
  </device>
</superblock>
XML
truncate -s 8M "$DEMO/metadata"
thin_restore -i "$DEMO/pool.xml" -o "$DEMO/metadata" >/dev/null
echo "== thin-backup dump"
"$TB" dump --metadata "$DEMO/metadata"
echo "== thin-backup pool ls"
"$TB" pool ls --metadata "$DEMO/metadata"
echo "== thin-backup pool check"
"$TB" pool check --metadata "$DEMO/metadata"
