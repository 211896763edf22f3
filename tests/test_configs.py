"""Every YAML recipe under configs/ parses against the signatures it names, the way ``modalbridge fit``
reads it (jsonargparse, LightningCLI's parser), without building models or touching dataset folders: an
unknown or mistyped ``init_args`` key, a missing class or a bad trainer option fails here."""

from pathlib import Path

import pytest
from jsonargparse import ActionConfigFile, ArgumentParser
from lightning.pytorch import LightningDataModule, LightningModule, Trainer

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def _parser() -> ArgumentParser:
    """The keys LightningCLI (src/modalbridge/cli.py) accepts: our run options, trainer, model, data."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    for key in ("task", "run_name", "monitor"):
        parser.add_argument(f"--{key}", type=str)
    parser.add_argument("--seed_everything", type=int | bool)
    parser.add_class_arguments(Trainer, "trainer", fail_untyped=False)
    parser.add_subclass_arguments(LightningModule, "model")
    parser.add_subclass_arguments(LightningDataModule, "data")
    return parser


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c.relative_to(c.parents[1])) for c in CONFIGS])
def test_config_parses(config):
    cfg = _parser().parse_args(["--config", str(config)])
    assert cfg.model.class_path and cfg.data.class_path


def test_ssv2_flow_recipes_read_flow():
    """The SSv2 / Something-Else optical-flow recipes (thesis Tables 7.3 / 7.5) carry flow in their batches."""
    names = ("ssv2_teacher_flow.yaml", "ssv2_rgb_of.yaml", "sthelse_rgb_of_obj.yaml")
    by_name = {c.name: _parser().parse_args(["--config", str(c)]) for c in CONFIGS if c.name in names}
    teacher = by_name["ssv2_teacher_flow.yaml"]
    assert teacher.model.init_args.modality == "flow" and list(teacher.data.init_args.modalities) == ["flow"]
    for name in ("ssv2_rgb_of.yaml", "sthelse_rgb_of_obj.yaml"):
        cfg = by_name[name]
        assert "flow" in cfg.data.init_args.modalities and cfg.data.init_args.holdout == 1000
        args = cfg.model.init_args
        assert (args.lam, args.gamma, args.tau, args.lr, args.weight_decay, args.warmup_epochs) == \
            (1.0, 30.0, 1.0, 1e-4, 0.02, 3)
