#!/usr/bin/env bash
# Runs every test (installs the test dependencies first on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build --build-tests
swift test --skip-build
