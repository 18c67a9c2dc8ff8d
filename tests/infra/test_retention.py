"""Raw lines, client addresses in the clear, expire quickly: the lake bucket's lifecycle
rules cover every zone that holds them, with each environment's days within the template's
limit, and the data contract states the same days."""

from __future__ import annotations

import re

from infra import environments
from infra.iam import load
from orchestration.settings import REPO_ROOT

# Zone prefix -> the storage stack parameter that sets its expiry.
RAW_ZONES = {
    "landing/": "LandingExpireDays",
    "landing-errors/": "LandingExpireDays",
    "processing/": "ProcessingExpireDays",
    "quarantine/": "QuarantineExpireDays",
}
CONTRACT = REPO_ROOT / "docs" / "data-contract.md"


def lake_rules() -> dict[str, dict]:
    bucket = load("storage")["Resources"]["LakeBucket"]["Properties"]
    return {r["Prefix"]: r for r in bucket["LifecycleConfiguration"]["Rules"] if "Prefix" in r}


def test_every_zone_of_raw_lines_expires_by_its_parameter() -> None:
    rules = lake_rules()
    for prefix, parameter in RAW_ZONES.items():
        assert rules[prefix]["Status"] == "Enabled"
        assert rules[prefix]["ExpirationInDays"] == {"Ref": parameter}, prefix
        assert rules[prefix]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1, prefix
    # The pseudonymized zones have no expiry: they are the lake's history.
    assert "ExpirationInDays" not in rules["processed/"]


def test_each_environment_keeps_raw_lines_within_the_limit() -> None:
    declared = load("storage")["Parameters"]
    for env in environments.ENVIRONMENTS.values():
        values = environments.parameters(env, "storage", {})
        for parameter in set(RAW_ZONES.values()):
            days = int(values[parameter])
            limit = declared[parameter]
            assert limit["MinValue"] <= days <= limit["MaxValue"] <= 30, (env.name, parameter)


def test_the_data_contract_states_the_retention_deployed() -> None:
    rows = dict(
        (match[1], (int(match[2]), int(match[3])))
        for match in re.finditer(r"^\| `([a-z-]+/)` \| [^|]+ \| (\d+) days \| (\d+) days \|$",
                                 CONTRACT.read_text(), re.MULTILINE)
    )  # fmt: skip
    assert set(rows) == set(RAW_ZONES)
    for prefix, parameter in RAW_ZONES.items():
        deployed = tuple(
            int(environments.parameters(environments.get(env), "storage", {})[parameter])
            for env in ("dev", "prod")
        )
        assert rows[prefix] == deployed, prefix
