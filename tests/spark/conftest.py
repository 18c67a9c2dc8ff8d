from __future__ import annotations

from typing import Any

import pytest

from preprocess.common import LINES_SCHEMA


@pytest.fixture
def lines(spark: Any):
    """Build the job's input frame from raw lines, as read_lines would."""

    def build(raw: list[str], source_file: str = "obj-1", log_format: str | None = None) -> Any:
        rows = [(line, source_file, None, log_format) for line in raw]
        return spark.createDataFrame(rows, LINES_SCHEMA)

    return build
