#!/usr/bin/env bash
# Builds the web console (console/dist/): the Leptos app to wasm32 with cargo, then its JavaScript
# glue with the pinned wasm-bindgen-cli (the same one the Worker uses), then binaryen's wasm-opt
# (npm's `binaryen`, pinned in package.json: a JavaScript build, so nothing is fetched from GitHub)
# shrinks it by about 40 % (a fifth gzipped).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"
out=console/dist
# `erase_components` is Leptos's switch for type-erased views: about a tenth smaller gzipped. It
# changes RUSTFLAGS, so the console has its own target directory (the Worker's build, sharing
# the workspace's, would otherwise rebuild every dependency each time).
RUSTFLAGS="--cfg erase_components" CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
  cargo build --locked --release -p stowage-console --target wasm32-unknown-unknown \
  --target-dir target/console >"$STOWAGE_ROOT/target/console-build.log" 2>&1 || {
  cat "$STOWAGE_ROOT/target/console-build.log" >&2
  exit 1
}
rm -rf "$out.tmp"
mkdir -p "$out.tmp/pkg"
"$WASM_BINDGEN_BIN" --target web --no-typescript --out-dir "$out.tmp/pkg" \
  target/console/wasm32-unknown-unknown/release/stowage_console.wasm
# The features Rust's wasm32 target emits; wasm-opt refuses a module that uses one not named.
wasm-opt -Os --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$out.tmp/pkg/stowage_console_bg.wasm" -o "$out.tmp/pkg/stowage_console_bg.wasm"
cp console/index.html console/style.css "$out.tmp/"
# Swap in whole, so a server never serves half a build.
rm -rf "$out"
mv "$out.tmp" "$out"
wasm="$out/pkg/stowage_console_bg.wasm"
printf "==> console bundle: %s bytes wasm, %s bytes gzipped\n" "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
