"""Read the CloudFormation templates as data, and resolve the names they build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from infra.deploy import TEMPLATES

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1"}


def load(stack: str) -> dict[str, Any]:
    template, problems = decode(str(TEMPLATES / f"{stack}.yaml"))
    assert not problems, problems
    return template


def all_templates() -> list[Path]:
    return sorted(TEMPLATES.glob("*.yaml"))


def resolve(value: Any, names: dict[str, str]) -> Any:
    """Evaluate ``Fn::Sub`` and ``Ref`` against ``names`` (parameters and pseudo parameters)."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return names[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text, local = (
            (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        )
        scope = {**names, **{k: resolve(v, names) for k, v in local.items()}}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(scope[m[1]]), text)
    return value


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return dict(template["Resources"][logical_id]["Properties"])
