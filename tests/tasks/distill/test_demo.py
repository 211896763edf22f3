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
