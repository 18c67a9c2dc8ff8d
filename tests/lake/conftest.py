"""A fresh lake bucket per test, on the session's moto server."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.fixture
def lake(s3: Any, request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    s3.create_bucket(Bucket=name)
    return name
