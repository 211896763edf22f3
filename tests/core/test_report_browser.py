"""report.html in a real headless Chromium: the calibration and per-class figures load, and a missing
image is caught (so the check can fail). Skipped without Chromium unless CI is set (see tests/browser.py)."""

import pytest
import torch

from browser import chromium_or_skip, render_report
from modalbridge.core.report import per_class_change_plot, reliability_plot, write_report
from modalbridge.metrics import reliability_bins


def _figures(folder):
    """A reliability diagram of two synthetic models (one over-confident) and a per-class change plot
    over 30 classes; returns the two PNG paths."""
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 10, (2000,), generator=g)
    logits = torch.randn(2000, 10, generator=g) + 2.0 * torch.nn.functional.one_hot(targets, 10)
    panels = {"sharp": reliability_bins((3 * logits).softmax(1), targets),
              "smooth": reliability_bins(logits.softmax(1), targets)}
    rel = reliability_plot(panels, folder / "figures" / "reliability.png", title="Reliability (validation)")
    names = [f"class_{i:02d}_{'long name' if i % 4 == 0 else 'x'}" for i in range(30)]
    before = torch.rand(30, generator=g) * 100
    after = (before + torch.randn(30, generator=g) * 8).clamp(0, 100)
    change = per_class_change_plot(names, before, after, folder / "figures" / "per_class.png",
                                   labels=("model A", "model B"))
    return rel, change


def test_report_figures_load_in_chromium(tmp_path):
    chromium_or_skip()
    rel, change = _figures(tmp_path)
    html_path = write_report(tmp_path / "report.html", "Calibration report", [
        ("Reliability", f'<img src="{rel.relative_to(tmp_path)}">'),
        ("Per-class change", f'<img src="{change.relative_to(tmp_path)}">'),
    ])
    info = render_report(html_path, tmp_path / "screenshot.png")
    assert info["title"] == "Calibration report"
    assert info["images"] == 2 and info["images_loaded"] == 2 and info["broken"] == []
    shot = tmp_path / "screenshot.png"
    assert info["screenshot"] == shot and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert info["height"] > 800  # full page (two figures), not just the viewport


def test_missing_image_is_reported_broken(tmp_path):
    chromium_or_skip()
    html_path = write_report(tmp_path / "report.html", "Broken", [
        ("Missing", '<img src="figures/missing.png">'),
    ])
    info = render_report(html_path, tmp_path / "screenshot.png")
    assert info["images"] == 1 and info["images_loaded"] == 0
    assert info["broken"] == ["figures/missing.png"]


def test_per_class_change_plot_top_and_lengths(tmp_path):
    out = per_class_change_plot(list("abcde"), [10, 20, 30, 40, 50], [15, 20, 10, 41, 50], tmp_path / "c.png", top=2)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="same length"):
        per_class_change_plot(["a", "b"], [1.0], [2.0], tmp_path / "d.png")
