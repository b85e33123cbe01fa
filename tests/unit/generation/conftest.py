"""The generation tests' tokenizer: a BPE trained on the fly (tests/tiny.py builds it and
the peaked random models the tests decode with)."""

from __future__ import annotations

import pytest
from tiny import generation_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return generation_tokenizer()
