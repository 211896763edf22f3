"""The engine on tasks that are not video classification: two throw-away tasks plugged in like real ones
(``tests/toy_tasks``) — a regression task monitored with ``min`` on a plain data module, and a retrieval task
with two evaluation loaders, manual optimisation and a seeded data module — through the real CLI: fit, test,
exact resume after a hard kill, and a 2-process gloo DDP fit where each sample is seen once per epoch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from modalbridge.cli import main
from modalbridge.core import plugins
from modalbridge.core.engine import TaskModule, dedupe_rows, metric_mode

TESTS = Path(__file__).resolve().parents[1]
CONFIGS = TESTS / "toy_tasks" / "configs" / "toy"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture
def toy_plugin(monkeypatch):
    monkeypatch.setenv("MODALBRIDGE_PLUGINS", "toy_tasks.plugin")
    plugins.reset_plugins()
    yield
    monkeypatch.delenv("MODALBRIDGE_PLUGINS")
    plugins.reset_plugins()


def _records(run_dir: Path, stage: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("stage") == stage]


def _fit_in_process(config: str, run_dir: Path, *extra: str) -> None:
    assert main(["fit", "--config", str(CONFIGS / config), "--trainer.default_root_dir", str(run_dir),
                 "--trainer.enable_progress_bar", "false", *extra]) == 0


# -- engine pieces ---------------------------------------------------------------------------------------
def test_dedupe_rows_keeps_one_row_per_id_sorted():
    rows = {"index": torch.tensor([3, 1, 3, 0]), "x": torch.tensor([30.0, 10.0, 31.0, 0.0]), "name": list("abcd")}
    out = dedupe_rows(rows, "index")
    assert out["index"].tolist() == [0, 1, 3] and out["x"].tolist() == [0.0, 10.0, 30.0]
    assert out["name"] == ["d", "b", "a"]
    out = dedupe_rows({"id": ["v2", "v1", "v2"], "x": torch.tensor([2.0, 1.0, 5.0])}, "id")
    assert out["id"] == ["v1", "v2"] and out["x"].tolist() == [1.0, 2.0]


def test_metric_direction_from_names():
    assert metric_mode("val/loss") == "min" and metric_mode("val/action_ece") == "min"
    assert metric_mode("val/mean_distance") == "min" and metric_mode("val/action_top1") == "max"
    assert metric_mode("val/seen/recall@1") == "max" and metric_mode("train/ce_verb") == "min"


class _Plain(TaskModule):
    """A linear model on tuple batches of a plain TensorDataset (no sample ids)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lin = torch.nn.Linear(4, 1)

    def training_loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.lin(x).squeeze(-1), y), {}

    def evaluation_step(self, batch, dataloader_idx=0):
        x, y = batch
        return {"err": (self.lin(x).squeeze(-1) - y) ** 2}

    def compute_metrics(self, outputs, loader):
        return {"mse": float(outputs["err"].mean()), "n": float(len(outputs["err"]))}


def _plain_loader(n=24):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1)), batch_size=8)


def test_batches_without_sample_ids_train_and_evaluate(tmp_path):
    module = _Plain(lr=0.05, optimizer="sgd")
    before = module.lin.weight.detach().clone()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, _plain_loader(), _plain_loader())
    assert not torch.equal(before, module.lin.weight)  # it trained (a batch without "index" is not skipped)
    assert module.last_eval_metrics["val/n"] == 24 and module.last_eval_metrics["val/mse"] >= 0


@pytest.mark.parametrize(("limits", "expected"), [({"max_epochs": 4}, (12, 3)),
                                                  ({"max_epochs": -1, "max_steps": 5}, (5, 3))])
def test_schedule_length_follows_max_epochs_or_max_steps(tmp_path, limits, expected):
    lengths = []

    class Record(L.Callback):
        def on_train_start(self, trainer, pl_module):
            lengths.append(pl_module.schedule_lengths())

    module = _Plain(lr=0.01, warmup_epochs=1.0)  # one epoch = 3 batches of 8
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[Record()], **limits)
    trainer.fit(module, _plain_loader())
    assert lengths == [expected]


# -- the two toy tasks through the CLI --------------------------------------------------------------------
def test_plugged_in_task_brings_its_verbs_world_and_dataset_check(toy_plugin, capsys):
    assert "toy" in plugins.task_plugins()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "toy-count" in capsys.readouterr().out
    assert main(["toy-count"]) == 0 and "48 train" in capsys.readouterr().out
    assert main(["world", "toy"]) == 0
    root = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["data", "check", "toy", root]) == 0 and "80 rows" in capsys.readouterr().out
    assert main(["tasks"]) == 0 and "toy-count" in capsys.readouterr().out


def test_regression_task_keeps_its_lowest_loss_epoch_as_best(toy_plugin, tmp_path):
    run = tmp_path / "regression"
    _fit_in_process("regression.yaml", run)
    val = _records(run, "val")
    mse = [r["val/mse"] for r in val]
    best_epoch = min(range(len(mse)), key=mse.__getitem__)
    assert best_epoch != max(range(len(mse)), key=mse.__getitem__)
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    assert best.name == f"best-epoch={best_epoch}.ckpt"
    assert main(["test", "--config", str(CONFIGS / "regression.yaml"), "--trainer.default_root_dir", str(run),
                 "--trainer.enable_progress_bar", "false", "--ckpt_path", str(best)]) == 0
    (test,) = _records(run, "test")
    assert test["test/mse"] == pytest.approx(mse[best_epoch], rel=1e-5)  # the same split, the best weights
    assert (run / "report.html").exists()


def test_retrieval_task_reports_each_evaluation_loader(toy_plugin, tmp_path):
    run = tmp_path / "retrieval"
    _fit_in_process("retrieval.yaml", run, "--trainer.max_epochs", "2")
    last = _records(run, "val")[-1]
    from toy_tasks.data import RetrievalData

    dm = RetrievalData()
    dm.setup()
    assert last["val/seen/num_samples"] == len(dm.eval_sets[0]) and last["val/unseen/num_samples"] == len(dm.eval_sets[1])
    s, u = last["val/seen/recall@1"], last["val/unseen/recall@1"]
    assert last["val/hm"] == pytest.approx(2 * s * u / (s + u), rel=1e-5)


# -- kill-and-resume and DDP (subprocesses) ------------------------------------------------------------------
def _cli(run_dir: Path, config: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "modalbridge.cli", "fit", "--config", str(CONFIGS / config),
           "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false", *extra]
    full_env = {**os.environ, "MODALBRIDGE_PLUGINS": "toy_tasks.plugin",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)


@pytest.mark.e2e
@pytest.mark.parametrize("config", ["regression.yaml", "retrieval.yaml"])
def test_toy_task_resumes_exactly_after_a_hard_kill(tmp_path, config):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _cli(full, config, "--trainer.max_epochs", "4").returncode == 0
    proc = _cli(killed, config, "--trainer.max_epochs", "4", env={"MODALBRIDGE_KILL_AT_EPOCH": "2"})
    assert proc.returncode != 0 and (killed / "checkpoints" / "last.ckpt").exists()
    proc = _cli(killed, config, "--trainer.max_epochs", "4", "--ckpt_path", str(killed / "checkpoints" / "last.ckpt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _records(full, "val"), _records(killed, "val")
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [0, 1, 2, 3]
    for ra, rb in zip(a, b):
        assert {k: v for k, v in ra.items() if k != "step"} == pytest.approx({k: v for k, v in rb.items() if k != "step"})


@pytest.mark.e2e
@pytest.mark.parametrize("config", ["regression.yaml", "retrieval.yaml"])
def test_toy_task_ddp_two_processes_agree_and_split_the_data(tmp_path, config):
    run = tmp_path / "ddp"
    proc = _cli(run, config, "--trainer.max_epochs", "2", "--trainer.devices", "2", "--trainer.strategy", "ddp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((run / "ranks" / "rank0.json").read_text())
    r1 = json.loads((run / "ranks" / "rank1.json").read_text())
    assert r0 and r0 == r1
    if config == "regression.yaml":  # a plain DataLoader got Lightning's DistributedSampler: one copy per epoch
        assert r0["val/num_samples"] == 32
        for epoch in (0, 1):
            seen = [json.loads((run / "seen" / f"rank{r}_epoch{epoch}.json").read_text()) for r in (0, 1)]
            assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(48))
    else:
        assert r0["val/seen/num_samples"] + r0["val/unseen/num_samples"] > 0 and "val/hm" in r0


def test_evaluation_rows_are_gathered_over_ranks_per_loader_and_deduplicated(monkeypatch):
    """Two ranks of a padded distributed sampler: rank 1 repeats sample 0; each loader is gathered on its own."""
    from types import SimpleNamespace

    import torch.distributed as dist

    module = _Plain()
    module._trainer = SimpleNamespace(world_size=2, datamodule=None)
    other_rank = {0: {"index": [torch.tensor([1, 3])], "err": [torch.tensor([10.0, 30.0])]},
                  1: {"index": [torch.tensor([7])], "err": [torch.tensor([70.0])]}}

    def all_gather_object(out, local):  # this process is rank 0; "rank 1" answers for the same loader
        loader = 0 if 2 in local["index"].tolist() else 1
        out[0], out[1] = local, {k: torch.cat(v) for k, v in other_rank[loader].items()}

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    module._eval = {0: {"index": [torch.tensor([0, 2]), torch.tensor([0])], "err": [torch.tensor([0.0, 20.0]),
                                                                                    torch.tensor([0.0])]},
                    1: {"index": [torch.tensor([5])], "err": [torch.tensor([50.0])]}}
    rows0, rows1 = module.gathered_eval(0), module.gathered_eval(1)
    assert rows0["index"].tolist() == [0, 1, 2, 3] and rows0["err"].tolist() == [0.0, 10.0, 20.0, 30.0]
    assert rows1["index"].tolist() == [5, 7] and rows1["err"].tolist() == [50.0, 70.0]


def test_checkpoint_carries_the_rng_states_a_resumed_run_continues_from():
    import numpy as np

    module = _Plain()
    module._trainer = type("T", (), {"datamodule": None})()  # on_save_checkpoint reads the data module: none
    torch.manual_seed(3)
    np.random.seed(3)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(99)
    np.random.seed(99)
    module.on_load_checkpoint(checkpoint)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert checkpoint["modalbridge_class"] == "_Plain"
