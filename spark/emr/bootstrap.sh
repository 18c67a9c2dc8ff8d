#!/bin/bash
# EMR bootstrap action: runs on every node before Spark starts.
# The job needs only PySpark and the standard library, which EMR 7 provides, so there is
# nothing to pip-install today; add packages to PACKAGES when the job grows a dependency.
# It also fails the cluster early, with a clear message, on a Python the job cannot run on.
set -euo pipefail
PACKAGES=()

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else
  f"shoplogs: the Spark job needs Python >= 3.9 on EMR nodes, found {sys.version}")'

if (( ${#PACKAGES[@]} )); then
  sudo python3 -m pip install --quiet "${PACKAGES[@]}"
fi
echo "shoplogs bootstrap done on $(hostname)"
