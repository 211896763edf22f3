"""End-to-end training of the RGB baseline on the embedded world through the CLI: it learns, it resumes
exactly after a hard kill, and two DDP processes agree."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modalbridge.cli import main

pytestmark = pytest.mark.e2e  # subprocess CLI fits (make test runs them; make test-fast does not)

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "configs" / "actions" / "world.yaml"


def _fit(run_dir: Path, *extra: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "modalbridge.cli", "fit", "--config", str(CONFIG),
           "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"fit failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def _val_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("stage") == "val"]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run") / "world"
    _fit(run_dir, "--trainer.max_epochs", "4")
    return run_dir


def test_baseline_learns_far_above_chance(baseline_run):
    last = _val_records(baseline_run)[-1]
    # chance: 1/num_verbs, 1/num_nouns and 1/(verbs*nouns) of the world (6 and 8 classes)
    assert last["val/verb_top1"] > 100 / 6 + 10
    assert last["val/noun_top1"] > 100 / 8 + 12
    assert last["val/action_top1"] > 5 * 100 / 48
    for name in ("config.yaml", "report.html", "weights.safetensors", "checkpoints/last.ckpt", "figures/curves.png"):
        assert (baseline_run / name).exists(), name


def test_resume_after_hard_kill_gives_identical_metrics(baseline_run, tmp_path):
    run_dir = tmp_path / "killed"
    proc = _fit(run_dir, "--trainer.max_epochs", "4", env={"MODALBRIDGE_KILL_AT_EPOCH": "2"}, check=False)
    assert proc.returncode != 0 and (run_dir / "checkpoints" / "last.ckpt").exists()
    _fit(run_dir, "--trainer.max_epochs", "4", "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"))
    full, resumed = _val_records(baseline_run), _val_records(run_dir)
    assert [r["epoch"] for r in resumed] == [r["epoch"] for r in full]
    for a, b in zip(full, resumed):
        for key in ("val/verb_top1", "val/noun_top1", "val/action_top1", "val/verb_ece"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (key, a["epoch"])


def test_recognize_prints_top5(baseline_run, capsys):
    from modalbridge.core.worlds import resolve_root
    from modalbridge.datasets.epic_kitchens import EpicKitchens100

    ek = EpicKitchens100(resolve_root("world://kitchen/ek100"))
    video = ek.video_path(ek.segments("validation")[0].video_id)
    for precision in ("32-true", "bf16-mixed"):
        assert main(["recognize", str(video), "--ckpt", str(baseline_run / "checkpoints" / "last.ckpt"),
                     "--precision", precision]) == 0
        out = capsys.readouterr().out
        assert "verb:" in out and "noun:" in out and out.count("%") == 10
