#!/usr/bin/env bash
# Builds the web console (console/dist/): the Leptos app to wasm32 with cargo, then its JavaScript
# glue with the pinned wasm-bindgen-cli (the same one the Worker uses), then binaryen's wasm-opt
# (npm's `binaryen`, pinned in package.json: a JavaScript build, so nothing is fetched from GitHub)
# shrinks it by about 40 % (a fifth gzipped). The steps after cargo are skipped when their output
# is newer than all their inputs.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"
mkdir -p target
take_lock target/locks/console.lock
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
built=target/console/wasm32-unknown-unknown/release/stowage_console.wasm
wasm="$out/pkg/stowage_console_bg.wasm"
if [ -f "$wasm" ] && [ -z "$(find "$built" console/index.html console/style.css -newer "$wasm" -print -quit)" ]; then
  echo "==> console bundle is up to date" >&2
  exit 0
fi
# A private staging directory beside the output (same file system, so the swap is a rename).
tmp="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/pkg"
"$WASM_BINDGEN_BIN" --target web --no-typescript --out-dir "$tmp/pkg" "$built"
# The features Rust's wasm32 target emits; wasm-opt refuses a module that uses one not named.
wasm-opt -Os --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$tmp/pkg/stowage_console_bg.wasm" -o "$tmp/pkg/stowage_console_bg.wasm"
cp console/index.html console/style.css "$tmp/"
chmod 755 "$tmp"
# Swap in whole, so a server never serves half a build.
rm -rf "$out"
mv "$tmp" "$out"
printf "==> console bundle: %s bytes wasm, %s bytes gzipped\n" "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
