#!/usr/bin/env bash
# The browser tests open the docs site and the run report in headless Chromium. They need
# its binary: install Debian's package if we may, else say how.
set -euo pipefail
found() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
if ! found; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Chromium not found: installing chromium from Debian"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "Chromium not found. The browser tests need it:" \
         "'sudo apt-get install chromium' (Debian/Ubuntu) or 'brew install --cask chromium'" \
         "(macOS), then re-run." >&2
    exit 1
  fi
fi
echo "Chromium found: OK for the browser tests"
