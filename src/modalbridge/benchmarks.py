"""``modalbridge bench``: runs the scripts in the repository's ``benchmarks/`` folder.

Each script exposes ``run(quick: bool = False) -> dict`` and prints its ratios (measured side by side
in one run — these machines are noisy, absolute times are not claims).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCHMARKS = ("clip_pipeline", "train_step", "distill", "layouts")


def benchmarks_dir() -> Path:
    d = Path(__file__).resolve().parents[2] / "benchmarks"
    if not d.is_dir():
        raise FileNotFoundError(f"benchmarks/ not found next to the package ({d}); run from a source checkout")
    return d


def _load(name: str):
    path = benchmarks_dir() / f"{name}.py"
    if not path.exists():
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    spec = importlib.util.spec_from_file_location(f"modalbridge_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_benchmarks(name: str = "all", *, quick: bool = False) -> dict:
    names = BENCHMARKS if name == "all" else (name,)
    results = {}
    for n in names:
        print(f"== benchmark {n} ==", flush=True)
        results[n] = _load(n).run(quick=quick)
    print(json.dumps(results, indent=1, default=str))
    return results
