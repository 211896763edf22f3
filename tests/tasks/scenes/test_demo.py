"""``modalbridge demo scenes``: the claim table and the report (fast: a smoke-sized run; slow: the default run
shows the thesis's Table 3.1 orderings on the world)."""

import json

import pytest
import torch

from modalbridge.tasks.scenes.demo import DemoConfig, run_demo

TINY = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128}


def test_demo_prints_the_claim_table_and_writes_a_report_that_renders(tmp_path, capsys):
    from browser import chromium_or_skip, render_report

    cfg = DemoConfig.quick(bert_config=TINY, train_scenes=48, test_scenes=12, bootstrap=50)
    report = run_demo(out=tmp_path / "demo", config=cfg)
    printed = capsys.readouterr().out
    assert "SR-BERT > no description" in printed and "verdict" in printed and "hc-beam > ss" in printed
    html = report.read_text()
    assert html.index("Claims") < html.index("Welch") < html.index("Results beside the thesis") < html.index("Pictures")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results["claims"]) == 6 and {r["model"] for r in results["results"]} == {
        "SR-BERT", "no description", "centre"}
    assert results["relations"][0]["layouts"] == "ground truth"
    chromium_or_skip()
    page = render_report(report, tmp_path / "report.png")
    assert page["images"] == 2 and page["images_loaded"] == 2 and not page["broken"], page


@pytest.mark.slow
def test_default_demo_shows_table_3_1_orderings(tmp_path):
    """``modalbridge demo scenes`` as it runs by default (one seed, every test scene of the world; both cores; ~4–6
    min). Measured 2026-12-07 (seed 0, bf16): SR-BERT − no description S_abs +8.8 [+7.6, +10.0], S_rel +3.5
    [+2.5, +4.5]; − centre S_abs +13.6, S_rel +30.0; hc-beam − ss S_abs −0.8 [−1.6, −0.0], S_rel +0.6 [−0.1, +1.3].
    Earlier runs of the same recipe (10 and 16 epochs, 150 test scenes): text S_abs +3.8 / +3.8, S_rel −0.4 / +0.5;
    hc-beam − ss S_rel +1.3 / +1.7. Asserted: the orderings that held in every run (text and centre on S_abs, centre
    on S_rel). Text on S_rel and hc-beam over ss are not asserted: they change sign between runs (issue #19)."""
    torch.set_num_threads(2)  # the folder's fixture restores one thread after this module
    run_demo(out=tmp_path / "demo")
    claims = {c["claim"]: c for c in json.loads((tmp_path / "demo" / "results.json").read_text())["claims"]}
    mean = {name: float(c["mean (×100)"]) for name, c in claims.items()}
    assert mean["SR-BERT > no description (hc-beam), S_abs"] > 1.5, claims
    assert mean["SR-BERT (hc-beam) > centre baseline, S_abs"] > 10 and mean[
        "SR-BERT (hc-beam) > centre baseline, S_rel"] > 10, claims


@pytest.mark.slow
def test_highest_confidence_beats_one_step_with_the_papers_masking(tmp_path):
    """Table 3.1's decoding ordering, on SR-BERT trained with the paper's 15 % Bernoulli masking (the model
    ``--long`` adds; ~2 min idle; passed 2026-12-07). Measured 2026-12-07 (seed 0, bf16, 12 epochs, 300 test scenes): hc-beam − ss
    S_rel +4.6 [+3.5, +5.7], S_abs +1.1 [+0.0, +2.1] (thesis: +5.7 / +3.3). Under the demo's uniform masking
    one-step decoding is in-distribution and the gap vanishes (S_abs −0.8, S_rel +0.6): the thesis's gap comes
    from the masking rate, which the docs report."""
    from modalbridge.tasks.scenes.demo import PAPER

    torch.set_num_threads(2)
    run_demo(out=tmp_path / "demo", config=DemoConfig(models=(PAPER,)))
    claims = {c["claim"]: c for c in json.loads((tmp_path / "demo" / "results.json").read_text())["claims"]}
    mean = {name: float(c["mean (×100)"]) for name, c in claims.items()}
    assert mean[f"hc-beam > ss decoding ({PAPER}), S_rel"] > 2.0, claims
    assert mean[f"hc-beam > ss decoding ({PAPER}), S_abs"] > 0.0, claims
