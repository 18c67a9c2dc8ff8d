#!/usr/bin/env bash
# The docs build draws the star schema diagram with Graphviz's `dot` (orchestration/erd.py)
# whenever the marts change. Install Debian's package if we may, else say how.
set -euo pipefail
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Graphviz not found: installing graphviz from Debian"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends graphviz >/dev/null
  else
    echo "Graphviz not found. The docs build needs its 'dot' to draw the star schema:" \
         "'sudo apt-get install graphviz' (Debian/Ubuntu) or 'brew install graphviz'" \
         "(macOS), then re-run." >&2
    exit 1
  fi
fi
echo "Graphviz found: OK for the star schema diagram"
