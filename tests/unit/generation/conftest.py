"""The generation tests' tokenizer: a BPE trained on the fly (tests/tiny.py builds it and
the peaked random models the tests decode with)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import generation_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return generation_tokenizer()


# The decode loop passes its KV cache as `cache`, the argument transformers 5.24 introduced;
# `past_key_values` is removed in 5.40. Its deprecation warning here is a failure, not noise.
DEPRECATED_CACHE_ARGUMENT = pytest.mark.filterwarnings("error:`past_key_values` is deprecated:FutureWarning")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(DEPRECATED_CACHE_ARGUMENT)
