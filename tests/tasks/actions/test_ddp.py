"""Scale-out: the world config trains as two CPU processes (Lightning DDP over gloo) and both ranks
compute identical validation metrics over the full (de-duplicated) validation split."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # subprocess CLI fits (make test runs them; make test-fast does not)

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "configs" / "actions" / "world.yaml"
ARGS = ["--config", str(CONFIG), "--trainer.max_epochs", "1", "--trainer.devices", "2",
        "--trainer.strategy", "ddp", "--trainer.enable_progress_bar", "false",
        "--data.init_args.num_workers", "0", "--trainer.limit_train_batches", "4"]


def _check_ranks(run_dir: Path) -> None:
    r0 = json.loads((run_dir / "ranks" / "rank0.json").read_text())
    r1 = json.loads((run_dir / "ranks" / "rank1.json").read_text())
    assert r0 and r0 == r1
    from modalbridge.core.worlds import resolve_root
    from modalbridge.datasets.epic_kitchens import EpicKitchens100

    n_val = len(EpicKitchens100(resolve_root("world://kitchen/ek100")).segments("validation"))
    assert r0["val/num_clips"] == n_val  # every clip once, padding removed


def test_fit_ddp_two_cpu_processes_agree(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "modalbridge.cli", "fit", *ARGS,
                           "--trainer.default_root_dir", str(run_dir)],
                          capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-4000:]
    _check_ranks(run_dir)


@pytest.mark.slow
def test_same_config_runs_under_torchrun(tmp_path):
    run_dir = tmp_path / "torchrun"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "modalbridge.cli", "fit",
                           *ARGS, "--trainer.default_root_dir", str(run_dir)],
                          capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-4000:]
    _check_ranks(run_dir)
