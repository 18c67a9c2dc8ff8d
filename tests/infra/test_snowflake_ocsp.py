"""Snowflake's connector checks its certificates over OCSP, on port 80: MWAA may reach it,
and the profile does not turn the checks off instead (infra/README.md says why)."""

from __future__ import annotations

import yaml

from orchestration.settings import DBT_PROJECT_DIR
from tests.infra.templates import load, resource


def test_mwaa_may_reach_ocsp_responders_on_port_80() -> None:
    egress = resource(load("network"), "MwaaSecurityGroup")["SecurityGroupEgress"]
    http = [rule for rule in egress if (rule["FromPort"], rule["ToPort"]) == (80, 80)]
    assert [(rule["IpProtocol"], rule["CidrIp"]) for rule in http] == [("tcp", "0.0.0.0/0")]


def test_the_snowflake_profile_keeps_certificate_revocation_checks_on() -> None:
    profiles = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())
    snowflake = profiles["shoplogs"]["outputs"]["snowflake"]
    assert snowflake["type"] == "snowflake"
    assert not {"insecure_mode", "disable_ocsp_checks"} & set(snowflake)
