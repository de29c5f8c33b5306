#!/usr/bin/env bash
# Builds the Worker bundle (worker/build/) with the pinned worker-build and wasm-bindgen, unless it
# is already built from the same sources and commit.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"
mkdir -p target
take_lock target/locks/worker.lock
# The commit goes into the Worker, for GET /api/system/info.
export STOWAGE_BUILD="${STOWAGE_BUILD:-$(git -C "$STOWAGE_ROOT" rev-parse --short=12 HEAD 2>/dev/null || true)}"
wasm=worker/build/index_bg.wasm
stamp=worker/build/.stamp
# Up to date when the stamp names this commit and no input is newer than it (make's rule, by
# hand: worker-build's own steps after cargo take ~10 s even when nothing changed).
if [ -f "$stamp" ] && [ -f worker/build/index.js ] && [ "$(cat "$stamp")" = "build $STOWAGE_BUILD" ] \
   && [ -z "$(find worker/src worker/Cargo.toml shared/src shared/Cargo.toml Cargo.toml Cargo.lock \
                   rust-toolchain.toml -newer "$stamp" -print -quit)" ]; then
  echo "==> worker bundle is up to date" >&2
  exit 0
fi
rm -f "$stamp"
cd worker
# wasm-opt is off (see worker/Cargo.toml): its binary would come from GitHub.
# Size matters more than speed for the Worker's wasm (the agent's release build stays at -O3).
CARGO_PROFILE_RELEASE_OPT_LEVEL=s worker-build --release --no-opt >"$STOWAGE_ROOT/target/worker-build.log" 2>&1 || {
  cat "$STOWAGE_ROOT/target/worker-build.log" >&2
  exit 1
}
cd "$STOWAGE_ROOT"
echo "build $STOWAGE_BUILD" > "$stamp"
printf "==> worker bundle: %s bytes wasm, %s bytes gzipped\n" "$(stat -c %s $wasm)" "$(gzip -9c $wasm | wc -c)" >&2
