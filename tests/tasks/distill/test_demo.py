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
