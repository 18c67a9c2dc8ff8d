"""What AWS MWAA runs, and the constraints it installs the bundle's requirements under.

One place for the Airflow and Python versions the deploy targets: the orchestration stack's
AllowedValues, infra/environments.py, the repo's own pins (pyproject.toml) and the bundle are
tested against these.
"""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent

# The newest Airflow MWAA offers (AWS's aws/amazon-mwaa-docker-images has 3.0.6, 3.2.1 and
# 3.3.1 images), and the Python its image runs (PYTHON_VERSION=3.12.13 there).
AIRFLOW_VERSION = "3.3.1"
PYTHON_VERSION = "3.12"
# Airflow's constraints for that pair, as MWAA applies them when requirements.txt names none.
CONSTRAINTS = HERE / f"constraints-{AIRFLOW_VERSION}-python{PYTHON_VERSION}.txt"
# Pins MWAA adds to every `pip install` of requirements.txt (safe-pip-install), which no
# requirements file can override.
ESSENTIAL_CONSTRAINTS = HERE / f"essential-constraints-{AIRFLOW_VERSION}.txt"
# Where MWAA's workers see the DAGs folder: the bundle's requirements.txt names the
# constraints file it ships there (AWS's MWAA guide, "Managing Python dependencies").
DAGS_FOLDER = "/usr/local/airflow/dags"


def pins(constraints: Path) -> dict[str, str]:
    """``{normalized name: version}`` of a constraints file's ``name==version`` lines."""
    found: dict[str, str] = {}
    for line in constraints.read_text().splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            found[canonicalize_name(name)] = version.strip()
    return found
