#!/usr/bin/env bash
# Print the path of a CPython X.Y interpreter (argument: X.Y), or say how to get one.
# The project runs on the Python AWS runs: 3.12 for MWAA's Airflow 3 (the repo's venv), 3.9
# for Amazon Linux 2023 hosts and EMR 7 (the agent's and the Spark job's tests).
set -euo pipefail
want="$1"
works() { [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; }
candidates=()
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
  # Newest patch release first.
  while IFS= read -r dir; do candidates+=("$dir/bin/python$want"); done \
    < <(ls -d "$root/versions/$want".* 2>/dev/null | sort -t. -k3 -n -r)
fi
for name in "python$want" "/usr/bin/python$want" "/usr/local/bin/python$want"; do
  candidates+=("$(command -v "$name" 2>/dev/null || echo "$name")")
done
for candidate in "${candidates[@]}"; do
  if works "$candidate"; then echo "$candidate"; exit 0; fi
done
echo "Python $want not found. Install it (e.g. 'pyenv install $want', or your distribution's" \
     "python$want package) and re-run, or set PYTHON$(echo "$want" | tr -d .)=/path/to/python$want." >&2
exit 1
