"""`modalbridge demo` end to end in its quick setting (slow: several minutes on 2 cores)."""

import json

import pytest

from modalbridge.tasks.distill.demo import run_demo


@pytest.mark.slow
def test_quick_demo_writes_a_complete_report(tmp_path):
    report = run_demo(quick=True, out=tmp_path / "demo")
    html = report.read_text()
    for section in ("Accuracy and calibration", "Ensemble calibration", "Compute"):
        assert section in html
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert {"teacher rgb", "teacher flow", "teacher audio", "student distilled", "teacher ensemble"} <= set(
        results["results"])
    weights = [r["weight verb"] for r in results["calibration"]]
    assert abs(sum(weights) - 1) < 1e-5


@pytest.mark.slow
def test_demo_distilled_student_beats_the_ce_student_on_action(tmp_path):
    """The demo's default run (seed 0, ~7 min on 2 idle cores). Measured: CE-only student 14.7 % action top-1,
    distilled 16.7 % (+2.0 = 3 of 150 clips). One seed: a weak claim, see docs/distill.md — the ensemble's ECE
    is NOT lower than the RGB model's on this world, so that claim is reported, not asserted."""
    run_demo(out=tmp_path / "demo")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())["results"]
    ce, kd = results["student CE-only (= RGB teacher)"], results["student distilled"]
    assert kd["action_top1"] >= ce["action_top1"] + 1.0, (kd, ce)


@pytest.mark.slow
def test_long_trained_teachers_ensemble_is_better_calibrated_than_rgb(tmp_path):
    """Table 7.1 on the clean kitchen world (no label noise), teachers trained 24 epochs each (31 min on 2 CPU
    cores): the calibrated γ=1 ensemble of RGB, flow and audio is more accurate than RGB on both heads and better
    calibrated on verbs. Measured on 2 CPU cores (2026-11-27): RGB verb/noun top-1 64.0/44.0, ECE 10.0/9.3;
    ensemble 100/100, ECE 4.0/10.0 — on nouns the two tie (the ensemble is right on every clip but
    under-confident by ~10 points, RGB is not over-confident at this size), so only the verb ECE is asserted.
    On a GPU machine (other arithmetic) the noun ordering held too: RGB 6.8/19.9 vs ensemble 4.2/8.5."""
    from modalbridge.core.classifier import ModalityClassifierModule
    from modalbridge.tasks.distill.demo import DemoConfig, _data, _fit, evaluate
    from modalbridge.tasks.distill.module import DistillModule, EnsembleModule

    cfg = DemoConfig(root="world://kitchen/ek100", teacher_epochs=24)
    ckpts = []
    for modality in ("rgb", "flow", "audio"):
        dm = _data(cfg, (modality,))
        module = ModalityClassifierModule(cfg.backbone, dm.heads, modality=modality, lr=cfg.lr, warmup_epochs=0.5)
        ckpts.append(str(_fit(module, dm, tmp_path / modality, cfg.teacher_epochs, modality)))
    dm = _data(cfg, ("rgb", "flow", "audio"))
    ensemble = DistillModule(cfg.backbone, dm.heads, teachers=ckpts, weighting="calibrated", gamma=1.0)
    ensemble.calibrate(dm.holdout_dataloader())
    weights = {h: ensemble.ensemble.weight(h) for h in ensemble.heads}
    models = {f"teacher {t.name}": t.module for t in ensemble.teachers}
    results = evaluate({**models, "ensemble": EnsembleModule(ensemble.teachers, weights)}, dm)
    ens, rgb = results["ensemble"], results["teacher rgb"]
    for head in ("verb", "noun"):
        assert ens[f"{head}_top1"] > rgb[f"{head}_top1"] + 20, (head, results)
    assert ens["verb_ece"] < rgb["verb_ece"] - 3, results


def test_demo_empties_the_media_cache_it_filled(monkeypatch):
    import numpy as np

    from modalbridge.io.memory import MEDIA_CACHE
    from modalbridge.tasks.distill import demo

    def fake_run(quick, out, config):
        MEDIA_CACHE.configure(2**20)  # what the demo's data modules do (cache_media_gb)
        MEDIA_CACHE.put(("frame", "v.mp4", None, 0), np.zeros(10, np.uint8))
        raise RuntimeError("stopped")

    monkeypatch.setattr(demo, "_run_demo", fake_run)
    with pytest.raises(RuntimeError):
        demo.run_demo(quick=True)
    assert not MEDIA_CACHE.enabled and len(MEDIA_CACHE) == 0
