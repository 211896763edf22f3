"""The study scripts under ``studies/`` still run against the library (tiny sizes): an API change that breaks one
shows here, not when somebody re-runs it to check a number in the docs."""

import importlib.util
import json
import math
from pathlib import Path

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"study_{name}", STUDIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_distill_calibration_study_runs_quick(tmp_path):
    study = _load("distill_calibration")
    out = tmp_path / "rows.jsonl"
    rows = study.main(["--quick", "--world", "world://kitchen/ek100", "--device", "cpu", "--gammas", "1",
                       "--students", "1", "--rgb-model", "pixel_mlp", "--teacher-model", "pooled",
                       "--json-out", str(out)])
    names = [r["model"] for r in rows]
    assert names[:3] == ["rgb (pixel_mlp, 1 ep)", "flow (pooled, 1 ep)", "audio (pooled, 1 ep)"]
    assert names[3:] == ["ensemble γ=1", "  student λ=1 from γ=1"]
    assert all(0 <= r["action"] <= 100 and math.isfinite(r["action ECE"]) for r in rows)
    assert 0 <= rows[0]["train action"] <= 100 and "train action" not in rows[3]  # members and students only
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["model"] for r in saved] == names and saved[0]["args"]["teacher_model"] == "pooled"
