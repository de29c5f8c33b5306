#!/usr/bin/env bash
# Runs the control plane locally: local secrets on first run, D1 migrations, then `wrangler dev`
# (workerd + local D1) on 127.0.0.1:$PORT with its state in $STOWAGE_STATE_DIR.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"

PORT="${PORT:-8787}"
STATE="${STOWAGE_STATE_DIR:-$STOWAGE_ROOT/.state}"
# Each instance needs its own DevTools port, or a second `make dev` collides on 9229.
INSPECTOR_PORT="${INSPECTOR_PORT:-$((PORT + 10000))}"
mkdir -p "$STATE"

# Local secrets, made once and never committed (.dev.vars is git-ignored).
if [ ! -s .dev.vars ]; then
  umask 077
  printf 'JWT_SECRET=%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > .dev.vars
  echo "==> created .dev.vars with a fresh JWT_SECRET" >&2
fi

echo "==> migrating local D1 in $STATE" >&2
wrangler d1 migrations apply DB --local --persist-to "$STATE" >"$STATE/migrations.log" 2>&1 || {
  cat "$STATE/migrations.log" >&2
  exit 1
}

echo "==> Stowage on http://127.0.0.1:$PORT (state: $STATE)" >&2
exec wrangler dev --ip 127.0.0.1 --port "$PORT" --inspector-port "$INSPECTOR_PORT" \
  --persist-to "$STATE" --show-interactive-dev-session=false
