"""Walk the registry: every registered model builds and produces one logit tensor per head."""

import pytest
import torch

from modalbridge.core.registry import create_model, list_models, model_entry, register_model

EXAMPLE_INPUTS = {"video": lambda: torch.randn(1, 3, 4, 32, 32), "text": lambda: ["cut the onion"]}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name):
    model = create_model(name, heads={"verb": 3, "noun": 5}).eval()
    x = EXAMPLE_INPUTS[model_entry(name).inputs]()
    with torch.no_grad():
        out = model(x)
    assert set(out) == {"verb", "noun"}
    assert out["verb"].shape == (1, 3) and out["noun"].shape == (1, 5)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_registry_lists_tasks_and_rejects_duplicates():
    assert "swin3d_t" in list_models("actions")
    with pytest.raises(ValueError, match="already registered"):
        register_model("swin3d_t", task="other")(lambda: None)
    with pytest.raises(KeyError, match="known"):
        create_model("no-such-model")
