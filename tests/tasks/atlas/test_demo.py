"""``modalbridge demo atlas``: the claim table and the report (fast: a smoke-sized run; slow: the default run shows
the thesis's Table 4.1 and 4.3 orderings on the world)."""

import json

import pytest
import torch

from modalbridge.tasks.atlas.demo import DemoConfig, run_demo


def test_demo_prints_the_claim_table_and_writes_a_report_that_renders(tmp_path, capsys):
    from browser import chromium_or_skip, render_report

    cfg = DemoConfig.quick(max_records=64, bootstrap=50)
    report = run_demo(out=tmp_path / "demo", config=cfg)
    printed = capsys.readouterr().out
    assert "SOD > MSE regressor, IOR" in printed and "verdict" in printed and "held-out organs" in printed
    html = report.read_text()
    assert html.index("Claims") < html.index("Results beside the thesis") < html.index("Held-out organs")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results["claims"]) == 4
    assert {r["system"] for r in results["results"]} == {"SOD", "MSE regressor", "classifier", "centre", "random",
                                                         "frequency"}
    chromium_or_skip()
    page = render_report(report, tmp_path / "report.png")
    assert page["images"] == 2 and page["images_loaded"] == 2 and not page["broken"], page


@pytest.mark.slow
def test_default_demo_shows_table_4_1_and_4_3_orderings(tmp_path):
    """``modalbridge demo atlas`` as it runs by default (one seed; both cores; ~1.5 min idle). Measured 2026-12-07
    (world v2, seed 0, bf16): SOD − MSE IOR +12.4 [+8.4, +16.7] points, NVD +0.2 [+0.1, +0.3] cm; classifier − SOD
    NVD-O +1.8 [+1.2, +2.6] cm; held-out kidney and pancreas, centre − SOD NVD +0.5 [+0.1, +0.8] cm. Asserted with
    margins below those."""
    torch.set_num_threads(2)
    run_demo(out=tmp_path / "demo")
    claims = {c["claim"]: c for c in json.loads((tmp_path / "demo" / "results.json").read_text())["claims"]}
    mean = {name.split(" (")[0]: float(next(v for k, v in c.items() if k.startswith("mean")))
            for name, c in claims.items()}
    assert mean["SOD > MSE regressor, IOR"] > 5, claims
    assert mean["SOD < MSE regressor, NVD"] > 0.1, claims
    assert mean["SOD < classifier, NVD-O"] > 0.5, claims
    assert mean["held-out organs: SOD < centre, NVD"] > 0.2, claims
