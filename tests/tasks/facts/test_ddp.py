"""Scale-out of the facts task: the pre-ranker (tiny random-init BERT) on the facts world as two CPU processes
(Lightning DDP over gloo) launched by torchrun. Both ranks report the same validation metrics — slot and fact
accuracies, recalls and the out-of-KG scores of the thresholds each rank tuned — over every validation record
exactly once: 31 records on 2 ranks, so the sampler pads one duplicate that the evaluation must drop."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modalbridge.core.worlds import resolve_root
from modalbridge.nn.bert import TINY_BERT

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
RECORDS = 31


def test_linker_fit_ddp_two_cpu_processes_agree(tmp_path):
    resolve_root("world://facts")  # built here once, not by both ranks at the same time
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "modalbridge.cli", "fit", "--config", str(REPO / "configs/facts/world.yaml"),
           "--model.init_args.model_kwargs", json.dumps({"bert": "minilm-l6", "bert_config": TINY_BERT, "dim": 16}),
           "--model.init_args.negatives_e", "16", "--model.init_args.negatives_p", "4",
           "--data.init_args.max_records", str(RECORDS), "--data.init_args.batch_size", "8",
           "--trainer.max_epochs", "1", "--trainer.devices", "2", "--trainer.strategy", "ddp",
           "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] and ranks[0] == ranks[1]
    assert ranks[0]["val/n"] == RECORDS
    assert {"val/subj_acc", "val/rel_acc", "val/obj_acc", "val/fact_acc", "val/recall_sum",
            "val/ookg_entropy_subj", "val/ookg_confidence_fact"} <= set(ranks[0])
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2  # 31 records, 8 per step on each of 2 ranks
    assert not torch.allclose(ckpt["state_dict"]["ookg_entropy"], torch.full((3,), math.log(5)))
