"""Static HTML reports and the figures they embed (matplotlib, PNG)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
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


def save_figure(fig, out_png: str | Path) -> Path:
    """Tight layout, create the folder, save as PNG (90 dpi) and close the figure."""
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


def plot_curves(records: list[dict], out_png: str | Path, keys: Sequence[str] | None = None) -> Path | None:
    """Plot metric curves over epochs from ``metrics.jsonl`` records; returns the PNG path."""
    records = [r for r in records if "epoch" in r]
    if keys is None:
        keys = sorted({k for r in records for k in r if k.endswith(("loss", "top1"))})
    keys = [k for k in keys if any(k in r for r in records)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for k in keys:
        pts = [(r["epoch"], r[k]) for r in records if k in r]
        ax = axes[0] if k.endswith("loss") else axes[1]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
    for ax, t in zip(axes, ("loss", "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_title(t)
        if ax.lines:
            ax.legend(fontsize=7)
    return save_figure(fig, out_png)


def bar_plot(labels: Sequence[str], values: Sequence[float], out_png: str | Path, *, ylabel: str,
             title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(labels)), 3.2))
    ax.bar(range(len(values)), values, color="#4a7bb7")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save_figure(fig, out_png)
