"""Test-wide settings: offline hub, 2 threads, and an isolated MODALBRIDGE_HOME shared by the session
(so the embedded world is generated once per test session)."""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _modalbridge_home(tmp_path_factory):
    if "MODALBRIDGE_TEST_HOME" in os.environ:  # reuse a warm cache between local runs
        os.environ["MODALBRIDGE_HOME"] = os.environ["MODALBRIDGE_TEST_HOME"]
    else:
        os.environ["MODALBRIDGE_HOME"] = str(tmp_path_factory.mktemp("mbhome"))
    yield
