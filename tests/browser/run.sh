#!/usr/bin/env bash
# Browser tests of the dashboard: installs what is missing (Debian's chromium, playwright-core), builds the
# server binary, and runs tests/browser/dashboard.test.mjs. Screenshots go to target/browser-artifacts/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "chromium is missing and cannot be installed here (not root, no sudo): apt-get install chromium" >&2
    exit 1
  fi
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi
if [ -z "${PIPECAT_BIN:-}" ]; then
  (cd "$root" && cargo build --bin pipecat)
fi
mkdir -p "$root/target/browser-artifacts"
cd "$here"
exec node --test --test-reporter=spec dashboard.test.mjs
