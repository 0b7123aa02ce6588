#!/usr/bin/env bash
# Runs every test (installs the test dependencies first on a fresh machine), then a short
# fuzzing run of each libFuzzer target (FUZZ_SECONDS each, default 30; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build --build-tests
swift test --skip-build
if [ "${FUZZ_SECONDS:-30}" != 0 ]; then ./scripts/fuzz.sh; fi
