"""Static HTML reports and the figures they embed (matplotlib, PNG)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

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
