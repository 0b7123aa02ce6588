#!/usr/bin/env bash
# Installs everything ThinBackup builds and tests with (idempotent): thin-provisioning-tools
# (the oracle), zstd (fixture images), nginx + openssl (HTTP/TLS tests), python3 (test
# servers) from Debian's archive, and moto/boto3 (S3 tests) from PyPI. A test that finds one
# missing fails with a message naming it.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
# systemd, man-db: systemd-analyze verify on the units (it opens their man pages); dpkg-dev: dpkg-shlibdeps for the package (scripts/package-deb.sh).
# libdevmapper-dev: live kernel pools (device-mapper messages, tables, status).
PKGS="libzstd-dev libsodium-dev libcurl4-openssl-dev libsqlite3-dev libdevmapper-dev thin-provisioning-tools zstd nginx python3 python3-pip openssl systemd dpkg-dev man-db"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# Network tests: moto's S3 server (with boto3, used to create its test user) from PyPI.
if ! python3 -c "import moto.server, boto3" >/dev/null 2>&1; then
    echo "setup: installing moto[server] (pip)" >&2
    python3 -m pip install -q 'moto[server]' >/dev/null 2>&1 \
        || python3 -m pip install -q --break-system-packages 'moto[server]' >/dev/null
fi

# Metrics tests: prometheus_client's text-format parser (Tests/Scripts/prom_parse.py) from PyPI.
if ! python3 -c "import prometheus_client.parser" >/dev/null 2>&1; then
    echo "setup: installing prometheus_client (pip)" >&2
    python3 -m pip install -q prometheus_client >/dev/null 2>&1 \
        || python3 -m pip install -q --break-system-packages prometheus_client >/dev/null
fi
