"""Scale-out of the atlas task: the SOD regressor (tiny random-init BERT) on the atlas world as two CPU processes
(Lightning DDP over gloo) launched by torchrun; both ranks report the same metrics over every validation document
exactly once — 31 documents on 2 ranks, so the sampler pads one duplicate that the evaluation must drop."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modalbridge.core.worlds import resolve_root
from modalbridge.nn.bert import TINY_BERT

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DOCS = 31


def test_sod_fit_ddp_two_cpu_processes_agree(tmp_path):
    resolve_root("world://atlas/processed")  # built here once, not by both ranks at the same time
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "modalbridge.cli", "fit", "--config", str(REPO / "configs/atlas/world.yaml"),
           "--model.init_args.model_kwargs", json.dumps({"bert_config": TINY_BERT}),
           "--data.init_args.max_records", str(DOCS), "--data.init_args.batch_size", "16",
           "--trainer.max_epochs", "1", "--trainer.devices", "2", "--trainer.strategy", "ddp",
           "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] and ranks[0] == ranks[1]
    assert ranks[0]["val/num_docs"] == DOCS
    assert {"val/ior", "val/nvd", "val/nvdo"} <= set(ranks[0])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
