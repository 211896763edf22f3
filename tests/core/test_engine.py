import numpy as np
import torch

from modalbridge.core.engine import param_groups, warmup_linear_schedule


def test_warmup_then_linear_decay_to_zero():
    fn = warmup_linear_schedule(total_steps=100, warmup_steps=10)
    values = np.array([fn(s) for s in range(101)])
    assert np.allclose(values[:10], np.arange(1, 11) / 10)
    assert values[10] == 1.0 and values[100] == 0.0
    assert np.all(np.diff(values[10:]) < 0)


def test_no_weight_decay_on_biases_and_norms():
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(m, 0.05)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
