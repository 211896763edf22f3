"""Fixtures of the atlas tests: one torch thread (tiny models run much faster on one thread than on two on a loaded
2-core machine)."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
