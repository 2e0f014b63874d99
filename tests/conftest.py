import os
import sys

import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
# Test modules are imported by path (--import-mode=importlib, so two folders may hold the same file name);
# the shared on-disk fixture builders in tests/fixtures are imported as `fixtures.*`.
sys.path.insert(0, TESTS)

# Keep the suite deterministic and polite on a 2-core machine.
torch.manual_seed(0)
os.environ.setdefault("RTOOL_CACHE", os.path.join(TESTS, "..", ".pytest_cache", "rtool-cache"))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)
