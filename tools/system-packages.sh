#!/usr/bin/env bash
# Debian packages the course's grading sandbox, browser tests and hub use: bubblewrap (sandbox), chromium (browser
# tests), Node.js and npm (the hub's proxy: tools/hub/install-proxy.sh). As root, installs what is missing;
# otherwise prints the one command to run. Never downloads a browser build of its own. Exit status 0 unless an
# install was attempted and failed.
set -u
wanted=()
command -v bwrap >/dev/null 2>&1 || wanted+=(bubblewrap)
[ -x /usr/bin/chromium ] || wanted+=(chromium)
command -v node >/dev/null 2>&1 || wanted+=(nodejs)
command -v npm >/dev/null 2>&1 || wanted+=(npm)
[ ${#wanted[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "course: not a Debian-like system; install these yourself for sandboxed grading, browser tests and the hub: ${wanted[*]}" >&2
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "course: for sandboxed grading, browser tests and the hub, run once: sudo apt-get install -y ${wanted[*]}" >&2
  exit 0
fi
echo "course: installing Debian packages: ${wanted[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
