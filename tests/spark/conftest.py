from __future__ import annotations

from typing import Any

import pytest

from preprocess.common import LINES_SCHEMA


@pytest.fixture
def lines(spark: Any):
    """Build the job's input frame from raw lines, as read_lines would."""

    def build(raw: list[str], source_file: str = "obj-1") -> Any:
        return spark.createDataFrame([(line, source_file, None) for line in raw], LINES_SCHEMA)

    return build
