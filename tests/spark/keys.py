"""The pseudonymization key the Spark tests run the web stream with, and the pseudonym
Python's own ``hmac`` gives a text under it: what the job must write in its place."""

from __future__ import annotations

import hashlib
import hmac

from preprocess.common import RunContext
from preprocess.pseudonym import PseudonymKey

KEY = PseudonymKey("tests/pseudonym-key", "v1", b"a key for the Spark tests, not a secret")
# A run without a date or earlier sessions: what a test of parsing alone needs.
KEYED = RunContext(pseudonym_key=KEY)


def pseudonym(text: str, key: PseudonymKey = KEY) -> str:
    return hmac.new(key.key, text.encode(), hashlib.sha256).hexdigest()
