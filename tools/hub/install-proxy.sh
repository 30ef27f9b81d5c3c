#!/usr/bin/env bash
# JupyterHub's proxy for the course's hub: configurable-http-proxy from npm, at the version pinned in
# tools/hub/package-lock.json, installed with `npm ci` into .venv/hub-proxy/ (git-ignored with .venv/). Run by
# ./course setup, test and hub; does nothing when that lock file is already installed. Needs Node.js 20 or newer
# and npm (tools/system-packages.sh installs them on Debian when missing). Exit status 0 unless an install failed.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/.venv/hub-proxy"
BIN="$DEST/node_modules/.bin/configurable-http-proxy"
LOCK="$ROOT/tools/hub/package-lock.json"
if [ -x "$BIN" ] && cmp -s "$LOCK" "$DEST/package-lock.json"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "course: Node.js and npm are needed for the JupyterHub proxy (./course hub, tests/test_hub.py):" \
       "sudo apt-get install -y nodejs npm" >&2
  exit 0
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "course: configurable-http-proxy needs Node.js 20 or newer; this is $(node --version)" >&2
  exit 0
fi
echo "course: installing configurable-http-proxy into $DEST (npm ci)" >&2
mkdir -p "$DEST"
cp "$ROOT/tools/hub/package.json" "$DEST/package.json"
cp "$LOCK" "$DEST/package-lock.json"
if ! (cd "$DEST" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null); then
  rm -f "$DEST/package-lock.json"  # so the next run tries again
  echo "course: npm ci of configurable-http-proxy failed (see above)" >&2
  exit 1
fi
