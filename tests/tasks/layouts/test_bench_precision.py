"""``modalbridge bench precision`` in quick mode (tiny models, small clips): every model row carries train and
inference times in fp32 and bf16 with positive finite ratios, and each model's data pipeline gives clips/s; no
timing assertions (machines are noisy). The data test reads the embedded worlds (generated once per session)."""

import json
import math

from modalbridge.core.benchmark import interleaved_ms, loader_clips_per_s
from modalbridge.core.plugins import all_benchmarks, load_target

LABELS = {"STLT", "CACNF", "R3D-50", "Swin-T"}


def test_interleaved_ms_alternates_the_order_and_excludes_warm_up():
    calls = []
    result = interleaved_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert all(len(r["samples_ms"]) == 3 and r["median_ms"] >= 0 for r in result.values())


def test_loader_clips_per_s_skips_the_first_batch():
    batches = [{"index": [0] * n} for n in (100, 2, 3)]
    assert loader_clips_per_s(batches, 5) > 0
    assert loader_clips_per_s(batches, 5, count=lambda b: len(b["index"])) > 0


def test_quick_precision_benchmark_reports_every_model(capsys):
    run = load_target(all_benchmarks()["precision"])
    result = run(quick=True, data=False)
    assert set(result["models"]) == LABELS and result["quick"]
    for label, row in result["models"].items():
        for kind in ("train", "infer"):
            for precision in ("fp32", "bf16"):
                assert row[f"{kind}_{precision}_ms"] > 0, (label, kind, precision)
            assert math.isfinite(row[f"{kind}_ratio"]) and row[f"{kind}_ratio"] > 0, (label, kind)
        for key in ("fwd_bwd_ratio", "adamw_for_loop_ms", "train_bf16_clips_per_s"):
            assert math.isfinite(row[key]) and row[key] > 0, (label, key)
    assert set(result["below_target"]) <= LABELS
    json.dumps(result)  # the CLI prints it as JSON
    out = capsys.readouterr().out
    assert "train fp32" in out and all(label in out for label in LABELS)


def test_quick_data_pipelines_give_clips_per_second():
    from modalbridge.tasks.layouts.bench_precision import cases, data_clips_per_s

    for case in cases(quick=True):
        assert data_clips_per_s(case, batches=1, workers=0) > 0, case.label
