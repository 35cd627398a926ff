#!/usr/bin/env bash
# Configures (once) and builds ellm into build/ (or $ELLM_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ELLM_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$build" -j "$(nproc)"
