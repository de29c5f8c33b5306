#!/usr/bin/env bash
# Checks that the deployable bundle builds: `wrangler deploy --dry-run` validates wrangler.toml and
# bundles the built Worker exactly as a real deploy would, without contacting Cloudflare.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"
take_lock target/locks/deploy-check.lock
out="$STOWAGE_ROOT/target/deploy-dry-run"
rm -rf "$out"
wrangler deploy --dry-run --outdir "$out" >"$STOWAGE_ROOT/target/deploy-dry-run.log" 2>&1 || {
  cat "$STOWAGE_ROOT/target/deploy-dry-run.log" >&2
  exit 1
}
grep -E 'Total Upload' "$STOWAGE_ROOT/target/deploy-dry-run.log" | sed 's/^/==> deploy dry run: /' >&2 || true
