"""``modalbridge demo facts``: the claim table and the report (fast: a smoke-sized run on a tiny random BERT; slow:
the default run shows the thesis's Chapter 5 orderings on the world)."""

import json

import pytest
import torch

from modalbridge.nn.bert import TINY_BERT
from modalbridge.tasks.facts.demo import DemoConfig, run_demo


def test_demo_prints_the_claim_table_and_writes_a_report(tmp_path, capsys):
    cfg = DemoConfig.quick(bert_config=TINY_BERT, max_records=48, steps=3, val_batches=1, bootstrap=50)
    report = run_demo(out=tmp_path / "demo", config=cfg)
    printed = capsys.readouterr().out
    assert "pre-ranker > zero-shot MiniLM" in printed and "verdict" in printed and "entropy detector" in printed
    html = report.read_text()
    assert html.index("Claims") < html.index("Linking results beside the thesis") < html.index("Out-of-KG")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results["claims"]) == 4
    assert {r["system"] for r in results["results"]} == {"pre-ranker", "pre-ranker + Context", "zero-shot MiniLM",
                                                         "Frequency", "Random"}
    (agreement,) = results["agreement"]
    assert agreement["same top-10 up to ties (%)"] == "100.0", agreement  # exact search over the same vectors


@pytest.mark.slow
def test_default_demo_shows_the_chapter_5_orderings(tmp_path):
    """``modalbridge demo facts`` as it runs by default (one seed; both cores). Asserted with margins below the
    measured values (docs/facts.md, "Results on the world")."""
    torch.set_num_threads(2)
    run_demo(out=tmp_path / "demo")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    mean = {c["claim"].split(",")[0]: float(next(v for k, v in c.items() if k.startswith("mean")))
            for c in results["claims"]}
    assert mean["pre-ranker > zero-shot MiniLM"] > 20, results["claims"]
    assert mean["pre-ranker > Frequency"] > 20, results["claims"]
    assert mean["+ Context > pre-ranker"] > 2, results["claims"]
    assert mean["entropy detector > random"] > 5, results["claims"]
    assert results["agreement"][0]["same top-10 up to ties (%)"] == "100.0"
