#!/usr/bin/env bash
# Builds the web console (console/dist/): the Leptos app to wasm32 with cargo, then its JavaScript
# glue with the pinned wasm-bindgen-cli (the same one the Worker uses). No other tool is needed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"
out=console/dist
CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo build --locked --release -p stowage-console \
  --target wasm32-unknown-unknown >"$STOWAGE_ROOT/target/console-build.log" 2>&1 || {
  cat "$STOWAGE_ROOT/target/console-build.log" >&2
  exit 1
}
rm -rf "$out.tmp"
mkdir -p "$out.tmp/pkg"
"$WASM_BINDGEN_BIN" --target web --no-typescript --out-dir "$out.tmp/pkg" \
  target/wasm32-unknown-unknown/release/stowage_console.wasm
cp console/index.html console/style.css "$out.tmp/"
# Swap in whole, so a server never serves half a build.
rm -rf "$out"
mv "$out.tmp" "$out"
wasm="$out/pkg/stowage_console_bg.wasm"
printf "==> console bundle: %s bytes wasm, %s bytes gzipped\n" "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
