"""DistillModule unit tests: frozen teachers, head checks, ensemble weighting, fallback, logit cache."""

import pytest
import torch

from modalbridge.core.classifier import ModalityClassifierModule
from modalbridge.tasks.distill.module import (
    DistillModule,
    load_teacher,
    merge_logit_shards,
    precompute_teacher_logits,
)

HEADS = {"verb": 3, "noun": 4}


def _save_teacher(path, modality, heads=HEADS, seed=0):
    torch.manual_seed(seed)
    m = ModalityClassifierModule("r3d_tiny", heads, modality=modality)
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict(),
                "modalbridge_class": "ModalityClassifierModule"}, path)
    return str(path)


def _batch(n=2):
    g = torch.Generator().manual_seed(1)
    return {"rgb": torch.randn(n, 3, 4, 32, 32, generator=g), "flow": torch.randn(n, 3, 4, 32, 32, generator=g),
            "verb": torch.tensor([0, 1][:n]), "noun": torch.tensor([2, 3][:n]), "index": torch.arange(n)}


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    d = tmp_path_factory.mktemp("teachers")
    return [_save_teacher(d / "rgb.ckpt", "rgb", seed=0), _save_teacher(d / "flow.ckpt", "flow", seed=1)]


def test_teachers_are_frozen_and_deterministic(teachers):
    t = load_teacher(teachers[1])
    assert t.input_key == "flow" and not any(p.requires_grad for p in t.parameters())
    t.train()
    assert not t.module.training
    b = _batch()
    assert torch.equal(t(b)["verb"], t(b)["verb"])


def test_student_optimiser_excludes_teachers(teachers):
    m = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform")
    student_params = {id(p) for p in m.parameters()}
    assert not any(id(p) in student_params for t in m.teachers for p in t.parameters())
    assert not any(k.startswith("_teachers") for k in m.state_dict())


def test_class_mismatch_is_a_clear_error(tmp_path, teachers):
    bad = _save_teacher(tmp_path / "bad.ckpt", "rgb", heads={"verb": 5, "noun": 4})
    with pytest.raises(ValueError, match="predicts .* but the dataset has"):
        DistillModule("r3d_tiny", HEADS, teachers=[teachers[0], bad], weighting="uniform")


def test_uniform_ensemble_is_the_mean_of_teacher_logits(teachers):
    m = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform")
    b = _batch()
    z = m.teacher_logits(b)
    expected = (m.teachers[0](b)["noun"] + m.teachers[1](b)["noun"]) / 2
    assert torch.allclose(z["noun"], expected, atol=1e-6)


def test_per_sample_weighting_leans_on_the_teacher_right_about_each_clip(teachers, tmp_path):
    m = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="per_sample", gamma=1.0)
    b = _batch()
    outs = [t(b) for t in m.teachers]
    z = m.teacher_logits(b)
    for h in HEADS:
        stacked = torch.stack([o[h] for o in outs])
        ce = torch.stack([torch.nn.functional.cross_entropy(o[h], b[h], reduction="none") for o in outs])
        w = torch.softmax(-ce, dim=0)  # (M, B)
        assert torch.allclose(z[h], (w[..., None] * stacked).sum(0), atol=1e-5)
        assert not torch.allclose(z[h], stacked.mean(0), atol=1e-4)  # not the plain mean
    del b["verb"], b["noun"]  # no labels (evaluation): the uniform mean
    assert torch.allclose(m.teacher_logits(b)["noun"], (outs[0]["noun"] + outs[1]["noun"]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="live teachers"):
        DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="per_sample", teacher_cache=str(tmp_path / "c"))


def test_missing_modality_raises_or_falls_back(teachers):
    b = _batch()
    del b["flow"]
    strict = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform")
    with pytest.raises(KeyError, match="flow"):
        strict.teacher_logits(b)
    lenient = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform", missing_modality="fallback")
    lenient.log = lambda *a, **k: None  # not attached to a Trainer
    z = lenient.teacher_logits(b)
    assert torch.allclose(z["verb"], lenient.teachers[0](b)["verb"], atol=1e-6) and lenient.fallbacks == 1


def test_lambda_zero_ignores_teachers(teachers):
    m = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform", lam=0.0)
    m.log = lambda *a, **k: None
    called = []
    m.teacher_logits = lambda batch: called.append(1)
    assert torch.isfinite(m.training_step(_batch(), 0)) and not called


def test_sharded_logit_cache_round_trip(teachers, tmp_path):
    m = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform")

    class DS(torch.utils.data.Dataset):
        """5 clips with different inputs, named c0..c4."""

        def __len__(self):
            return 5

        def clip_ids(self):
            return [f"c{i}" for i in range(5)]

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"rgb": torch.randn(3, 4, 32, 32, generator=g), "flow": torch.randn(3, 4, 32, 32, generator=g),
                    "verb": 0, "noun": 1, "index": i, "clip_id": f"c{i}"}

    w = {h: m.ensemble.weight(h) for h in HEADS}
    shards = [precompute_teacher_logits(m.teachers, w, DS(), tmp_path / f"s{i}.safetensors", shard=(i, 2),
                                        precision="32-true")
              for i in range(2)]
    merged = merge_logit_shards(shards, tmp_path / "all.safetensors")
    cached = DistillModule("r3d_tiny", HEADS, teachers=teachers, weighting="uniform", teacher_cache=str(merged))
    # a training set without clip c0 (held out): its clip c3 sits at index 2, the cache finds it by id
    sample = DS()[3]
    b = {k: (v.unsqueeze(0) if torch.is_tensor(v) else torch.tensor([v])) for k, v in sample.items() if k != "clip_id"}
    b["index"], b["clip_id"] = torch.tensor([2]), ["c3"]
    assert torch.allclose(cached.teacher_logits(b)["verb"], m.teacher_logits(b)["verb"], atol=1e-5)
    b["clip_id"] = ["someone-else's clip"]
    with pytest.raises(KeyError, match="not in the teacher cache"):
        cached.teacher_logits(b)
    with pytest.raises(ValueError, match="rows missing"):
        merge_logit_shards(shards[:1], tmp_path / "partial.safetensors")


def test_layout_checkpoint_is_an_object_teacher_through_the_registry(tmp_path):
    """RGB&OBJ (thesis Ch. 7): an STLT trained by the layouts task teaches an RGB student on Something-Else
    batches that carry both the layout tensors and the RGB clip."""
    from modalbridge.tasks.distill.module import DistillModule, load_teacher
    from modalbridge.tasks.layouts.models import example_batch
    from modalbridge.tasks.layouts.module import LayoutModule

    torch.manual_seed(0)
    stlt = LayoutModule("stlt", {"action": 5}, model_kwargs={"preset": "tiny"}).eval()
    path = tmp_path / "stlt.ckpt"
    torch.save({"state_dict": stlt.state_dict(), "hyper_parameters": dict(stlt.hparams),
                "modalbridge_class": "LayoutModule"}, path)
    teacher = load_teacher(path)
    assert teacher.name == "objects" and teacher.input_key == "categories" and teacher.heads == {"action": 5}
    batch = example_batch(3, frames=5, slots=4, rgb_frames=8, size=32)
    batch["action"] = torch.tensor([0, 3, 4])
    with torch.no_grad():
        assert torch.allclose(teacher(batch)["action"], stlt(batch)["action"])
    student = DistillModule("r3d_tiny", {"action": 5}, teachers=[str(path)], weighting="uniform", lam=0.8)
    student.log = lambda *a, **k: None
    loss = student.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is None for p in teacher.parameters())
    del batch["categories"]  # an RGB-only batch: the object teacher's input is missing
    with pytest.raises(KeyError, match="objects"):
        student.training_step(batch, 0)


def test_omnivore_draws_one_modality_per_step_and_tests_on_rgb():
    from modalbridge.tasks.distill.module import OmnivoreModule

    m = OmnivoreModule("r3d_tiny", HEADS, train_modalities=("rgb", "flow"), seed=3)
    draws = [m.training_modality(k) for k in range(40)]
    assert set(draws) == {"rgb", "flow"} and draws == [m.training_modality(k) for k in range(40)]
    b = _batch()
    for name, other in (("rgb", "flow"), ("flow", "rgb")):  # the training logits come from the drawn input alone
        m.training_modality = lambda _step, name=name: name
        out = m.training_forward(b)["verb"]
        assert torch.allclose(out, m.model(b[name])["verb"]) and not torch.allclose(out, m.model(b[other])["verb"])
    assert torch.allclose(m(b)["noun"], m.model(b["rgb"])["noun"])  # evaluation: RGB only
    m.training_modality = lambda _step: "audio"
    with pytest.raises(KeyError, match="audio"):
        m.training_forward(b)


@pytest.mark.parametrize("config, batches", [("world_omnivore.yaml", 3), ("world_sthelse_omnivore.yaml", 4)])
def test_omnivore_world_configs_train_through_the_cli(tmp_path, config, batches):
    """EK (RGB/flow/audio) and Something-Else (RGB + box canvas on the layout data module)."""
    import json
    from pathlib import Path

    from modalbridge.cli import main

    path = Path(__file__).resolve().parents[3] / "configs" / "distill" / config
    assert main(["fit", "--config", str(path), "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1",
                 "--trainer.limit_train_batches", str(batches), "--trainer.limit_val_batches", "2",
                 "--trainer.enable_progress_bar", "false", "--data.init_args.num_workers", "0"]) in (0, None)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("stage") == "val" and 0 <= r["val/action_top1"] <= 100 for r in rows)


def test_box_canvas_draws_outlines_hands_over_objects():
    from modalbridge.tasks.distill.models import BoxCanvas

    canvas = BoxCanvas(8, thickness=1)
    boxes = torch.tensor([[[[0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75], [0, 0, 0.5, 0.5], [0, 0, 1e-9, 1e-9]]]])
    categories = torch.tensor([[[3, 2, 1, 0]]])  # CLS (not drawn), object, hand, padding (not drawn)
    out = canvas(boxes, categories)
    assert out.shape == (1, 3, 1, 8, 8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    rgb = ((out[0, :, 0] * std[:, None, None] + mean[:, None, None]) * 255).round().int().permute(1, 2, 0)
    colour = {(255, 255, 255): ".", (255, 0, 0): "o", (0, 0, 255): "h"}
    picture = ["".join(colour[tuple(px.tolist())] for px in row) for row in rgb]
    assert picture == ["hhhh....",
                       "h..h....",
                       "h.ohoo..",
                       "hhhh.o..",
                       "..o..o..",
                       "..oooo..",
                       "........",
                       "........"]


def test_box_canvas_matches_drawing_box_by_box():
    """The batched renderer against a plain loop that paints objects, then hands, one box at a time."""
    from modalbridge.tasks.distill.models import BoxCanvas

    g = torch.Generator().manual_seed(0)
    s, thickness = 16, 2.0
    xy = torch.rand(2, 3, 6, 2, 2, generator=g).sort(dim=3).values  # (B, T, M, (lo, hi), (x, y))
    boxes = xy.flatten(-2)[..., [0, 1, 2, 3]]  # x1 y1 x2 y2
    categories = torch.randint(0, 4, (2, 3, 6), generator=g)
    canvas = BoxCanvas(s, thickness=thickness)
    out = canvas(boxes, categories)
    c = torch.arange(s) + 0.5
    expected = torch.zeros(2, 3, s, s, dtype=torch.long)
    for colour, cid in ((1, canvas.object_id), (2, canvas.hand_id)):
        for b, t, m in zip(*torch.nonzero(categories == cid, as_tuple=True)):
            x1, y1, x2, y2 = (boxes[b, t, m] * s).tolist()
            in_x, in_y = (c >= x1) & (c <= x2), (c >= y1) & (c <= y2)
            near_x = in_x & ((c - x1 < thickness) | (x2 - c < thickness))
            near_y = in_y & ((c - y1 < thickness) | (y2 - c < thickness))
            on = (in_y[:, None] & near_x[None, :]) | (near_y[:, None] & in_x[None, :])
            expected[b, t][on] = colour
    torch.testing.assert_close(out, canvas.palette[expected].permute(0, 4, 1, 2, 3))
    assert (expected > 0).any() and (expected == 2).any()


def test_omnivore_trains_on_the_box_canvas_of_a_layout_batch():
    from modalbridge.tasks.distill.module import OmnivoreModule

    m = OmnivoreModule("r3d_tiny", {"action": 5}, train_modalities=("boxes",), canvas_size=32)
    boxes = torch.rand(2, 5, 3, 4).sort(-1).values  # x1 ≤ y1 ≤ x2 ≤ y2: valid boxes
    batch = {"boxes": boxes, "categories": torch.tensor([3, 1, 2]).expand(2, 5, 3), "rgb": torch.randn(2, 3, 4, 32, 32)}
    out = m.training_forward(batch)["action"]
    expected = m.model(m.canvas(boxes[:, :-1], batch["categories"][:, :-1]))["action"]  # extract frame dropped
    assert out.shape == (2, 5) and torch.allclose(out, expected)
    with pytest.raises(KeyError, match="layout"):
        m.training_forward({"rgb": batch["rgb"]})
