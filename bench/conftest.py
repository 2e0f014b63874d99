import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def pytest_collection_modifyitems(items):
    # Benchmarks run only when asked for (`pytest bench/`), never as part of the test suite.
    for item in items:
        item.add_marker(pytest.mark.benchmark)
