import os

import pytest
import torch

# Keep the suite deterministic and polite on a 2-core machine.
torch.manual_seed(0)
os.environ.setdefault("RTOOL_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "rtool-cache"))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)
