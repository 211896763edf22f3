"""Fixtures of the scenes tests: one torch thread (tiny models run 5–100× faster on one thread than on two on a
loaded 2-core machine) and tiny random-init SR-BERTs shared by the model and decoding tests."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def discrete():
    from modalbridge.tasks.scenes.models import SRBertDiscrete

    from .test_models import tiny

    return tiny(SRBertDiscrete)


@pytest.fixture(scope="module")
def continuous():
    from modalbridge.tasks.scenes.models import SRBertContinuous

    from .test_models import tiny

    return tiny(SRBertContinuous)
