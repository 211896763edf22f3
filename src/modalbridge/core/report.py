"""Static HTML reports and the figures they embed (matplotlib, PNG)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}"""


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return html.escape(str(value))


def table_html(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """An HTML table; ``columns`` defaults to the union of the rows' keys in first-seen order."""
    if not rows:
        return "<p>(no rows)</p>"
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: str | Path, title: str, sections: Iterable[tuple[str, str]]) -> Path:
    """Write a self-contained HTML page; ``sections`` are ``(heading, html_body)`` pairs. Images are
    referenced relative to the report's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{_CSS}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<h2>{html.escape(h)}</h2>\n{body}" for h, body in sections]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_figure(fig, out_png: str | Path, *, rect: Sequence[float] | None = None) -> Path:
    """Tight layout (within ``rect``, figure coordinates, when given), create the folder, save as PNG
    (90 dpi) and close the figure."""
    fig.tight_layout(rect=rect)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


#: stage prefixes of metric names (``train/loss``, ``val/verb_top1``, ``test/seen/noun_top1``)
STAGES = ("train", "val", "test")
#: the most panels :func:`plot_curves` draws; the rest are only in ``metrics.jsonl``
MAX_CURVE_PANELS = 36
_STAGE_COLOURS = {"train": "C0", "val": "C1", "test": "C2"}


def metric_family(key: str) -> str:
    """The name of a metric without its stage prefix: ``val/seen/verb_top1`` → ``seen/verb_top1``;
    keys without a stage prefix (counters such as ``skipped_clips``) are their own family."""
    stage, sep, rest = key.partition("/")
    return rest if sep and stage in STAGES else key


@dataclass
class CurvePanel:
    """One subplot of :func:`plot_curves`: the keys of one metric family (e.g. ``train/loss`` and
    ``val/loss``), its direction (``"min"``/``"max"``, ``None`` for counters) and its title."""

    family: str
    keys: list[str]
    mode: str | None

    @property
    def title(self) -> str:
        if self.mode is None:
            return self.family
        return f"{self.family} ({'↑' if self.mode == 'max' else '↓'} better)"


def curve_panels(records: list[dict], keys: Sequence[str] | None = None,
                 modes: dict[str, str] | None = None) -> list[CurvePanel]:
    """The panels of :func:`plot_curves`: one per metric family among the numeric keys of the records that
    have an ``epoch`` (every logged metric unless ``keys`` names some), losses first, then by name. A
    family's direction comes from ``modes[key]`` (``"min"``/``"max"``), else from
    :func:`modalbridge.core.engine.metric_mode`; keys without a stage prefix (counters) get none."""
    records = [r for r in records if "epoch" in r]
    present = list(dict.fromkeys(
        k for r in records for k, v in r.items()
        if k not in ("epoch", "step", "stage") and isinstance(v, int | float) and not isinstance(v, bool)))
    if keys is not None:
        present = [k for k in keys if k in present]
    families: dict[str, list[str]] = {}
    for k in present:
        families.setdefault(metric_family(k), []).append(k)
    panels = []
    for family, members in families.items():
        members.sort(key=lambda k: (STAGES.index(k.partition("/")[0]) if k.partition("/")[0] in STAGES
                                    else len(STAGES), k))
        mode = None
        if family != members[0]:  # a staged metric (not a counter)
            mode = (modes or {}).get(members[0])
            if mode is None:
                from modalbridge.core.engine import metric_mode

                mode = metric_mode(members[0])
        panels.append(CurvePanel(family, members, mode))
    panels.sort(key=lambda p: ("loss" not in p.family.rpartition("/")[2], p.family))
    return panels


def plot_curves(records: list[dict], out_png: str | Path, keys: Sequence[str] | None = None,
                modes: dict[str, str] | None = None, *, max_panels: int = MAX_CURVE_PANELS) -> Path | None:
    """Learning curves from ``metrics.jsonl`` records: a grid with one small panel per metric family
    (:func:`curve_panels`; x = epoch, y = the metric, one line per stage, the title says which way is
    better), at most ``max_panels`` of them (a note in the figure counts the rest). Returns the PNG path,
    or ``None`` when there is nothing to plot."""
    records = [r for r in records if "epoch" in r]
    panels = curve_panels(records, keys, modes)
    if not panels:
        return None
    shown, hidden = panels[:max_panels], len(panels) - max_panels
    ncols = min(len(shown), 6 if len(shown) > 16 else 4)
    nrows = -(-len(shown) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 1.9 * nrows + (0.3 if hidden > 0 else 0)),
                             squeeze=False)
    for ax, panel in zip(axes.flat, shown):
        for k in panel.keys:
            pts = [(r["epoch"], r[k]) for r in records if isinstance(r.get(k), int | float)]
            stage = k.partition("/")[0]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=2.5, linewidth=1,
                    color=_STAGE_COLOURS.get(stage, "C3"), label=stage if len(panel.keys) > 1 else None)
        ax.set_title(panel.title, fontsize=7)
        ax.set_xlabel("epoch", fontsize=6)
        ax.set_ylabel(panel.family if len(panel.keys) > 1 else panel.keys[0], fontsize=6)
        ax.tick_params(labelsize=6)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3, linewidth=0.5)
        if len(panel.keys) > 1:
            ax.legend(fontsize=5, frameon=False)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    if hidden > 0:
        fig.text(0.5, 0.005, f"{hidden} more metric families in metrics.jsonl", ha="center", fontsize=7)
    return save_figure(fig, out_png, rect=(0, 0.02, 1, 1) if hidden > 0 else None)


def bar_plot(labels: Sequence[str], values: Sequence[float], out_png: str | Path, *, ylabel: str,
             title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(labels)), 3.2))
    ax.bar(range(len(values)), values, color="#4a7bb7")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save_figure(fig, out_png)


def _array(values) -> np.ndarray:
    """A float64 NumPy copy of a list, array or (any-device) tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
    return np.asarray(values, dtype=np.float64)


def _reliability_panel(ax, hist_ax, bins: dict) -> None:
    """One reliability diagram on ``ax`` (accuracy per bin against confidence, the gap to the diagonal
    hatched) and the share of samples per bin on ``hist_ax``; ``bins`` as in
    :func:`modalbridge.metrics.reliability_bins`."""
    edges, count = _array(bins["edges"]), _array(bins["count"])
    acc, conf = _array(bins["accuracy"]), _array(bins["confidence"])
    left, width, seen = edges[:-1], np.diff(edges), count > 0
    ax.plot([0, 1], [0, 1], linestyle="--", color="#333", linewidth=1, zorder=3, label="perfect calibration")
    ax.bar(left[seen], acc[seen], width[seen], align="edge", color="#4a7bb7", edgecolor="white",
           linewidth=0.5, label="accuracy")
    # the gap between a bin's accuracy and its mean confidence (the terms ECE sums, weighted by count)
    # (unfilled, so the hatching reads the same over white and over the accuracy bar)
    ax.bar(left[seen], (conf - acc)[seen], width[seen], bottom=acc[seen], align="edge", color="none",
           edgecolor="#c8463d", linewidth=0.8, hatch="///", label="gap to mean confidence")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3, linewidth=0.5)
    hist_ax.bar(left, 100 * count / max(count.sum(), 1), width, align="edge", color="#888", edgecolor="white",
                linewidth=0.5)
    hist_ax.set_xlabel("confidence")
    hist_ax.grid(alpha=0.3, linewidth=0.5, axis="y")


def reliability_plot(panels: dict[str, dict], path: str | Path, title: str | None = None) -> Path:
    """Side-by-side reliability diagrams, one panel per model, on shared axes.

    Args:
        panels: model name -> bins from :func:`modalbridge.metrics.reliability_bins` (``edges``
            ``(B+1,)``, ``count``/``accuracy``/``confidence`` ``(B,)``, accuracy and confidence as
            fractions, NaN for empty bins; ``ece`` in percent, shown in the panel title when present).
        path: the PNG to write.
        title: the figure's title.

    Each panel: x = confidence, y = accuracy, the diagonal, a bar of accuracy per bin with the gap to
    the bin's mean confidence hatched; below it, the share of samples per bin (%).
    """
    if not panels:
        raise ValueError("reliability_plot needs at least one panel")
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n + 0.4, 4.6 + (0.3 if title else 0)), squeeze=False,
                             sharex=True, sharey="row", gridspec_kw={"height_ratios": [3, 1]})
    for (name, bins), ax, hist_ax in zip(panels.items(), axes[0], axes[1]):
        _reliability_panel(ax, hist_ax, bins)
        ece = bins.get("ece")
        ax.set_title(name if ece is None else f"{name}\nECE {ece:.2f}%", fontsize=10)
    axes[0, 0].set_ylabel("accuracy")
    axes[1, 0].set_ylabel("% of samples")
    axes[0, 0].legend(loc="upper left", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def per_class_change_plot(names: Sequence[str], before, after, path: str | Path, title: str | None = None,
                          top: int | None = None, *, labels: tuple[str, str] = ("before", "after"),
                          unit: str = "points") -> Path:
    """The per-class change from a "before" to an "after" model as sorted horizontal bars (gains green
    on top, losses red below, each labelled with its value).

    Args:
        names: ``(C,)`` class names.
        before, after: ``(C,)`` per-class scores of the two models (e.g. accuracy in %).
        path: the PNG to write.
        title: the figure's title (default names the two models).
        top: keep only the ``top`` classes with the largest absolute change (the title says so).
        labels: what to call the two models in the axis label and default title.
        unit: the unit of the change, for the axis label (``points`` for a difference of percentages).
    """
    before, after = _array(before), _array(after)
    if not (len(names) == before.shape[0] == after.shape[0]) or before.ndim != 1 or after.ndim != 1:
        raise ValueError(f"names, before and after must have the same length; got {len(names)}, "
                         f"{tuple(before.shape)}, {tuple(after.shape)}")
    delta = after - before
    order = np.argsort(-np.abs(delta), kind="stable")[: top or len(delta)]
    order = order[np.argsort(delta[order], kind="stable")]  # ascending: the largest gain ends on top
    shown, kept = delta[order], [str(names[i]) for i in order]
    colours = np.where(shown > 0, "#3a9a4a", np.where(shown < 0, "#c8463d", "#999"))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.24 * len(kept)))
    ax.barh(range(len(kept)), shown, color=colours, height=0.7)
    ax.set_yticks(range(len(kept)), kept, fontsize=8)
    ax.set_ylim(-0.6, len(kept) - 0.4)
    ax.axvline(0, color="#444", linewidth=0.8)
    span = max(np.abs(shown).max(initial=0.0), 1e-9)  # room for the value labels on either side
    ax.set_xlim(-span * (1.2 if (shown < 0).any() else 0.05), span * (1.2 if (shown > 0).any() else 0.05))
    for y, d in enumerate(shown):
        ax.text(d + (0.02 * span if d >= 0 else -0.02 * span), y, f"{d:+.1f}", va="center",
                ha="left" if d >= 0 else "right", fontsize=7)
    ax.set_xlabel(f"change ({labels[1]} − {labels[0]}, {unit})")
    ax.grid(alpha=0.3, linewidth=0.5, axis="x")
    summary = f"{(delta > 0).sum()} up, {(delta < 0).sum()} down, {(delta == 0).sum()} unchanged"
    shown_note = f"; largest {len(kept)} of {len(delta)} shown" if len(kept) < len(delta) else ""
    ax.set_title(f"{title or f'Per-class change: {labels[0]} → {labels[1]}'}\n{summary}{shown_note}", fontsize=10)
    return save_figure(fig, path)
