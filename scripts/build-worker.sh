#!/usr/bin/env bash
# Builds the Worker bundle (worker/build/) with the pinned worker-build and wasm-bindgen.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT/worker"
# The commit goes into the Worker, for GET /api/system/info.
export STOWAGE_BUILD="${STOWAGE_BUILD:-$(git -C "$STOWAGE_ROOT" rev-parse --short=12 HEAD 2>/dev/null || true)}"
# wasm-opt is off (see worker/Cargo.toml): its binary would come from GitHub.
# Size matters more than speed for the Worker's wasm (the agent's release build stays at -O3).
CARGO_PROFILE_RELEASE_OPT_LEVEL=s worker-build --release --no-opt >"$STOWAGE_ROOT/target/worker-build.log" 2>&1 || {
  cat "$STOWAGE_ROOT/target/worker-build.log" >&2
  exit 1
}
wasm=build/index_bg.wasm
printf "==> worker bundle: %s bytes wasm, %s bytes gzipped\n" "$(stat -c %s $wasm)" "$(gzip -9c $wasm | wc -c)" >&2
