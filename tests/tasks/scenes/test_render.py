"""Scene drawings with the real Abstract Scenes clip-art PNGs (skipped where ../shared/data lacks them) and
with placeholders, and the figures built from them."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modalbridge.tasks.scenes import vocab
from modalbridge.tasks.scenes.render import (
    SamplePair,
    grid_of_samples,
    heatmap_figure,
    render_processed_scene,
    render_scene,
    side_by_side,
)

PNGS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "abstract_scenes_cliparts" / "Pngs"
needs_pngs = pytest.mark.skipif(not (PNGS / "background.png").exists(),
                                reason="real clip-art PNGs not available")


def _pixels(image):
    return np.asarray(image, dtype=np.int16)


def _changed(a, b, box):
    x0, y0, x1, y1 = box
    return np.abs(_pixels(a)[y0:y1, x0:x1] - _pixels(b)[y0:y1, x0:x1]).sum(-1) > 0


@needs_pngs
def test_real_cliparts_are_pasted_centred_on_the_background():
    empty = render_scene([], np.zeros((0, 2)), png_dir=PNGS)
    assert empty.size == (500, 400) and empty.mode == "RGB"
    background = Image.open(PNGS / "background.png").convert("RGB")
    assert _pixels(empty)[10, 10].tolist() == _pixels(background)[10, 10].tolist()
    scene = render_scene(["hb0_0s.png", vocab.clipart_id("s_3s.png")], [(150, 280), (420, 70)], [0, 0],
                         png_dir=PNGS)
    assert scene.size == (500, 400)
    assert _changed(scene, empty, (130, 260, 170, 300)).mean() > 0.3  # around Mike's centre
    assert _changed(scene, empty, (400, 50, 440, 90)).all()  # the sun's disc
    assert not _changed(scene, empty, (250, 0, 330, 60)).any()  # nothing pasted there


@needs_pngs
def test_flip_mirrors_the_clipart():
    width = Image.open(PNGS / "a_2s.png").width
    left = 250 - width // 2
    plain = render_scene(["a_2s.png"], [(250, 200)], [0], png_dir=PNGS, background=False)
    flipped = render_scene(["a_2s.png"], [(250, 200)], [1], png_dir=PNGS, background=False)
    crop = (slice(140, 260), slice(left, left + width))
    a, b = _pixels(plain)[crop], _pixels(flipped)[crop]
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, b[:, ::-1])


@needs_pngs
def test_off_canvas_positions_and_a_missing_file_do_not_fail(tmp_path):
    pngs = tmp_path / "Pngs"
    pngs.mkdir()
    shutil.copy(PNGS / "background.png", pngs)
    shutil.copy(PNGS / "hb1_0s.png", pngs)
    image = render_scene(["hb1_0s.png", "t_4s.png"], [(-30, 420), (250, 200)], [1, 0], png_dir=pngs)
    empty = render_scene([], [], png_dir=pngs)
    assert image.size == (500, 400)
    assert _changed(image, empty, (0, 300, 20, 400)).any()  # Jenny's visible part
    assert _changed(image, empty, (230, 180, 270, 220)).any()  # the ball's placeholder


def test_placeholders_without_pngs_from_names_ids_and_tensors():
    empty = render_scene([], [], png_dir=None)
    assert empty.size == (500, 400)
    assert _pixels(empty)[50, 250].tolist() != _pixels(empty)[350, 250].tolist()  # sky above grass
    scene = render_scene(torch.tensor([vocab.clipart_id("hb0_14s.png"), 0]), torch.tensor([[250.0, 250.0],
                                                                                            [0.0, 0.0]]),
                         torch.tensor([1, 0]))
    assert _changed(scene, empty, (220, 200, 280, 300)).mean() > 0.9
    assert not _changed(scene, empty, (0, 0, 30, 30)).any()  # the padding slot draws nothing
    white = render_scene(["sun"], [(100, 100)], background=False)
    assert _pixels(white)[390, 490].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="positions"):
        render_scene(["a_0s.png"], [(1, 2), (3, 4)])


def test_render_processed_scene_uses_elements_or_a_prediction():
    scene = {"elements": [{"visual_name": "a_2s.png", "x": 100, "y": 300, "z": 0, "flip": 1}]}
    own = render_processed_scene(scene)
    moved = render_processed_scene(scene, xy_px=[(400, 300)], flips=[0])
    assert _changed(own, moved, (80, 280, 120, 320)).any()


def test_figures_are_written(tmp_path):
    gt = render_scene(["hb0_0s.png", "s_3s.png"], [(150, 280), (420, 70)])
    pred = render_scene(["hb0_0s.png", "s_3s.png"], [(300, 280), (100, 70)], [1, 0])
    sentences = ["mike is on the left.", "the sun is in the sky."]
    path = side_by_side(gt, pred, sentences, tmp_path / "figs" / "pair.png", title="scene 7")
    assert path.exists() and Image.open(path).size[0] > 400
    grid = torch.zeros(21, 26)
    grid[14, 7] = 1.0
    heat = heatmap_figure(grid, gt, tmp_path / "heat.png", title="Mike", marker_xy=(150, 280))
    assert heat.exists()
    assert heatmap_figure(np.full((20, 25), 1 / 500), gt, tmp_path / "flat.png").exists()
    with pytest.raises(ValueError, match="prob_grid"):
        heatmap_figure(np.zeros((26, 21)), gt, tmp_path / "bad.png")
    many = grid_of_samples([SamplePair(gt, pred, sentences, "scene 1"), (pred, gt, ["mike is sad."])],
                           tmp_path / "grid.png", title="samples")
    assert many.exists() and Image.open(many).size[1] > Image.open(path).size[1]
