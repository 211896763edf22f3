"""The benchmark scripts behind ``modalbridge bench`` still run against the library (tiny sizes, one step):
an API change that breaks a benchmark shows here, not at the next `make bench`."""

import importlib
import math

from modalbridge.core.plugins import all_benchmarks, load_target


def _load(name: str):
    """The module of a plugin-declared benchmark."""
    return importlib.import_module(all_benchmarks()[name].partition(":")[0])


def test_every_declared_benchmark_loads_and_is_callable():
    benchmarks = all_benchmarks()
    assert {"clip_pipeline", "train_step", "distill", "layouts"} <= set(benchmarks)
    for name, target in benchmarks.items():
        assert callable(load_target(target)), name


def test_distillation_step_live_vs_cached_logits_runs():
    result = _load("distill").training("r3d_tiny", frames=4, size=16, batch=2, steps=1, repeats=1, kwargs={})
    assert result["live_ms_per_step"] > 0 and math.isfinite(result["speedup_cached_vs_live"])


def test_media_cache_ratio_runs_and_restores_the_budget(tmp_path):
    from modalbridge.io.memory import MEDIA_CACHE

    bench = _load("clip_pipeline")
    video = bench._synthetic_video(tmp_path, 80)
    result = bench._media_cache_ratio(str(video), 2)
    assert result["cached"] > 0 and result["cache_mb"] > 0 and math.isfinite(result["ratio_cached_over_uncached"])
    assert not MEDIA_CACHE.enabled
    MEDIA_CACHE.clear()


def test_scenes_bench_decodes_batched_and_alone_identically_and_times_training(monkeypatch):
    bench = _load("scenes")
    monkeypatch.setattr(bench, "interleaved_ms", lambda fns, repeats, warmup=1: {
        name: {"median_ms": 1.0 + i, "samples_ms": [1.0 + i]} for i, name in enumerate(fns)})  # no timing, just paths
    model = bench.create_model("sr_bert_discrete", bert_config=bench.TINY_BERT)
    result = bench.decoding(model, bench._batch(3, train=False), repeats=1)
    assert result["identical_placements"] and result["strategies"]["hc-beam"]["passes_per_scene"] > 1
    assert bench.training(model, bench._batch(3, train=True), repeats=1)["32-true_steps_per_s"] > 0


def test_atlas_bench_paths_run_and_agree(monkeypatch):
    """Each part of ``modalbridge bench atlas`` runs at a small size: the batched SOD loss equals the per-sample
    loop, and the boundary KD-tree equals brute force."""
    bench = _load("atlas")
    for row in bench.sod(batch=4, points=(10,), repeats=1).values():
        assert row["same_value"] and row["speedup"] > 0
    result = bench.nearest((40, 50, 60), queries=50, brute_queries=20, ellipsoid_radius=8.0)
    assert result["finite"] and result["ellipsoid"]["same"] and result["queries_per_s"] > 0
    assert all(v > 0 for v in bench.grounding((16,), {"tiny": {"bert_config": bench.TINY_BERT}}, batch=2,
                                             repeats=1).values())
