"""No credentials and no real AWS account ids in the repository.

detect-secrets scans every file git tracks or would track against the committed
``.secrets.baseline`` (whose entries are reviewed false positives: emulator passwords,
placeholders). A finding not in the baseline fails; line numbers may move freely.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.core import baseline
from detect_secrets.settings import default_settings

from orchestration.settings import LOCAL_ACCOUNT_ID, REPO_ROOT

BASELINE = REPO_ROOT / ".secrets.baseline"
# moto's default account, the all-zero placeholder and the example account of the AWS docs;
# anything else looks like a real one.
ALLOWED_ACCOUNTS = {LOCAL_ACCOUNT_ID, "000000000000", "111122223333"}
ACCOUNT_ID = re.compile(
    r"arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:(\d{12}):|account[_ -]?id\W{1,4}(\d{12})\b", re.I
)


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [name for name in listed if (REPO_ROOT / name).is_file()]


def new_findings(files: list[str], root: Path = REPO_ROOT) -> list[str]:
    # Paths stay relative to the root, as in the baseline (SecretsCollection's own root=
    # argument keys findings differently from a loaded baseline).
    with default_settings(), contextlib.chdir(root):
        known = baseline.load(baseline.load_from_file(str(BASELINE)), str(BASELINE))
        found = SecretsCollection()
        # One file at a time in this process: scan_files forks a pool, and forking a test
        # process that already runs server threads can deadlock on a lock a thread held.
        for name in files:
            if name != BASELINE.name:
                found.scan_file(name)
        return [f"{name}:{secret.line_number} {secret.type}" for name, secret in found - known]


def test_no_secret_outside_the_reviewed_baseline() -> None:
    assert new_findings(repository_files()) == []


def test_the_scanner_catches_a_key_that_is_not_in_the_baseline(tmp_path: Path) -> None:
    # Built at run time so this file itself holds no key-shaped string.
    key = "AKIA" + "QX7T" * 4
    (tmp_path / "leak.py").write_text(f'aws_access_key_id = "{key}"\n')
    assert new_findings(["leak.py"], root=tmp_path) == ["leak.py:1 AWS Access Key"]


def test_no_real_account_id_in_the_repository() -> None:
    seen = {}
    for name in repository_files():
        try:
            text = (REPO_ROOT / name).read_text()
        except UnicodeDecodeError:
            continue
        for match in ACCOUNT_ID.finditer(text):
            account = match[1] or match[2]
            if account not in ALLOWED_ACCOUNTS:
                seen[name] = account
    assert seen == {}
