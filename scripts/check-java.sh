#!/usr/bin/env bash
# Spark 3.5 needs a Java runtime (8, 11 or 17). Install one from Debian if we may, else say how.
set -euo pipefail
version() { java -version 2>&1 | awk -F'"' '/version/ {print $2}' | cut -d. -f1; }
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Java not found: installing openjdk-17-jre-headless from Debian"
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "Java not found. Spark needs Java 17: 'sudo apt-get install openjdk-17-jre-headless'" \
         "(Debian/Ubuntu) or 'brew install openjdk@17' (macOS), then re-run." >&2
    exit 1
  fi
fi
major=$(version)
case "$major" in
  8|11|17) echo "Java $major found: OK for Spark 3.5" ;;
  *) echo "Java $major found; Spark 3.5 supports Java 8, 11 and 17. Set JAVA_HOME to a JDK 17." >&2
     exit 1 ;;
esac
