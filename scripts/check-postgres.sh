#!/usr/bin/env bash
# The Redshift-family tests build on a real PostgreSQL server, which the tests start and stop
# themselves (orchestration/local_warehouses.py). They need its binaries: install Debian's
# package if we may, else say how.
set -euo pipefail
found() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
if ! found; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server not found: installing postgresql from Debian"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "PostgreSQL server not found. The warehouse tests need it:" \
         "'sudo apt-get install postgresql' (Debian/Ubuntu) or 'brew install postgresql@15'" \
         "(macOS), then re-run." >&2
    exit 1
  fi
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  # PostgreSQL refuses to run as root; the tests start it as this user.
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
echo "PostgreSQL found: OK for the Redshift-family tests"
