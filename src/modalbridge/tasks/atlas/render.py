"""Pictures of points in an atlas: three orthogonal slices through a point (PNG, matplotlib) and an interactive
3-D view of the organs and points (one self-contained HTML file, plotly.js inlined: opens offline).

Both take centred-mm points (``Atlas`` convention: ``p = (idx - center) * spacing``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from modalbridge.tasks.atlas.atlas import Atlas

__all__ = ["atlas_html", "organ_colours", "slices_figure"]

#: marker colours of the points drawn (the first one, a star, is the prediction)
POINT_COLOURS = ("red", "yellow", "cyan", "magenta", "lime", "white")
#: axes of the label volume ``labels[x, y, z]`` (z = the body's long axis in SIO; signs not checked, spec §2.1)
AXES = ("x", "y", "z")


def organ_colours(n: int) -> np.ndarray:
    """``(n, 3)`` distinct RGB colours in [0, 1] (matplotlib's tab20, cycled)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return np.asarray([cmap(i % 20)[:3] for i in range(n)], dtype=np.float32)


def _label_image(organ_slice: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``(H, W)`` organ indices (-1 = none) → ``(H, W, 3)`` RGB on a dark background."""
    rgb = np.full(organ_slice.shape + (3,), 0.08, dtype=np.float32)
    inside = organ_slice >= 0
    rgb[inside] = colours[organ_slice[inside]]
    return rgb


def slices_figure(atlas: Atlas, points_mm: np.ndarray | Sequence[float], out_png: str | Path, *,
                  labels: Sequence[str] | None = None, title: str | None = None, nearest: int = 3) -> Path:
    """Three orthogonal slices (planes x = x₀, y = y₀, z = z₀) of the organ volume through the first point, with
    every point marked (later points are drawn where they fall in those planes' projections).

    Args:
        points_mm: ``(3,)`` or ``(P, 3)`` centred mm; the slices go through ``points_mm[0]``.
        labels: a legend label per point (default ``prediction``, ``point 2`` …).
        nearest: list this many nearest organs of the first point (with distances) under the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modalbridge.core.report import save_figure

    points = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
    labels = list(labels) if labels is not None else ["prediction"] + [f"point {i + 2}" for i in range(len(points) - 1)]
    volume, colours = atlas.organ_volume(), organ_colours(atlas.num_organs)
    index = atlas.to_index(points)  # (P, 3) voxel indices (clipped)
    spacing = np.asarray(atlas.spacing, dtype=np.float64)
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.8))
    shown_organs: set[int] = set()
    for ax, fixed in zip(axes, range(3)):
        shown = [a for a in range(3) if a != fixed]  # the plane's (row axis, column axis) before transposing
        plane = np.take(volume, index[0, fixed], axis=fixed)  # (n_a, n_b) for the two remaining axes
        shown_organs.update(int(o) for o in np.unique(plane) if o >= 0)
        # show with the second remaining axis vertical (z up where z is shown)
        ax.imshow(_label_image(plane.T, colours), origin="lower", interpolation="nearest",
                  aspect=spacing[shown[1]] / spacing[shown[0]])
        for k, (p, name) in enumerate(zip(index, labels)):
            ax.plot(p[shown[0]], p[shown[1]], marker="*" if k == 0 else "o", markersize=16 if k == 0 else 9,
                    markeredgecolor="white", color=POINT_COLOURS[k % len(POINT_COLOURS)], linestyle="none",
                    label=name)
        ax.set_title(f"{AXES[fixed]} = {index[0, fixed]}")
        ax.set_xlabel(f"{AXES[shown[0]]} (voxel)")
        ax.set_ylabel(f"{AXES[shown[1]]} (voxel)")
    axes[0].legend(loc="upper right", fontsize=8)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=colours[o], label=atlas.organs[o]) for o in sorted(shown_organs)],
               loc="lower center", ncol=min(8, max(1, len(shown_organs))), fontsize=7, frameon=False)
    organs, dist = atlas.nearest_organs(points[:1], k=min(nearest, atlas.num_organs))
    near = ", ".join(f"{atlas.organs[o]} {d:.0f} mm" for o, d in zip(organs[0], dist[0]))
    heading = (title + "\n") if title else ""
    fig.suptitle(f"{heading}nearest organs: {near}", fontsize=10)
    return save_figure(fig, out_png, rect=(0, 0.1, 1, 0.93))


def atlas_html(atlas: Atlas, points: Mapping[str, np.ndarray], out_html: str | Path, *,
               per_organ: int = 1500, seed: int = 0, title: str = "modalbridge atlas") -> Path:
    """An interactive 3-D view: every organ as a cloud of up to ``per_organ`` of its voxels (legend entries can
    be toggled), and each named group of ``points`` (``{name: (P, 3) centred mm}``) as large markers.

    The file inlines plotly.js (≈ 4.7 MB), so it opens in any browser with no network."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(seed)
    colours = organ_colours(atlas.num_organs)
    traces = []
    for o, name in enumerate(atlas.organs):
        pts = atlas.points_mm(o)
        if len(pts) > per_organ:
            pts = pts[rng.choice(len(pts), per_organ, replace=False)]
        r, g, b = (colours[o] * 255).astype(int)
        traces.append(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=name,
                                   marker={"size": 1.5, "color": f"rgb({r},{g},{b})", "opacity": 0.35},
                                   hoverinfo="name"))
    for k, (name, group) in enumerate(points.items()):
        group = np.atleast_2d(np.asarray(group, dtype=np.float64))
        traces.append(go.Scatter3d(x=group[:, 0], y=group[:, 1], z=group[:, 2], mode="markers", name=name,
                                   marker={"size": 7, "symbol": "diamond", "color": "red" if k == 0 else "black",
                                           "line": {"width": 1, "color": "white"}}))
    fig = go.Figure(traces)
    fig.update_layout(title=title, scene={"aspectmode": "data", "xaxis_title": "x (mm)", "yaxis_title": "y (mm)",
                                          "zaxis_title": "z (mm)"},
                      legend={"itemsizing": "constant"}, margin={"l": 0, "r": 0, "t": 40, "b": 0})
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(out, include_plotlyjs=True, full_html=True)
    return out
