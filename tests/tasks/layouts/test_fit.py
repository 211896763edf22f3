"""The layouts task end to end through the CLI on the layout world (``world://kitchen-layouts``): STLT learns
actions from boxes alone and names them for objects it never saw (the compositional split), ``recognize``
reads a layout checkpoint + box file and draws the picture, ``data prepare`` writes the unified JSON.

The slow test trains STLT, the appearance-only R3D, and the LCF and CACNF fusions started from those two, and
checks the thesis's ordering on the compositional split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modalbridge.cli import main

pytestmark = pytest.mark.e2e  # subprocess CLI fits (make test runs them; make test-fast does not)

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "layouts"
CHANCE = 100 / 10  # 10 templates in the world


def _fit(config: str, run_dir: Path, *extra: str) -> list[dict]:
    cmd = [sys.executable, "-m", "modalbridge.cli", "fit", "--config", str(CONFIGS / config),
           "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=1800)
    if proc.returncode != 0:
        raise AssertionError(f"fit failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("stage") == "val"]


@pytest.fixture(scope="module")
def stlt_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    run_dir = tmp_path_factory.mktemp("layouts") / "stlt"
    return run_dir, _fit("world_stlt.yaml", run_dir, "--trainer.max_epochs", "10")


def test_last_checkpoint_holds_the_last_epoch_and_best_the_best(stlt_run):
    """Regression: with Lightning 2.x, ``save_last`` next to a monitored top-k only refreshed last.ckpt when a new
    best was saved, so last.ckpt silently held the best epoch (and a resume restarted from it)."""
    import torch

    run_dir, records = stlt_run
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == len(records) - 1
    scores = [r["val/action_top1"] for r in records]
    best_epoch = max(range(len(scores)), key=lambda e: (scores[e], -e))
    assert (run_dir / "checkpoints" / f"best-epoch={best_epoch}.ckpt").exists()


def test_stlt_names_actions_of_unseen_objects_far_above_chance(stlt_run):
    run_dir, records = stlt_run
    # seed 0 on 2 CPU cores: 51.2 % after 10 epochs (the validation objects' shapes and names are all unseen)
    assert records[-1]["val/action_top1"] > CHANCE + 27.5
    for name in ("config.yaml", "report.html", "weights.safetensors", "checkpoints/last.ckpt"):
        assert (run_dir / name).exists(), name


def test_recognize_a_layout_checkpoint_prints_top5_and_draws(stlt_run, tmp_path, capsys):
    from modalbridge.core.worlds import resolve_root
    from modalbridge.datasets.something import SomethingSomething

    root = resolve_root("world://kitchen-layouts/ssv2")
    video = SomethingSomething(root, variant="something-else/compositional").videos("validation")[0]
    picture = tmp_path / "prediction.png"
    code = main(["recognize", str(root / "videos" / f"{video.id}.webm"), "--ckpt",
                 str(stlt_run[0] / "checkpoints" / "last.ckpt"), "--boxes",
                 str(root / "bounding_box_smthsmth_part1.json"), "--picture", str(picture), "--precision", "bf16-mixed"])
    assert code == 0
    out = capsys.readouterr().out
    assert "action:" in out and out.count("%") == 5 and picture.stat().st_size > 10_000


def test_data_prepare_writes_unified_layouts(tmp_path, capsys):
    from modalbridge.core.worlds import resolve_root
    from modalbridge.datasets.boxes import read_layouts

    root = resolve_root("world://kitchen-layouts/ssv2")
    assert main(["data", "prepare", "something-else", str(root), "--out", str(tmp_path)]) == 0
    train = read_layouts(tmp_path / "train_dataset.json")
    val = read_layouts(tmp_path / "val_dataset.json")
    assert len(train) == 600 and len(val) == 240  # no world video lacks boxes
    assert all(v.template for v in train) and {b.category for v in val for f in v.frames for b in f} <= {"hand",
                                                                                                          "object"}


def test_few_shot_stlt_from_base_classes_beats_training_from_scratch(tmp_path):
    """Something-Else few-shot protocol on the world (5 base / 5 novel templates, 5 clips per novel template,
    validation objects unseen): the STLT trained on the base templates, given a fresh head, learns the novel
    templates from 25 clips far better than the same STLT from scratch. Measured (seed 0, 2 CPU cores):
    60.0 % vs 41.7 % (chance 20 %; one novel template, a camera turn, has the same boxes as another)."""
    base = tmp_path / "base"
    _fit("world_fewshot_base_stlt.yaml", base, "--trainer.max_epochs", "10")
    ckpt = str(base / "checkpoints" / "last.ckpt")
    pretrained = _fit("world_5shot_stlt.yaml", tmp_path / "5shot", "--model.init_args.init_from", ckpt)
    scratch = _fit("world_5shot_stlt.yaml", tmp_path / "scratch", "--model.init_args.init_from", "null")
    assert pretrained[-1]["val/action_top1"] > scratch[-1]["val/action_top1"] + 10
    assert pretrained[-1]["val/action_top1"] > 20 + 30


def test_action_genome_world_trains_multilabel_stlt_with_finite_map(tmp_path):
    """The Action Genome path end to end (real pickle/CSV formats → unified JSON → BCE → Charades mAP). The
    world's labels are random, so only the path is checked, not a level."""
    records = _fit("world_action_genome.yaml", tmp_path / "ag", "--trainer.max_epochs", "2")
    assert len(records) == 2 and 0 < records[-1]["val/action_map"] <= 100
    assert records[-1]["val/num_clips"] == 40


def _fusion_recipe(root: Path, seed: int = 0) -> dict[str, float]:
    """The configs' recipe for one seed: STLT (20 and 30 epochs) and R3D (10) from scratch, then CACNF and LCF
    (5 epochs) with branches initialised from the 20-epoch STLT and the R3D last epochs → last-epoch top-1 %.
    ``MODALBRIDGE_TEST_ACCELERATOR`` (default cpu) picks the device."""
    extra = ("--seed_everything", str(seed), "--trainer.accelerator", os.environ.get("MODALBRIDGE_TEST_ACCELERATOR", "cpu"))

    def top1(config: str, name: str, *args: str) -> float:
        return _fit(config, root / name, *extra, *args)[-1]["val/action_top1"]

    scores = {"stlt20": top1("world_stlt.yaml", "stlt"),
              "stlt": top1("world_stlt.yaml", "stlt30", "--trainer.max_epochs", "30"),
              "r3d": top1("world_r3d.yaml", "r3d")}
    init = (f"{{layout: {root / 'stlt' / 'checkpoints' / 'last.ckpt'}, "
            f"appearance: {root / 'r3d' / 'checkpoints' / 'last.ckpt'}}}")
    scores["cacnf"] = top1("world_cacnf.yaml", "cacnf", "--model.init_args.init_from", init)
    scores["lcf"] = top1("world_cacnf.yaml", "lcf", "--model.init_args.model", "lcf", "--model.init_args.init_from", init)
    return scores


@pytest.mark.slow
def test_fusions_beat_stlt_which_beats_r3d_on_unseen_objects(tmp_path):
    """Thesis Table 6.1's ordering on the compositional split of the world, the configs' recipe (one seed, ~35 min
    on 2 CPU cores): STLT (20 epochs) and R3D (10) from scratch, then CACNF and LCF for 5 epochs with their
    branches initialised from those two runs' last epochs. The STLT baseline gets 30 epochs (more layout
    training than the fusions' 20 + 5). Measured (seed 0, 2 CPU cores): CACNF 76.2, LCF 75.4, STLT 71.2,
    R3D 25.4 top-1 % (chance 10). CACNF vs LCF is a tie here (+0.8 = 2 clips), so only the fusion gain over
    layouts and the layout gain over appearance are asserted for one seed; CACNF > LCF is a claim about the
    mean over seeds (next test)."""
    scores = _fusion_recipe(tmp_path)
    assert scores["stlt"] > scores["r3d"] + 20, scores
    assert scores["cacnf"] > scores["stlt"] + 3 and scores["lcf"] > scores["stlt"] + 2, scores


@pytest.mark.slow
def test_cacnf_beats_lcf_on_average_over_six_seeds(tmp_path):
    """CACNF > LCF (Table 6.1: +1.0 to +2.8 points) as a mean over seeds 0–5 of the recipe above — one seed cannot
    show it (the appearance branch from scratch lands anywhere between 11 and 47 %). ~3.5 h on 2 CPU cores; set
    MODALBRIDGE_TEST_ACCELERATOR=gpu on a GPU machine. Measured on an H200 (docs/layouts.md): CACNF − LCF =
    +13.3, 0.0, +2.9, −0.8, (seed 4: cut off), +8.3 for seeds 0–3, 5 (and −2.9 for seed 6): mean +4.7 over the
    five; this exact six-seed run has not been made end to end."""
    runs = [_fusion_recipe(tmp_path / f"seed{seed}", seed) for seed in range(6)]
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
    assert mean["cacnf"] > mean["lcf"] + 1, runs
    assert mean["lcf"] > mean["stlt"] and mean["stlt"] > mean["r3d"] + 20, runs
