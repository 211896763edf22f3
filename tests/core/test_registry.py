"""Walk the registry: every registered model builds and produces one logit tensor per head."""

import pytest
import torch

from modalbridge.core.registry import create_model, list_models, model_entry, register_model
from modalbridge.tasks.layouts.models import example_batch

HEADS = {"verb": 3, "noun": 5}
# layout-task batches: B=2, T=5 frames, M=4 slots, rgb (2, 3, 8, 32, 32), frames (2, 5, 3, 32, 32)
EXAMPLE_INPUTS = {"video": lambda: torch.randn(1, 3, 4, 32, 32), "text": lambda: ["cut the onion"],
                  "layout": example_batch, "video_batch": example_batch, "video+layout": example_batch}
TASK_SIZES = {"layouts": {"preset": "tiny"}}  # CPU-sized configs where the defaults are paper sizes


def _batch_size(x) -> int:
    return len(x) if isinstance(x, list) else len(x["lengths"]) if isinstance(x, dict) else x.shape[0]


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name):
    entry = model_entry(name)
    model = create_model(name, heads=HEADS, **TASK_SIZES.get(entry.task, {})).eval()
    x = EXAMPLE_INPUTS[entry.inputs]()
    with torch.no_grad():
        out = model(x)
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
