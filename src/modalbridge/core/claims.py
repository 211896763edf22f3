"""A paper's claim measured on a world, with its uncertainty, as every demo reports it.

A :class:`Claim` is a difference in the claim's direction (``mean > 0`` = the claim's ordering), with two 95 %
intervals: a paired bootstrap over the evaluation items (clips, scenes, documents — the same items for both
systems) and Student's t over seeds (nan for one seed). Its verdict in words: *holds* (mean > 0 and every
available interval above 0), *holds on average, within noise* (mean > 0, an interval reaching 0), *does not
hold* (mean ≤ 0). :func:`claim_table_text` prints a list of them as the plain-text table a demo ends with.

>>> Claim("a > b", "Table 1", 2.0, (0.5, 3.0), (float("nan"),) * 2, [2.0]).verdict
'holds'
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from modalbridge.metrics.uncertainty import paired_bootstrap, seed_interval

__all__ = ["Claim", "choose_config", "claim_table_text", "demo_finish", "demo_start", "measure_claim", "paired_claim"]


@dataclass
class Claim:
    name: str
    thesis: str
    mean: float  # in the claim's unit; > 0 means the claim's direction
    items: tuple[float, float]  # 95 % paired bootstrap over evaluation items
    seeds: tuple[float, float]  # 95 % Student's t over seeds (nan for one seed)
    per_seed: list[float]
    unit: str = "points"
    item_name: str = "clips"

    @property
    def verdict(self) -> str:
        lows = [v for v in (self.items[0], self.seeds[0]) if v == v]
        if self.mean <= 0:
            return "does not hold"
        if all(v > 0 for v in lows):
            return "holds"
        return "holds on average, within noise"

    def row(self) -> dict[str, Any]:
        def interval(v):
            return "—" if v[0] != v[0] else f"[{v[0]:+.1f}, {v[1]:+.1f}]"
        return {"claim": self.name, "thesis": self.thesis, f"mean ({self.unit})": f"{self.mean:+.1f}",
                f"95% CI, {self.item_name} (bootstrap)": interval(self.items), "95% CI, seeds (t)": interval(self.seeds),
                "per seed": ", ".join(f"{v:+.1f}" for v in self.per_seed), "verdict": self.verdict}


def measure_claim(name: str, thesis: str, statistic: Callable[[torch.Tensor], torch.Tensor | float], n: int,
                  per_seed: Sequence[float], *, resamples: int = 1000, unit: str = "points",
                  item_name: str = "clips") -> Claim:
    """A :class:`Claim` from ``statistic(indices)`` (the seed-mean difference over the evaluation items
    ``indices``; vectorised over a (R, n) index matrix when it can be) and the per-seed differences."""
    estimate, low, high = paired_bootstrap(statistic, n, resamples=resamples)
    _, s_low, s_high = seed_interval(list(per_seed))
    return Claim(name, thesis, estimate, (low, high), (s_low, s_high), list(per_seed), unit, item_name)


def paired_claim(name: str, thesis: str, gains: torch.Tensor, *, resamples: int = 1000, unit: str = "points",
                 item_name: str = "clips") -> Claim:
    """A :class:`Claim` from per-item gains ``(seeds, n)`` (system A − system B on each evaluation item, > 0 in the
    claim's direction): the seed-mean gain with a paired bootstrap over the items and Student's t over the seeds'
    mean gains."""
    gains = torch.as_tensor(gains)
    if gains.ndim != 2:
        raise ValueError(f"gains must be (seeds, items), got shape {tuple(gains.shape)}")
    per_item = gains.mean(0)
    return measure_claim(name, thesis, lambda idx: per_item[idx].mean(-1), gains.shape[1],
                         [float(v) for v in gains.mean(1)], resamples=resamples, unit=unit, item_name=item_name)


def claim_table_text(items: Sequence[Claim]) -> str:
    """The claims as a plain-text table (what a demo prints last)."""
    mixed = len({(c.unit, c.item_name) for c in items}) > 1  # e.g. points and cm: the unit goes into the cell
    rows = []
    for c in items:
        row = c.row()
        if mixed:
            row = {("mean" if k.startswith("mean (") else "95% CI (bootstrap)" if k.endswith("(bootstrap)") else k):
                   (f"{v} {c.unit}" if k.startswith("mean (") else v) for k, v in row.items()}
        rows.append(row)
    cols = [k for k in rows[0] if k not in ("thesis", "per seed")] if rows else []
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols), "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def choose_config(cls, config=None, *, quick: bool = False, long: bool = False, seeds=None):
    """A demo's recipe from the CLI's switches: ``config`` as given, else ``cls.quick()`` / ``cls.long()`` /
    ``cls()``; ``seeds`` replaces its seeds."""
    if config is None:
        config = cls.quick() if quick else cls.long() if long else cls()
    return config if seeds is None else dataclasses.replace(config, seeds=tuple(seeds))


def demo_start(task: str, cfg, out: str | Path | None, world: str | None = None, detail: str = "") -> tuple[Path, float]:
    """A demo's output folder (``out``, default ``runs/demo-<task>``, created) and start time; builds or finds
    ``world`` (``world://…``) and prints the run's header line (world, precision, seeds, ``detail``)."""
    from modalbridge.core.paths import runs_dir
    from modalbridge.core.precision import describe_precision

    folder = Path(out) if out is not None else runs_dir() / f"demo-{task}"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.time()
    where = ""
    if world is not None:
        from modalbridge.core.worlds import resolve_root

        where = f"{task} world at {resolve_root(world)} ({time.time() - start:.0f} s); "
    print(f"[demo] {where}{describe_precision(cfg.precision, 'cpu')}; seeds {', '.join(map(str, cfg.seeds))}; "
          f"{detail} → {folder}", flush=True)
    return folder, start


def demo_finish(found: Sequence[Claim], start: float, report: Path) -> None:
    """Print the claim table and how long the demo took (what every demo ends with)."""
    print("\n" + claim_table_text(found))
    print(f"\n[demo] finished in {(time.time() - start) / 60:.1f} min; report: {report}")
