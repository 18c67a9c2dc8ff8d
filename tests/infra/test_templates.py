"""The templates pass cfn-lint and checkov; what checkov is told to skip says why, in place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.environments import STACKS
from orchestration.settings import REPO_ROOT
from tests.infra.templates import all_templates, load

CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"


def test_there_is_one_template_per_stack() -> None:
    assert sorted(p.stem for p in all_templates()) == sorted(STACKS)


def test_cfn_lint_is_clean_on_every_template() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), *map(str, all_templates())], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_no_failed_check() -> None:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make install` installs it"
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(all_templates()[0].parent), "--framework",
         "cloudformation", "--output", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )  # fmt: skip
    report = json.loads(result.stdout or "{}")
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], failed
    assert report.get("summary", {}).get("passed", 0) > 100, result.stdout[-2000:]


@pytest.mark.parametrize("stack", STACKS)
def test_every_checkov_suppression_gives_its_reason(stack: str) -> None:
    for logical_id, body in load(stack)["Resources"].items():
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "").split()) >= 4, (stack, logical_id, skip)


@pytest.mark.parametrize("stack", STACKS)
def test_no_wildcard_action_on_a_wildcard_resource(stack: str) -> None:
    """Allowed only where ``*`` means "this key": a key policy's statement for its own
    account, which keeps the key manageable through IAM."""
    offenders = []
    for logical_id, body in load(stack)["Resources"].items():
        key_policy = body["Type"] == "AWS::KMS::Key"
        for statement in _statements(body):
            actions = _as_list(statement.get("Action", []))
            wildcard = any(a == "*" or a.endswith(":*") for a in actions)
            on_everything = "*" in _as_list(statement.get("Resource", []))
            exempt = key_policy and statement.get("Sid") == "AccountAdministers"
            if wildcard and on_everything and not exempt:
                offenders.append(f"{logical_id}: {statement.get('Sid')}")
    assert offenders == []


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _statements(resource: dict) -> list[dict]:
    props = resource.get("Properties", {})
    documents = [props.get("PolicyDocument"), props.get("KeyPolicy"),
                 props.get("AssumeRolePolicyDocument")]  # fmt: skip
    documents += [p.get("PolicyDocument") for p in props.get("Policies", [])]
    return [
        s for doc in documents if isinstance(doc, dict)
        for s in doc.get("Statement", []) if isinstance(s, dict)
    ]  # fmt: skip
