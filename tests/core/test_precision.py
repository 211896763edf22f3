"""``precision: auto``: bf16 mixed precision where the hardware computes bf16 natively, fp32 elsewhere; losses and
metrics stay fp32, checkpoints and safetensors stay fp32, and the run says which precision it used."""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modalbridge.cli import main
from modalbridge.core import plugins, precision
from modalbridge.core.precision import autocast, describe_precision, resolve_precision
from modalbridge.core.trainer import Trainer

TESTS = Path(__file__).resolve().parents[1]
CONFIGS = TESTS / "toy_tasks" / "configs" / "toy"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_cpu_follows_the_hardware(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: native)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("AUTO", "cpu") == expected
    assert expected in describe_precision("auto", "cpu") and "auto" in describe_precision("auto", "cpu")
    assert Trainer(precision="auto", accelerator="cpu", logger=False).precision == expected


def test_explicit_precisions_pass_through():
    for value in ("32-true", "bf16-mixed", 32, "64-true"):
        assert resolve_precision(value, "cpu") == value
    assert describe_precision("32-true", "cpu") == "precision 32-true"
    assert Trainer(precision="32-true", accelerator="cpu", logger=False).precision == "32-true"


def test_cpu_flags_are_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    for flags, expected in (("fpu sse avx512f avx512_bf16", True), ("fpu sse avx2", False), ("amx_bf16 amx_tile", True)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(precision, "Path", lambda _p, info=info: info)
        precision.cpu_computes_bf16.cache_clear()
        assert precision.cpu_computes_bf16() is expected, flags
    precision.cpu_computes_bf16.cache_clear()


def test_autocast_context():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with autocast("bf16-mixed", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with autocast("32-true", "cpu"):
        assert layer(x).dtype == torch.float32


@pytest.fixture
def toy_plugin(monkeypatch):
    monkeypatch.setenv("MODALBRIDGE_PLUGINS", "toy_tasks.plugin")
    plugins.reset_plugins()
    yield
    plugins.reset_plugins()


def test_fit_in_bf16_keeps_fp32_weights_and_reports_the_precision(toy_plugin, tmp_path):
    """A bf16-mixed fit through the CLI with gradient clipping (the engine clips its fused AdamW itself: Lightning's
    mixed-precision plugin refuses to): the parameters, checkpoint and safetensors are fp32, and the report names
    the precision."""
    run = tmp_path / "run"
    assert main(["fit", "--config", str(CONFIGS / "regression.yaml"), "--trainer.default_root_dir", str(run),
                 "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "2",
                 "--trainer.precision", "bf16-mixed", "--trainer.gradient_clip_val", "0.5"]) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["optimizer_states"][0]["param_groups"][0]["fused"] is True
    state = ckpt["state_dict"]
    assert state and all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    weights = load_file(str(run / "weights.safetensors"))
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    assert "precision bf16-mixed" in (run / "report.html").read_text()
