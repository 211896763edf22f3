"""``modalbridge demo``: the claim machinery on synthetic predictions (fast), the CLI's seed options, and the demo
end to end (slow: the quick setting renders its report in a real browser; the default run checks both claims)."""

import json
import sys
from pathlib import Path

import pytest
import torch

from modalbridge.core.claims import Claim, claim_table_text
from modalbridge.tasks.distill import demo
from modalbridge.tasks.distill.demo import ENSEMBLE, KD, RGB, claims, run_demo

TESTS = Path(__file__).resolve().parents[2]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


def _rows(verb_hit: torch.Tensor, confidence: float, n_classes: int = 4) -> dict[str, torch.Tensor]:
    """Per-clip rows whose verb is right where ``verb_hit``, noun always right, and whose top-label confidences
    multiply to about ``confidence``."""
    n = len(verb_hit)
    target = torch.zeros(n, dtype=torch.long)
    rows = {"index": torch.arange(n), "target/verb": target, "target/noun": target}
    for head, hit in (("verb", verb_hit), ("noun", torch.ones(n, dtype=torch.bool))):
        p = confidence ** 0.5
        probs = torch.full((n, n_classes), (1 - p) / (n_classes - 1))
        top = torch.where(hit, 0, 1)
        probs[torch.arange(n), top] = p
        rows[f"logits/{head}"] = probs.log()
    return rows


def _seed(kd_hits: torch.Tensor, ce_hits: torch.Tensor, rgb_conf: float, ens_conf: float) -> dict:
    ens_hits = ce_hits.clone()
    out = {}
    for name, hits, conf in ((RGB, ce_hits, rgb_conf), (KD, kd_hits, 0.5), (ENSEMBLE, ens_hits, ens_conf)):
        rows = _rows(hits, conf)
        acc = hits.double().mean().item()
        out[name] = {"rows": rows, "metrics": {"action_top1": 100 * acc, "action_ece": 100 * abs(conf - acc)}}
    return {"eval": out}


def test_claims_measure_the_gain_and_the_ece_gap_with_intervals():
    g = torch.Generator().manual_seed(0)
    per_seed = []
    for _ in range(3):
        ce = torch.rand(200, generator=g) < 0.3
        kd = ce | (torch.rand(200, generator=g) < 0.15)  # the student adds right answers: gain ≈ +10 points
        per_seed.append(_seed(kd, ce, rgb_conf=0.9, ens_conf=0.35))  # RGB over-confident, ensemble near its 30 %
    accuracy, calibration = claims(per_seed, resamples=300)
    assert 5 < accuracy.mean < 15 and accuracy.items[0] > 0 and accuracy.seeds[0] > 0
    assert accuracy.verdict == "holds"
    assert calibration.mean > 40 and calibration.items[0] > 0 and calibration.verdict == "holds"
    table = claim_table_text([accuracy, calibration])
    assert "holds" in table and "95% CI, clips" in table


def test_claim_verdicts_in_words():
    assert Claim("c", "t", 2.0, (0.5, 3.0), (0.1, 4.0), [2.0]).verdict == "holds"
    assert Claim("c", "t", 2.0, (-0.5, 3.0), (0.1, 4.0), [2.0]).verdict == "holds on average, within noise"
    assert Claim("c", "t", 2.0, (0.5, 3.0), (float("nan"),) * 2, [2.0]).verdict == "holds"  # one seed
    assert Claim("c", "t", -1.0, (-2.0, 0.5), (-3.0, 1.0), [-1.0]).verdict == "does not hold"


@pytest.mark.parametrize("argv, expected", [
    ([], {"quick": False, "long": False, "seeds": None}),
    (["--seed", "4"], {"seeds": [4]}),
    (["--seeds", "2"], {"seeds": [0, 1]}),
    (["--seed", "3", "--seeds", "3"], {"seeds": [3, 4, 5]}),
    (["--long"], {"long": True}),
    (["--quick", "--out", "x"], {"quick": True, "out": "x"}),
])
def test_demo_cli_options(monkeypatch, argv, expected, capsys):
    from modalbridge.cli import main

    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda **kw: seen.update(kw) or Path("report.html"))
    assert main(["demo", *argv]) == 0
    assert {k: seen[k] for k in expected} == expected


@pytest.mark.parametrize("argv, message", [(["--quick", "--long"], "exclude each other"),
                                           (["--seeds", "0"], "at least 1")])
def test_demo_cli_rejects_bad_options(argv, message, capsys):
    from modalbridge.cli import main

    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_demo_report_opens_with_the_claims_and_renders_in_a_browser(tmp_path):
    """The demo's report from synthetic predictions of 2 seeds (no training): claim table first, then the
    reliability diagrams, per-class change and the oracle text teacher apart; every image loads in Chromium."""
    from types import SimpleNamespace

    from browser import chromium_or_skip, render_report
    from modalbridge.core.classifier import ModalityClassifierModule
    from modalbridge.tasks.distill.demo import DemoConfig, _write
    from modalbridge.tasks.distill.module import Teacher

    g = torch.Generator().manual_seed(1)
    per_seed = []
    heads = {"verb": 4, "noun": 4}
    for _ in range(2):
        ce = torch.rand(60, generator=g) < 0.4
        seed = _seed(ce | (torch.rand(60, generator=g) < 0.2), ce, rgb_conf=0.9, ens_conf=0.4)
        for entry in seed["eval"].values():
            entry["metrics"].update({k: 50.0 for k in ("verb_top1", "noun_top1", "verb_ece", "noun_ece")})
        seed["calibration"] = [{"teacher": m, "weight verb": 1 / 3} for m in ("rgb", "flow", "audio")]
        per_seed.append(seed)
    rgb = ModalityClassifierModule("r3d_tiny", heads)
    per_seed[0]["student"] = ModalityClassifierModule("r3d_tiny", heads)
    per_seed[0]["teachers"] = [Teacher(rgb, "rgb", "rgb")]
    text = {"metrics": {k: 99.0 for k in ("verb_top1", "noun_top1", "action_top1", "verb_ece", "noun_ece",
                                          "action_ece")}}
    source = SimpleNamespace(heads=heads, class_names={h: [f"{h}{i}" for i in range(4)] for h in heads})
    val = [{"rgb": torch.zeros(1, 3, 8, 32, 32).half(), "index": torch.zeros(1, dtype=torch.long)}]
    found = claims(per_seed, resamples=100)
    report = _write(DemoConfig(seeds=(0, 1)), tmp_path, per_seed, text, found, source, val, elapsed=60.0)
    html = report.read_text()
    assert html.index("Claims") < html.index("Reliability") < html.index("Accuracy and calibration")
    assert "text teacher (oracle" in html and "modalbridge demo --long" in html
    assert json.loads((tmp_path / "results.json").read_text())["claims"][0]["verdict"] == found[0].verdict
    chromium_or_skip()
    page = render_report(report, tmp_path / "report.png")
    assert page["images"] == 4 and page["images_loaded"] == 4 and not page["broken"], page


@pytest.mark.slow
def test_quick_demo_writes_a_report_that_renders_in_a_browser(tmp_path, capsys):
    from browser import chromium_or_skip, render_report

    report = run_demo(quick=True, out=tmp_path / "demo")
    printed = capsys.readouterr().out
    assert "verdict" in printed and "distilled student > CE-only student" in printed
    html = report.read_text()
    assert html.index("Claims") < html.index("Reliability") < html.index("Accuracy and calibration")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert {RGB, "flow teacher", "audio teacher", ENSEMBLE, KD} <= set(results["seeds"]["0"])
    assert [c["verdict"] for c in results["claims"]] and results["text_teacher"]["action_top1"] >= 0
    weights = [r["weight verb"] for r in results["calibration"]["0"]]
    assert abs(sum(weights) - 1) < 1e-5
    chromium_or_skip()
    page = render_report(report, tmp_path / "report.png")
    assert page["images"] >= 4 and page["images_loaded"] == page["images"] and not page["broken"], page


@pytest.mark.slow
def test_default_demo_shows_the_distillation_gain_on_average_over_three_seeds(tmp_path):
    """``modalbridge demo`` as ``make demo`` runs it (3 seeds, ~11 min on 2 idle CPU cores, bf16, fused AdamW).
    Measured twice on 2026-12-07: distilled − CE-only action top-1 mean +2.0 both times (+3.3 / +2.0 / +0.7);
    RGB − ensemble action ECE mean −0.1 both times — the calibration claim does not hold at this budget (the report
    says so and names ``modalbridge demo --long``, which shows it: +16.6, docs/distill.md), so only the
    distillation gain is asserted here."""
    run_demo(out=tmp_path / "demo")
    claims_found = json.loads((tmp_path / "demo" / "results.json").read_text())["claims"]
    accuracy, _ = claims_found
    assert accuracy["mean"] > 1.0, claims_found


@pytest.mark.slow
def test_long_trained_teachers_ensemble_is_better_calibrated_than_rgb(tmp_path):
    """Table 7.1 on the clean kitchen world (no label noise), r3d_tiny teachers trained 24 epochs each on the real
    data module (~30 min on 2 CPU cores): the calibrated γ=1 ensemble of RGB, flow and audio is more accurate than
    RGB on both heads and better calibrated on verbs. Measured on 2 CPU cores in fp32 (2026-11-27): RGB verb/noun
    top-1 64.0/44.0, ECE 10.0/9.3; ensemble 100/100, ECE 4.0/10.0 — on nouns the two tie, so only the verb ECE is
    asserted. On a GPU machine (other arithmetic) the noun ordering held too: RGB 6.8/19.9 vs ensemble 4.2/8.5."""
    from modalbridge.core.classifier import ModalityClassifierModule
    from modalbridge.tasks.distill.demo import DemoConfig, _data, _fit, evaluate
    from modalbridge.tasks.distill.module import DistillModule, EnsembleModule

    cfg = DemoConfig(root="world://kitchen/ek100", teacher_backbones={}, teacher_lrs={}, lr=1e-3, num_workers=0)
    ckpts = []
    for modality in ("rgb", "flow", "audio"):
        dm = _data(cfg, (modality,))
        module = ModalityClassifierModule(cfg.backbone, dm.heads, modality=modality, lr=cfg.lr, warmup_epochs=0.5)
        _fit(cfg, module, dm, tmp_path / modality, 24, modality)
        ckpts.append(str(tmp_path / modality / "checkpoints" / "last.ckpt"))
    dm = _data(cfg, ("rgb", "flow", "audio"))
    ensemble = DistillModule(cfg.backbone, dm.heads, teachers=ckpts, weighting="calibrated", gamma=1.0)
    ensemble.calibrate(dm.holdout_dataloader())
    weights = {h: ensemble.ensemble.weight(h) for h in ensemble.heads}
    models = {f"teacher {t.name}": t.module for t in ensemble.teachers}
    results = evaluate({**models, "ensemble": EnsembleModule(ensemble.teachers, weights)}, dm, cfg.precision)
    ens, rgb = results["ensemble"]["metrics"], results["teacher rgb"]["metrics"]
    for head in ("verb", "noun"):
        assert ens[f"{head}_top1"] > rgb[f"{head}_top1"] + 20, (head, results)
    assert ens["verb_ece"] < rgb["verb_ece"] - 3, (ens, rgb)
