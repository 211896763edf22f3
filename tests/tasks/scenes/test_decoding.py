"""Decoding strategies (spec §5, §9 "decoding"): forward-pass counts (per scene and per batch), outputs free
of MASK/PAD ids, each clip-art placed once, ragged batches decoding every scene exactly as alone, HC-beam with
beam 1 = greedy HC, the two greedy HC criteria, completion, leave-one-out, heat-maps, seeded RO."""

import itertools
import math

import pytest
import torch
from torch import nn

from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.decoding import (
    STRATEGIES,
    complete_group,
    decode,
    decode_one_at_a_time,
    ground_truth_inputs,
    heatmap,
    highest_confidence,
    highest_confidence_beam,
    leave_one_out,
)
from modalbridge.tasks.scenes.models import AttentionBaseline

from .test_models import SCENES, scene_batch

DISCRETE_ONLY = ("hc", "hc-beam", "le")
FIELDS = ("x", "y", "o", "x_px", "y_px", "order", "predicted")


@pytest.fixture(scope="module")
def ragged():
    """Scenes with 4, 6 and 1 clip-arts and texts of different lengths."""
    return scene_batch(SCENES)


class Counter:
    """Counts forward calls and the rows they carried (a forward hook)."""

    def __init__(self, model):
        self.calls, self.rows = 0, 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1
        self.rows += args[0].shape[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def expected_passes(strategy, n, beam=3):
    if strategy == "ss":
        return 1
    if strategy == "hc-beam":  # 1 + Σ_k hypotheses alive at step k
        alive, total = min(beam, n), 1
        for step in range(1, n):
            total += alive
            alive = min(beam, alive * (n - step))
        return total
    return n


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_forward_pass_counts(discrete, ragged, strategy):
    """Per scene: SS 1, RO/HO/HC/LE N, HC-beam 1 + 3(N − 1) (N ≥ 3); the batched decoder makes max-N calls,
    not ΣN."""
    counts = [4, 6, 1]
    assert [expected_passes("hc-beam", n) for n in (3, 4, 6)] == [1 + 3 * 2, 1 + 3 * 3, 1 + 3 * 5]
    with Counter(discrete) as hook:
        out = decode(discrete, ragged, strategy, generator=torch.Generator().manual_seed(0))
    assert out.scene_passes.tolist() == [expected_passes(strategy, n) for n in counts]
    assert hook.rows == sum(out.scene_passes.tolist())
    assert hook.calls == out.passes == (1 if strategy == "ss" else max(counts))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_valid_outputs_each_clipart_placed_once(discrete, continuous, ragged, strategy):
    valid = ragged["cliparts"] != 0
    n = valid.sum(1)
    for model in (discrete, continuous):
        if model.kind == "continuous" and strategy in DISCRETE_ONLY:
            with pytest.raises(ValueError, match=strategy):
                decode(model, ragged, strategy)
            continue
        out = decode(model, ragged, strategy, generator=torch.Generator().manual_seed(0))
        assert all(getattr(out, f).shape == valid.shape for f in FIELDS)
        assert out.x.max() < V.X_BINS and out.y.max() < V.Y_BINS and out.o.max() <= 1  # no MASK/PAD ids
        assert out.x.min() >= 0 and out.y.min() >= 0 and out.o.min() >= 0
        assert torch.equal(out.predicted, valid)
        assert (out.order[~valid] == -1).all() and (out.x[~valid] == 0).all() and (out.x_px[~valid] == 0).all()
        for i in range(valid.shape[0]):
            steps = sorted(out.order[i, valid[i]].tolist())
            assert steps == ([0] * int(n[i]) if strategy == "ss" else list(range(int(n[i])))), steps
        if model.kind == "discrete":
            assert torch.equal(out.x_px[valid], V.bin_centre(out.x[valid].float()))
        assert out.pixels().shape == (*valid.shape, 2)


@pytest.mark.parametrize("strategy", ["ss", "ho", "hc", "hc-beam", "le"])
def test_ragged_batch_decodes_each_scene_as_alone(discrete, continuous, ragged, strategy):
    """No re-selection of padded slots, no overwriting (the reference's batched HC/LE bug): the batched
    result equals decoding each scene on its own."""
    for model in (discrete, continuous):
        if model.kind == "continuous" and strategy in DISCRETE_ONLY:
            continue
        batched = decode(model, ragged, strategy)
        with Counter(model) as hook:  # one scene at a time: a call per step of every scene (ΣN, SS: B)
            alone = decode_one_at_a_time(model, ragged, strategy)
        assert hook.calls == alone.passes == (3 if strategy == "ss" else 4 + 6 + 1)
        for field in ("x", "y", "o", "order", "predicted"):
            assert torch.equal(getattr(batched, field), getattr(alone, field)), (model.kind, field)
        torch.testing.assert_close(batched.x_px, alone.x_px, atol=1e-3, rtol=0)
        assert torch.equal(batched.scene_passes, alone.scene_passes)


def test_small_scenes_with_a_wide_beam(discrete):
    """N = 1 and N = 2 (fewer clip-arts than the beam) work; so does a beam wider than every scene."""
    batch = scene_batch([{"text": [5, 6], "cliparts": [3]}, {"text": [7], "cliparts": [38, 70]}])
    out = highest_confidence_beam(discrete, batch, beam=3)
    assert out.scene_passes.tolist() == [1, 1 + 2]
    assert sorted(out.order[1].tolist()) == [0, 1]
    wide = highest_confidence_beam(discrete, scene_batch(SCENES), beam=8)
    assert wide.scene_passes.tolist() == [expected_passes("hc-beam", n, 8) for n in (4, 6, 1)]
    alone = decode_one_at_a_time(discrete, batch, "hc-beam")
    assert torch.equal(out.x, alone.x) and torch.equal(out.order, alone.order)


def test_beam_one_is_greedy_joint_hc(discrete, ragged):
    beam = highest_confidence_beam(discrete, ragged, beam=1)
    greedy = highest_confidence(discrete, ragged, criterion="joint")
    for field in ("x", "y", "o", "order"):
        assert torch.equal(getattr(beam, field), getattr(greedy, field)), field


def replay(model, batch, i, order):
    """Place the clip-arts of scene ``i`` one per pass in ``order`` (slots), each at its argmax over real bins:
    (sum of the placed log p_x + log p_y + log p_o, final x bins)."""
    one = {k: v[i:i + 1] for k, v in batch.items()}
    n = len(order)
    one["cliparts"] = one["cliparts"][:, :n]
    x, y, o = (torch.full((1, n), m) for m in (V.X_MASK, V.Y_MASK, V.O_MASK))
    total = 0.0
    for j in order:
        with torch.no_grad():
            out = model(one["input_ids"], one["text_mask"], one["cliparts"], x, y, o)
        best = [out[k][0, j, :size].max(-1) for k, size in (("x", V.X_BINS), ("y", V.Y_BINS), ("o", 2))]
        total += sum(float(b.values) for b in best)
        x[0, j], y[0, j], o[0, j] = (b.indices for b in best)
    return total, x[0].tolist()


def test_exhaustive_beam_finds_the_best_order(discrete):
    """With a beam as wide as every order of 3 clip-arts (3! = 6), HC-beam returns the placement order with the
    highest joint confidence among all orders (replayed independently here); greedy HC can do no better."""
    batch = scene_batch([{"text": [7, 8, 9], "cliparts": [38, 3, 104]}])
    scored = {order: replay(discrete, batch, 0, order) for order in itertools.permutations(range(3))}
    best_order = max(scored, key=lambda k: scored[k][0])
    out = highest_confidence_beam(discrete, batch, beam=6)
    assert tuple(out.order[0].argsort().tolist()) == best_order
    assert out.x[0].tolist() == scored[best_order][1]
    greedy = highest_confidence(discrete, batch)
    assert scored[tuple(greedy.order[0].argsort().tolist())][0] <= scored[best_order][0] + 1e-6


class FixedModel(nn.Module):
    """A stub discrete model returning the same crafted log-probs on every call (inputs ignored)."""

    kind = "discrete"

    def __init__(self, best: list[tuple[float, float, float]]):
        super().__init__()
        self.logp = {k: torch.full((len(best), v), -30.0) for k, v in (("x", 28), ("y", 23), ("o", 4))}
        for j, values in enumerate(best):  # the argmax bin 0 holds log p = value; the rest share what is left
            for key, value in zip(("x", "y", "o"), values):
                row = self.logp[key][j]
                rest = row.numel() - 1
                row[0] = value
                row[1:] = math.log((1 - math.exp(value)) / rest)
                assert row[0] > row[1:].max() or key == "o"

    def forward(self, input_ids, text_mask, cliparts, x, y, o):
        return {k: v.expand(cliparts.shape[0], -1, -1).clone() for k, v in self.logp.items()}


def test_greedy_hc_reference_and_joint_criteria_disagree():
    """Clip-art A: log p = (−3.0, −0.05, −0.05) → joint −3.1, product −0.0075; clip-art B: (−1, −1, −0.6) →
    joint −2.6, product −0.6. The joint rule places B first, the reference's product rule A."""
    model = FixedModel([(-3.0, -0.05, -0.05), (-1.0, -1.0, -0.6)])
    # o: the MASK/PAD classes hold the mass the two real flips lack, so bin 0 wins among the real ones
    model.logp["o"][:, 1] = -4.0
    model.logp["o"][:, 2:] = torch.log((1 - model.logp["o"][:, :2].exp().sum(1, keepdim=True)) / 2)
    batch = scene_batch([{"text": [5], "cliparts": [3, 38]}])
    assert highest_confidence(model, batch, criterion="joint").order.tolist() == [[1, 0]]
    assert highest_confidence(model, batch, criterion="reference").order.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="criterion"):
        highest_confidence(model, batch, criterion="mean")


def test_random_order_reproducible_with_a_seed(discrete, ragged):
    first = decode(discrete, ragged, "ro", generator=torch.Generator().manual_seed(7))
    again = decode(discrete, ragged, "ro", generator=torch.Generator().manual_seed(7))
    other = decode(discrete, ragged, "ro", generator=torch.Generator().manual_seed(8))
    assert torch.equal(first.order, again.order) and torch.equal(first.x, again.x)
    assert not torch.equal(first.order, other.order)


def test_human_order_is_group_order(discrete, ragged):
    out = decode(discrete, ragged, "ho")
    # scene 1: large 94, Mike 38, clothing 8, food 20, toy 115, Jenny 70 → large, people (slot order), …
    assert out.order[1].tolist() == [0, 1, 3, 4, 5, 2]


def test_strategy_names_and_kinds(continuous, ragged):
    with pytest.raises(ValueError, match="known: ss, ro, ho, hc, hc-beam, le"):
        decode(continuous, ragged, "beam")
    for strategy in DISCRETE_ONLY:
        with pytest.raises(ValueError, match=f"'{strategy}'"):
            decode(continuous, ragged, strategy)
    with pytest.raises(ValueError, match="kind"):
        decode(nn.Linear(2, 2), ragged, "ss")


def test_continuous_pixels_come_from_real_values(continuous, ragged):
    out = decode(continuous, ragged, "ss")
    valid = ragged["cliparts"] != 0
    with torch.no_grad():
        first = continuous(ragged["input_ids"], ragged["text_mask"], ragged["cliparts"],
                           *(torch.where(valid, m, p) for m, p in
                             ((V.X_MASK, V.X_PAD), (V.Y_MASK, V.Y_PAD), (V.O_MASK, V.O_PAD))))
    torch.testing.assert_close(out.x_px[valid], V.bin_centre(first["xy"][..., 0][valid]))
    assert torch.equal(out.x[valid], torch.ceil(first["xy"][..., 0][valid]).long().clamp(0, 25))


def test_baseline_decodes_in_one_pass(ragged):
    model = AttentionBaseline("discrete", hidden=16)
    with Counter(model) as hook:
        out = decode(model, ragged, "ss")
    assert hook.calls == 1 and out.x.max() < V.X_BINS
    assert model.training  # decoding restores the model's mode


def test_completion_changes_only_group_members(discrete, continuous, ragged):
    gx, gy, go = ground_truth_inputs(ragged)
    valid = ragged["cliparts"] != 0
    members = (torch.as_tensor(V.GROUP_OF_ID)[ragged["cliparts"]] == V.GROUPS.index("people")) & valid
    assert members.sum() == 4  # Mike and Jenny in scenes 0 and 1
    for model in (discrete, continuous):
        with Counter(model) as hook:
            out = complete_group(model, ragged, "people")
        assert hook.calls == 1 and hook.rows == 4
        assert torch.equal(out.predicted, members) and out.scene_passes.tolist() == [2, 2, 0]
        others = valid & ~members
        assert torch.equal(out.x[others], gx[others]) and torch.equal(out.y[others], gy[others])
        assert torch.equal(out.o[others], go[others])
        assert (out.order[members] == 0).all() and (out.order[others] == -1).all()
    with pytest.raises(ValueError, match="known: sky, large, people"):
        complete_group(discrete, ragged, "robots")


def test_completion_masks_only_the_member_it_predicts(discrete, ragged):
    """Each member is predicted with every other clip-art, its group included, at ground truth."""
    out = complete_group(discrete, ragged, "people")
    gx, gy, go = ground_truth_inputs(ragged)
    x, y, o = gx[1:2].clone(), gy[1:2].clone(), go[1:2].clone()
    x[0, 5], y[0, 5], o[0, 5] = V.X_MASK, V.Y_MASK, V.O_MASK  # Jenny of scene 1; Mike stays at ground truth
    with torch.no_grad():
        alone = discrete(ragged["input_ids"][1:2], ragged["text_mask"][1:2], ragged["cliparts"][1:2], x, y, o)
    assert out.x[1, 5] == alone["x"][0, 5, :V.X_BINS].argmax()


def test_leave_one_out(discrete, ragged):
    valid = ragged["cliparts"] != 0
    with Counter(discrete) as hook:
        out = leave_one_out(discrete, ragged)
    assert hook.calls == 1 and hook.rows == int(valid.sum())
    assert torch.equal(out.predicted, valid) and out.scene_passes.tolist() == [4, 6, 1]
    chunked = leave_one_out(discrete, ragged, max_rows=4)
    assert chunked.passes == 3
    for field in ("x", "y", "o"):
        assert torch.equal(getattr(out, field), getattr(chunked, field))


def test_heatmap(discrete, continuous, ragged):
    grid = heatmap(discrete, ragged, 1, 2)
    assert grid.shape == (V.Y_BINS, V.X_BINS)
    assert abs(float(grid.sum()) - 1) < 1e-5 and (grid >= 0).all()
    decoded = decode(discrete, ragged, "hc")
    in_context = heatmap(discrete, ragged, 1, 2, context=decoded)  # others at the decoded layout
    assert in_context.shape == grid.shape and not torch.allclose(in_context, grid)
    moved = dict(ragged, x_px=V.bin_centre(decoded.x.float()), y_px=V.bin_centre(decoded.y.float()), o_gt=decoded.o)
    torch.testing.assert_close(in_context, heatmap(discrete, moved, 1, 2))
    with pytest.raises(ValueError, match="not a clip-art"):
        heatmap(discrete, ragged, 2, 3)  # scene 2 has one clip-art
    with pytest.raises(ValueError, match="discrete"):
        heatmap(continuous, ragged, 0, 0)
