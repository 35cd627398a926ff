#!/usr/bin/env bash
# The README's test command: set-up if needed, build, run every test (ctest, in parallel).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build=${ELLM_BUILD_DIR:-build}
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"
