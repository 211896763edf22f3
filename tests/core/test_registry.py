"""Walk the registry: every registered model builds at its tiny size and runs its example input; classifiers
(builders that take ``heads``) produce one logit tensor per head, other models finite outputs."""

import inspect

import pytest
import torch

from modalbridge.core.registry import create_model, list_models, model_entry, register_model

HEADS = {"verb": 3, "noun": 5}


def _batch_size(x) -> int:
    return len(x) if isinstance(x, list) else len(x["lengths"]) if isinstance(x, dict) else x.shape[0]


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name):
    entry = model_entry(name)
    classifier = "heads" in inspect.signature(entry.builder).parameters
    heads = {"heads": HEADS} if classifier else {}
    model = create_model(name, **heads, **entry.tiny).eval()  # CPU-sized where defaults are paper sizes
    x = entry.example_input()  # each entry (or its input kind) says what forward() takes
    with torch.no_grad():
        out = model(x)
    if not classifier:  # e.g. the scenes models: {"x", "y", "o"} log-probs or predictor logits
        values = out.values() if isinstance(out, dict) else [out]
        assert all(torch.isfinite(v).any() for v in values), name
        return
    assert set(HEADS) <= set(out)
    for key, logits in out.items():  # extra outputs (e.g. CACNF's "verb_layout") belong to one head
        (head,) = [h for h in HEADS if key == h or key.startswith(h + "_")]
        assert logits.shape == (_batch_size(x), HEADS[head]), key
        assert torch.isfinite(logits).all(), key


def test_registry_lists_tasks_and_rejects_duplicates():
    assert "swin3d_t" in list_models("actions")
    with pytest.raises(ValueError, match="already registered"):
        register_model("swin3d_t", task="other")(lambda: None)
    with pytest.raises(KeyError, match="known"):
        create_model("no-such-model")
