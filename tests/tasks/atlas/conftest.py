"""Fixtures of the atlas tests: one torch thread for every module (``one_thread``, tests/conftest.py)."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield
