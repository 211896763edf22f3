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
    """``modalbridge demo scenes`` as it runs by default (one seed, every test scene of the world; both cores)."""
    torch.set_num_threads(2)  # the folder's fixture restores one thread after this module
    run_demo(out=tmp_path / "demo")
    claims = {c["claim"]: c for c in json.loads((tmp_path / "demo" / "results.json").read_text())["claims"]}
    mean = {name: float(c["mean (×100)"]) for name, c in claims.items()}
    assert mean["SR-BERT > no description (hc-beam), S_abs"] > 1.5, claims
    assert mean["SR-BERT (hc-beam) > centre baseline, S_abs"] > 10 and mean[
        "SR-BERT (hc-beam) > centre baseline, S_rel"] > 10, claims
    assert mean["hc-beam > ss decoding (SR-BERT), S_rel"] > 0.5, claims
