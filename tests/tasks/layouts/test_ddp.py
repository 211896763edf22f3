"""Scale-out of the layouts task: STLT on the layout world as two CPU processes (Lightning DDP over gloo);
both ranks report the same metrics over every validation clip exactly once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # subprocess CLI fits (make test runs them; make test-fast does not)

REPO = Path(__file__).resolve().parents[3]


def test_stlt_fit_ddp_two_cpu_processes_agree(tmp_path):
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "modalbridge.cli", "fit", "--config", str(REPO / "configs/layouts/world_stlt.yaml"),
           "--trainer.max_epochs", "1", "--trainer.devices", "2", "--trainer.strategy", "ddp",
           "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] and ranks[0] == ranks[1]
    assert ranks[0]["val/num_clips"] == 240  # the world's validation split, padding removed
