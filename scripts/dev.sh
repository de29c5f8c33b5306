#!/usr/bin/env bash
# Runs the whole system locally: local secrets on first run, D1 migrations, `wrangler dev`
# (workerd + local D1) on 127.0.0.1:$PORT with its state in $STOWAGE_STATE_DIR, and one agent
# enrolled as the node `local` (its token lives in the state dir, never in an argument), and the
# Worker's scheduled handler driven every minute as Cloudflare's cron trigger does in production
# (wrangler dev never fires it by itself).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"

PORT="${PORT:-8787}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  echo "PORT must be a TCP port number from 1 to 65535, not '$PORT'" >&2
  exit 2
fi
STATE="${STOWAGE_STATE_DIR:-$STOWAGE_ROOT/.state}"
# Each instance needs its own DevTools port, or a second `make dev` collides on 9229: 0 lets
# wrangler pick a free one, so any PORT works.
INSPECTOR_PORT="${INSPECTOR_PORT:-0}"
mkdir -p "$STATE"

# Local secrets, made once each and never committed (.dev.vars is git-ignored). A secret added in
# a later version is appended without touching the ones already there. Under a lock: instances
# started together must not both write it.
(
  take_lock "$STOWAGE_ROOT/target/locks/dev-vars.lock"
  for secret in JWT_SECRET SEAL_KEY; do
    if ! grep -q "^$secret=" .dev.vars 2>/dev/null; then
      (umask 077; printf '%s=%s\n' "$secret" "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >> .dev.vars)
      echo "==> added a fresh $secret to .dev.vars" >&2
    fi
  done
)

echo "==> migrating local D1 in $STATE" >&2
wrangler d1 migrations apply DB --local --persist-to "$STATE" >"$STATE/migrations.log" 2>&1 || {
  cat "$STATE/migrations.log" >&2
  exit 1
}

# The node `local`: its token is made once per state dir; D1 keeps only its SHA-256.
TOKEN_FILE="$STATE/local-agent.token"
if [ ! -s "$TOKEN_FILE" ]; then
  (umask 077; printf 'stn_%s' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$TOKEN_FILE")
fi
TOKEN_HASH="$(tr -d '\n' < "$TOKEN_FILE" | sha256sum | cut -d' ' -f1)"
NOW="$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"
wrangler d1 execute DB --local --persist-to "$STATE" --command \
  "INSERT INTO nodes (name, token_hash, created_at, updated_at) VALUES ('local', '$TOKEN_HASH', '$NOW', '$NOW')
   ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash" >"$STATE/enrol.log" 2>&1 || {
  cat "$STATE/enrol.log" >&2
  exit 1
}

AGENT="${CARGO_TARGET_DIR:-$STOWAGE_ROOT/target}/debug/stowage-agent"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "==> Stowage on http://127.0.0.1:$PORT (state: $STATE)" >&2
wrangler dev --ip 127.0.0.1 --port "$PORT" --inspector-port "$INSPECTOR_PORT" \
  --persist-to "$STATE" --show-interactive-dev-session=false &
pids+=($!)
# The agent retries until wrangler answers, so it can start at once.
"$AGENT" run --server "http://127.0.0.1:$PORT" --token-file "$TOKEN_FILE" >>"$STATE/agent.log" 2>&1 &
pids+=($!)
echo "==> agent for node 'local' running (log: $STATE/agent.log)" >&2

# The cron trigger of wrangler.toml (`* * * * *`), as production fires it: at the start of every
# minute, the scheduled handler through wrangler's local trigger route.
tick_every_minute() {
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM INT
  while :; do
    sleep $((60 - $(date +%s) % 60)) & nap=$!
    wait "$nap"
    curl -fsS --max-time 50 -o /dev/null "http://127.0.0.1:$PORT/cdn-cgi/local/scheduled?cron=*+*+*+*+*" \
      || echo "$(date -u +%FT%TZ) the scheduled tick failed" >&2
  done
}
tick_every_minute >>"$STATE/tick.log" 2>&1 &
pids+=($!)
echo "==> scheduled tick every minute (log: $STATE/tick.log)" >&2
wait -n "${pids[@]}"
