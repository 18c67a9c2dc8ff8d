"""job.py's command line, as every runner passes it (spark/job.py's ``parse_args`` reads it):
the local runner on local paths, EMR and EMR Serverless on ``s3://`` URIs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date


def job_arguments(
    input_uri: str,
    output_uri: str,
    run_date: date,
    *,
    streams: Sequence[str] = (),
    lake: str = "",
    pseudonym_secret: str = "",
    web_format: str = "",
) -> list[str]:
    """The arguments; ``streams`` empty means all of them (the job's default)."""
    return [
        "--input", input_uri,
        "--output", output_uri,
        "--run-date", run_date.isoformat(),
        *(["--streams", ",".join(streams)] if streams else []),
        *(["--lake", lake] if lake else []),
        *(["--pseudonym-secret", pseudonym_secret] if pseudonym_secret else []),
        *(["--web-format", web_format] if web_format else []),
    ]  # fmt: skip
