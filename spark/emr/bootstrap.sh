#!/bin/bash
# EMR bootstrap action: runs on every node before Spark starts.
# The job needs PySpark, the standard library and boto3 (its driver reads one secret), which
# EMR 7 provides; add packages to PACKAGES when the job grows a dependency.
# It also fails the cluster early, with a clear message, on a Python the job cannot run on.
set -euo pipefail
PACKAGES=()
# The driver reads the pseudonymization key from Secrets Manager with boto3, which EMR's
# Python usually carries; installed only where it does not.
python3 -c 'import boto3' 2>/dev/null || PACKAGES+=(boto3)

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else
  f"shoplogs: the Spark job needs Python >= 3.9 on EMR nodes, found {sys.version}")'

if (( ${#PACKAGES[@]} )); then
  sudo python3 -m pip install --quiet "${PACKAGES[@]}"
fi
echo "shoplogs bootstrap done on $(hostname)"
