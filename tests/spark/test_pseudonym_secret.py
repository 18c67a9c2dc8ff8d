"""The job reads its pseudonymization key from Secrets Manager (here the local stack's moto
server, as a run does): the current version by default, a rotated key under a new version
id, and the previous version when asked for it, so a past date can be re-run as it was."""

from __future__ import annotations

from typing import Any

import boto3
import job
import pytest

from local.aws import provision_pseudonym_key, rotate_pseudonym_key
from preprocess.pseudonym import PseudonymKey

pytestmark = pytest.mark.integration

SECRET = "shoplogs/local/spark/pseudonym-key"  # pragma: allowlist secret
ARGS = ["--input", "i", "--output", "o", "--run-date", "2026-11-21", "--pseudonym-secret", SECRET]


@pytest.fixture
def secretsmanager(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    # What the local runner hands spark-submit: boto3 in the job finds the endpoint there.
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    yield client
    client.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)


def read(*extra: str) -> PseudonymKey:
    key = job.pseudonym_key(job.parse_args([*ARGS, *extra]))
    assert key is not None
    return key


def test_the_job_reads_the_key_and_a_rotation_gives_a_new_version(secretsmanager: Any) -> None:
    arn = provision_pseudonym_key(secretsmanager, SECRET)
    assert provision_pseudonym_key(secretsmanager, SECRET) == arn  # kept, never replaced
    first = read()
    assert first.secret == arn and len(first.key) >= 32
    assert first == read()  # the same version from run to run until someone rotates it
    rotate_pseudonym_key(secretsmanager, SECRET)
    rotated = read()
    assert rotated.version != first.version and rotated.key != first.key
    # A re-run of a date processed before the rotation, with the version its manifest names.
    assert read("--pseudonym-key-version", first.version) == first
    assert read("--pseudonym-key-version", "AWSPREVIOUS") == first


def test_a_job_without_the_web_stream_needs_no_secret() -> None:
    args = job.parse_args(["--input", "i", "--output", "o", "--run-date", "2026-11-21",
                           "--streams", "customers,orders"])  # fmt: skip
    assert job.pseudonym_key(args) is None


def test_the_web_stream_without_a_secret_is_refused_naming_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        job.parse_args(["--input", "i", "--output", "o", "--run-date", "2026-11-21"])
    assert "--pseudonym-secret is required for the web stream" in capsys.readouterr().err


def test_a_short_secret_fails_the_job_naming_the_secret_and_the_fix(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name=SECRET, SecretString="changeme")  # pragma: allowlist secret
    with pytest.raises(SystemExit, match=r"at least 32.*get-random-password"):
        read()
