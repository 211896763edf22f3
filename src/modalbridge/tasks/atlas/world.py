"""The embedded worlds of the atlas task: a synthetic male torso in the SIO layout with a templated BioASQ corpus
(``modalbridge world atlas``, ``world://atlas/processed``), and a real brain atlas from nilearn's wheel with a
templated corpus (``world://atlas_brain/processed``).

**Torso** (:func:`torso_world`; raw files by :func:`write_torso`). ``<worlds>/atlas-<seed>/`` holds

* ``innerorgans/labels/slice_<k>.tif`` — :data:`TORSO_SHAPE` = (96, 161, 224) uint8 label volume at 1 mm
  (centre (48, 80.5, 112): a half-integer y like the real SIO's), one (96 rows × 161 columns) TIFF per z,
  written so that the SIO reader (natural sort, REVERSE, stack, transpose (1, 2, 0)) gives ``labels[x, y, z]``
  back: file ``k`` (k = 1 … 224) holds z = 224 − k, i.e. slices are numbered from the head down like the
  Visible Human's; ``slice_10`` sorts before ``slice_9`` lexically;
* ``innerorgans/objectlist.txt`` — 17 header lines, then ``"<name>" <label> [<label> …]`` per object;
* ``bioasq/part_<i>.ndjson`` — :data:`TORSO_ARTICLES` BioASQ articles (``pmid, title, journal, year,
  abstractText, meshMajor``), 300 per file;
* ``world.json`` — axes, objects, sub-regions and what the corpus holds; ``processed/`` — the same files after
  :func:`~.prepare.prepare_atlas` (cap 100000: every article with an atlas organ survives the caps).

*Axes* (this world's choice; the real SIO's signs are unchecked): x = anterior (0) → posterior, y = the
patient's right (0) → left, z = feet (0) → head. *Objects* carry real SIO names (``create_organ_dicts.py``):
93 objects (94 label values) of which the SIO glossary (:mod:`.glossary`) keeps 24 organs — lung (``"left
lung"``: two labels, upper and lower half; ``"right lung"`` dropped), bronchi, trachea (+ ``trachea lumen``),
larynx, esophagus, diaphragm (a 3-mm dome), liver, gallbladder, stomach (``fundus of stomach``, ``cardia``,
``body of stomach``, ``greater curvature``, ``lesser curvature`` and ``stomach`` = the antrum), duodenum
(``duodenum (retroperitoneal part)``: a C-loop round the head of the pancreas that runs into the small
intestine), small intestine, caecum, colon (six segments along :data:`COLON_LINE`: a 1-voxel-thick hollow tube of
radius 11.5 mm, lumen emptied — its centre line is > 10 mm from the wall), rectum, kidney (``left kidney`` +
``left renal medulla``; the right ones dropped), urinary bladder, spleen, atrium, ventricle (left cavities;
the right ones dropped), myocardium, pericardium (a 2-mm shell round the heart), prostate, seminal gland — and
drops vertebrae T1–L5, intervertebral discs, sacrum, sternum, ribs, psoas, aorta parts and the inferior vena
cava. Organs are ellipsoids, tubes and shells placed plausibly, the volume's centre (the Center baseline) in a
gap over 1 cm from every organ; the seed jitters centres by ≤ 1.5 mm and sizes by ≤ 4 % (the colon stays).

*Corpus* (fixed templates, seeded choices; English medical phrasing; ≈ 29 words per abstract). An article is
about 1–3 organs (seed 0: 66 % one, 27 % two, 4.5 % three, 3 % none of the atlas'; organ frequencies skewed
like PubMed's: liver and lung ≈ 10 % of the articles each, the seminal gland 1.4 %), has a title, 2–5
sentences and MeSH headings: the organs' (``Liver``, ``Lung``, ``Kidney``, ``Colon, Sigmoid``, ``Heart
Ventricles``, ``Cecum``, ``Jejunum`` …; :data:`TORSO_TOPICS`) among non-organ ones (``Humans``, ``Liver
Neoplasms``, ``Tomography, X-Ray Computed`` …). What it holds, and why:

* *multi-organ articles*: the second organ is a neighbour half the time and otherwise mostly from another body
  zone (metastasis, systemic disease: liver + lung, kidney + myocardium) — the MSE regressor's target mean lies
  between them, outside both, where SOD's soft minimum stays on an organ (SOD beats MSE on IOR and NVD); shells
  and curved organs (pericardium, diaphragm, duodenum, colon) do the same to single-organ articles;
* *sub-region phrases* (20 % of the articles) tied to parts of an organ (:data:`SUBREGIONS`: upper lobe / apex
  vs base of the lung along z, head vs tail of the pancreas along y, fundus vs antrum of the stomach, the
  colon's segments, upper vs lower pole of the kidney, jejunum vs ileum, right vs left lobe of the liver),
  each with its own neighbours (``PART_NEIGHBOURS``: the base of the lung with the diaphragm, the pancreatic
  tail with the spleen …), named in the text and often indexed too (40 %) — so a regressor can place a text in the right part of its organ (the within-organ
  experiment), the classifier's random voxel cannot;
* *regional articles* (17 %) naming a region, not an organ ("hepatobiliary", "pancreaticoduodenal",
  "colorectal", "cardiac", "pelvic" …; :data:`TORSO_REGIONS`), indexed with ONE organ of that region at
  random: the classifier's argmax is then often the neighbour, a random voxel of the wrong organ, while SOD's
  point lands between the region's organs, inside or just outside either (SOD beats the classifier on NVD-O);
* *neighbours* ("the adjacent spleen"; :data:`NEIGHBOUR_P` of the organ articles that have one) and
  *functional-group words* ("gastrointestinal tract", "urinary tract"; :data:`GROUP_P`) — what a model has to go
  on for a held-out organ (v2 raised them from 45 % / 35 %: with those, held-out kidney and pancreas landed only
  0.2 cm closer than the centre baseline on average, within noise; with v2, 0.5 cm [+0.1, +0.8]); *organs the atlas lacks* (ovary, uterus,
  adrenal gland, appendix, thyroid) placed "beside" a present one (3 %; the thesis's ovary example: they should
  land beside the urinary bladder);
* the reference's quirks: capitalised names at sentence starts and adjective-only mentions (missed by the
  case-sensitive occurrence match), decoys (4 %: "delivered", "colonies", "tachycardia" — and "cardiac"
  everywhere — for the stomach's cardia, "gallbladder" containing "bladder"), animal studies (``Animals``,
  ``Rats``, ``Mice`` …, 6.5 %, dropped), two articles over 512 WordPiece ids (dropped), articles without
  ``abstractText`` (4) or ``meshMajor`` (3; skipped), one truncated JSON line (skipped).

*Measured on v1* (world seed 0: 2,697 records, one training seed; quick scripts, not the Lightning pipeline;
v2's numbers through the library's pipeline are in docs/atlas.md): organ
centres hit every test record, the mean of the target organs' points (the MSE optimum) misses ≈ 40 % of the
multi-organ records. The random-init tiny BERT (``TINY_BERT``, 2 × 64, max 128 tokens) trained 8 epochs with
AdamW (lr 1e-3, batch 32, clip 2.0; ≈ 40 s each on one CPU thread), test split (405), IOR % / NVD cm / NVD-O cm:
SOD (γp 0.1, γo 1, N 100) 92.3 / 0.28 / 0.61, classifier (random voxel of the argmax organ) 95.8 / 0.14 / 1.77,
MSE 80.7 / 0.59 / 0.98, Center 0 / 3.7 / 3.7 — Table 4.1's orderings of SOD ≫ MSE (IOR, NVD) and SOD ≪
classifier (NVD-O); SOD and the classifier stay within a few IOR points of each other (an earlier corpus
variant had SOD ahead, 94.8 vs 91.0). SOD's points follow most sub-region phrases (head vs tail of the
pancreas, ascending vs descending colon, jejunum vs ileum, fundus vs antrum, upper lobe vs base; not the liver's
lobes). Held out (a bag-of-words MLP probe trained without the organ's single-organ articles), 8 of 10 probed
organs landed closer than the Center baseline (not the liver and the diaphragm, 1.2–1.3 cm from the centre);
the centre lies inside the convex hulls of the respiratory and digestive groups, so the Center baseline's IGR is
high on this compact torso.

**Brain** (:func:`brain_world`; :func:`write_brain`): real data from the installed ``nilearn`` wheel
(``nilearn/datasets/data``, read as files, nothing downloaded) — the MNI152 2009a grey-matter probability map
(197 × 233 × 189 at 1 mm) and the 300 ROIs of Seitzman et al. 2018 (MNI centres, radii 4–5 mm, network and
anatomical labels). ``atlas/brain_regions.nii.gz`` labels every grey-matter voxel (probability ≥ 0.25) within
an ROI's radius with that ROI's number (the nearest centre wins), and ``atlas/brain_regions.tsv`` maps the ROI
numbers to 14 regions (:data:`BRAIN_REGIONS`): the subcortical ROIs by their anatomical label (hippocampus,
amygdala, basal ganglia, thalamus, cerebellum), the cortical ones by their network (visual, sensorimotor,
auditory cortex; default mode, frontoparietal, cingulo-opercular, dorsal/ventral attention, salience
network); unassigned and small networks are left out. Real: the volume, the ROI coordinates, radii and
labels. Templated: the corpus (:data:`BRAIN_ARTICLES` articles about these regions: functions, disorders,
hemispheres as sub-region words (:data:`BRAIN_SUBREGIONS`), multi-region articles, "limbic", "deep grey
matter", "attentional" and "cognitive control" regional articles, animal studies),
and MeSH headings such as ``Frontoparietal Network`` that MeSH does not have.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from modalbridge.core.paths import worlds_dir
from modalbridge.core.worlds import build_world

__all__ = ["BRAIN_ARTICLES", "BRAIN_REGIONS", "BRAIN_SUBREGIONS", "COLON_LINE", "COLON_RADIUS", "SUBREGIONS",
           "TORSO_ARTICLES", "TORSO_REGIONS", "TORSO_SHAPE", "TORSO_TOPICS", "VERSION", "brain_volume", "brain_world",
           "nilearn_data", "torso_volume", "torso_world", "write_brain", "write_torso"]

Vec = tuple[float, float, float]

VERSION = 2  # v2: neighbours and functional-group words in more articles (held-out organs)
#: chance that an article names a neighbour of its organ / a word of the organ's functional group: what a model
#: has to go on for an organ it never saw as a target (the held-out protocol)
NEIGHBOUR_P, GROUP_P = 0.7, 0.6
TORSO_SHAPE = (96, 161, 224)  # y odd: the centre's y is a half-integer, as in the real SIO (573 columns)
TORSO_ARTICLES = 3000
BRAIN_ARTICLES = 1500
ARTICLES_PER_FILE = 300
HEADER_LINES = 17
COLON_RADIUS = 11.5  # the hollow colon: wall = (R - 1, R] mm from its centre line, lumen emptied
#: the colon's centre line (voxel coordinates, not jittered) and the SIO segment each of its pieces belongs to
COLON_LINE: tuple[Vec, ...] = ((30, 24, 42), (28, 24, 74), (22, 34, 80), (18, 80, 70), (22, 126, 82), (28, 136, 84),
                               (30, 136, 44), (40, 120, 30), (52, 96, 26), (60, 84, 30))
COLON_SEGMENTS = ("ascending colon", "right colic flexure", "transverse colon", "left colic flexure",
                  "descending colon", "sigmoid colon")
COLON_SEGMENT_OF = (0, 1, 2, 2, 3, 4, 5, 5, 5)
#: cap passed to prepare_atlas: far above any organ's count, so the caps keep every article
WORLD_CAP = 100000


# ============================================================================================== geometry
def _box(shape: Sequence[int], lo, hi) -> tuple[slice, ...] | None:
    """Index box covering [lo, hi] (voxel coordinates) clipped to the volume; None when empty."""
    lo = np.maximum(np.floor(np.asarray(lo, float)).astype(int), 0)
    hi = np.minimum(np.ceil(np.asarray(hi, float)).astype(int) + 1, shape)
    if (hi <= lo).any():
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _grid(box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable voxel coordinates (x (bx,1,1), y (1,by,1), z (1,1,bz)) of a box."""
    return tuple(np.arange(s.start, s.stop, dtype=np.float64).reshape([-1 if i == a else 1 for i in range(3)])
                 for a, s in enumerate(box))


def ellipsoid(shape: Sequence[int], centre: Vec, semi: Vec) -> tuple[tuple[slice, ...] | None, np.ndarray]:
    """``(box, mask)``: voxels with Σ((v − centre)/semi)² ≤ 1 inside ``box``."""
    c, s = np.asarray(centre, float), np.asarray(semi, float)
    box = _box(shape, c - s, c + s)
    if box is None:
        return None, np.zeros((0, 0, 0), bool)
    x, y, z = _grid(box)
    return box, ((x - c[0]) / s[0]) ** 2 + ((y - c[1]) / s[1]) ** 2 + ((z - c[2]) / s[2]) ** 2 <= 1.0


def polyline(shape: Sequence[int], points: Sequence[Vec], margin: float
             ) -> tuple[tuple[slice, ...] | None, np.ndarray, np.ndarray]:
    """``(box, dist, segment)``: distance (mm) of every voxel of the box (the polyline's bounds ± ``margin``) to
    the polyline through ``points`` ``(S+1, 3)``, and the index of the nearest segment."""
    p = np.asarray(points, float)
    box = _box(shape, p.min(0) - margin, p.max(0) + margin)
    if box is None:
        return None, np.zeros((0, 0, 0)), np.zeros((0, 0, 0), int)
    x, y, z = _grid(box)
    best = np.full(np.broadcast_shapes(x.shape, y.shape, z.shape), np.inf)
    segment = np.zeros(best.shape, int)
    for i, (a, b) in enumerate(zip(p[:-1], p[1:])):  # a handful of segments per tube
        d = b - a
        t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / max(float(d @ d), 1e-12), 0, 1)
        dist = np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)
        closer = dist < best
        best = np.where(closer, dist, best)
        segment = np.where(closer, i, segment)
    return box, best, segment


class _Canvas:
    """A label volume being painted (later paint wins) and its object list ``{name: [label values]}`` in the
    order objects were first painted."""

    def __init__(self, shape: Sequence[int], rng: np.random.Generator):
        self.shape = tuple(shape)
        self.vol = np.zeros(self.shape, np.uint8)
        self.objects: dict[str, list[int]] = {}
        self.rng = rng

    def label(self, name: str, part: int = 0) -> int:
        """The label value of ``name`` (its ``part``-th value for an object owning several)."""
        values = self.objects.setdefault(name, [])
        while len(values) <= part:
            values.append(sum(len(v) for v in self.objects.values()) + 1)
        return values[part]

    def jitter(self, centre: Vec, semi: Vec | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        c = np.asarray(centre, float) + self.rng.uniform(-1.5, 1.5, 3)
        s = None if semi is None else np.asarray(semi, float) * self.rng.uniform(0.96, 1.04, 3)
        return c, s

    def paint(self, name: str, box, mask: np.ndarray, part: int = 0) -> None:
        if box is not None and mask.any():
            self.vol[box][np.broadcast_to(mask, self.vol[box].shape)] = self.label(name, part)

    def blob(self, name: str, centre: Vec, semi: Vec, keep: Callable | None = None, part: int = 0) -> None:
        """A (jittered) ellipsoid; ``keep(x, y, z) -> bool mask`` restricts it (e.g. below the diaphragm)."""
        c, s = self.jitter(centre, semi)
        box, mask = ellipsoid(self.shape, c, s)
        if box is not None and keep is not None:
            mask = mask & keep(*_grid(box))
        self.paint(name, box, mask, part)

    def tube(self, names: Sequence[str], points: Sequence[Vec], radius: float, inner: float | None = None,
             segment_names: Sequence[int] | None = None, jitter: bool = True) -> None:
        """A tube along a polyline (points jittered by ≤ 1 mm unless ``jitter`` is False): solid, or a wall
        ``inner < d ≤ radius`` whose lumen is emptied (``inner``); segment i is labelled
        ``names[segment_names[i]]``."""
        pts = np.asarray(points, float) + self.rng.uniform(-1.0, 1.0, (len(points), 3)) * jitter
        box, dist, segment = polyline(self.shape, pts, radius + 1)
        if box is None:
            return
        name_of = np.asarray(segment_names if segment_names is not None else [0] * (len(points) - 1))[segment]
        region = self.vol[box]
        if inner is not None:
            region[dist <= inner] = 0
        wall = (dist <= radius) & (dist > (inner if inner is not None else -1.0))
        for i, name in enumerate(names):
            region[wall & (name_of == i)] = self.label(name)


def _dome(x, y) -> np.ndarray:
    """z (mm) of the diaphragm's dome over (x, y): highest in the middle, higher on the right (liver) side."""
    r2 = ((x - 48.0) / 46.0) ** 2 + ((y - 80.0) / 78.0) ** 2
    return 110.0 + 16.0 * (1.0 - r2) + 5.0 * (80.0 - y) / 78.0


def _below_dome(x, y, z):
    return z < _dome(x, y) - 1.5


def _above_dome(x, y, z):
    return z > _dome(x, y) + 1.5


def _spine(c: _Canvas) -> None:
    """Vertebral bodies T1–L5 (8 mm) with 2-mm discs between them, the sacrum below."""
    names = [f"thoracic vertebra T{i}" for i in range(1, 13)] + [f"lumbar vertebra L{i}" for i in range(1, 6)]
    top = 205.0
    for i, name in enumerate(names):
        z1 = top - 10.0 * i
        box, mask = ellipsoid(c.shape, (80.0, 80.0, z1 - 4.0), (8.0, 9.0, 4.0))
        c.paint(name, box, mask)
        if i + 1 < len(names):
            disc = f"intervertebral disc {name.split()[-1]}/{names[i + 1].split()[-1]}"
            box, mask = ellipsoid(c.shape, (80.0, 80.0, z1 - 9.0), (7.0, 8.0, 1.0))
            c.paint(disc, box, mask)
    c.blob("sacrum", (80.0, 80.0, 22.0), (8.0, 14.0, 12.0))
    c.blob("sternum", (7.0, 80.0, 160.0), (3.0, 6.0, 30.0))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for k, z in zip((4, 5, 6, 7, 8), (190.0, 175.0, 160.0, 145.0, 130.0)):
            box = _box(c.shape, (0, 0, z - 1.5), (c.shape[0] - 1, c.shape[1] - 1, z + 1.5))
            x, y, _ = _grid(box)
            r = np.sqrt(((x - 48.0) / 44.0) ** 2 + ((y - 80.0) / 74.0) ** 2)
            mask = (np.abs(r - 0.97) < 0.035) & (sign * (y - 80.0) > 8.0) & (x > 20.0)
            c.paint(f"{side} rib {k}", box, np.broadcast_to(mask, c.vol[box].shape))


def _ellipsoid_in(box: tuple[slice, ...], centre, semi) -> np.ndarray:
    """Ellipsoid mask over a given box."""
    x, y, z = _grid(box)
    c, s = np.asarray(centre, float), np.asarray(semi, float)
    return ((x - c[0]) / s[0]) ** 2 + ((y - c[1]) / s[1]) ** 2 + ((z - c[2]) / s[2]) ** 2 <= 1.0


def _heart(c: _Canvas) -> None:
    """Pericardium (a 2-mm shell), myocardium (the rest) and four chamber cavities inside it, on the dome."""
    centre, semi = c.jitter((34.0, 88.0, 144.0), (20.0, 22.0, 19.0))
    box = _box(c.shape, centre - semi, centre + semi)
    keep = _ellipsoid_in(box, centre, semi) & _above_dome(*_grid(box))
    inner = _ellipsoid_in(box, centre, semi - 2.0)
    c.paint("pericardium", box, keep & ~inner)
    c.paint("myocardium", box, keep & inner)
    chambers = (("right ventricle", (22.0, 78.0, 138.0), (6.0, 9.0, 8.0)),
                ("left ventricle", (30.0, 98.0, 136.0), (8.0, 8.0, 9.0)),
                ("right atrium", (38.0, 74.0, 151.0), (7.0, 6.0, 7.0)),
                ("left atrium", (44.0, 94.0, 152.0), (6.0, 8.0, 6.0)))
    for name, ch_centre, ch_semi in chambers:
        cc, cs = c.jitter(ch_centre, ch_semi)
        c.paint(name, box, keep & inner & _ellipsoid_in(box, cc, cs))


def torso_volume(seed: int = 0) -> tuple[np.ndarray, dict[str, list[int]]]:
    """The torso's ``(96, 161, 224)`` uint8 label volume ``labels[x, y, z]`` and its objects ``{SIO name:
    [label values]}`` (painting order = label order; later objects overwrite earlier ones)."""
    c = _Canvas(TORSO_SHAPE, np.random.default_rng([seed, 1]))
    # thorax: lungs (the left lung owns two labels: upper and lower half), diaphragm, then the bones and muscles
    # behind and around them, heart, airways, vessels
    lung_c, lung_s = c.jitter((50.0, 116.0, 160.0), (30.0, 28.0, 38.0))
    split = lung_c[2] + 2.0
    box, mask = ellipsoid(c.shape, lung_c, lung_s)
    x, y, z = _grid(box)
    mask = mask & _above_dome(x, y, z)
    c.paint("left lung", box, mask & (z >= split), part=0)
    c.paint("left lung", box, mask & (z < split), part=1)
    c.blob("right lung", (50.0, 44.0, 160.0), (30.0, 28.0, 38.0), keep=_above_dome)
    box = _box(c.shape, (4, 6, 100), (70, 154, 135))
    x, y, z = _grid(box)
    body = ((x - 48.0) / 44.0) ** 2 + ((y - 80.0) / 74.0) ** 2 <= 1.0
    c.paint("diaphragm", box, body & (np.abs(z - _dome(x, y)) <= 1.0))
    _spine(c)
    for side, y in (("left", 80.0 + 36.0), ("right", 80.0 - 36.0)):
        c.blob(f"{side} psoas", (74.0, 80.0 + 0.45 * (y - 80.0), 48.0), (5.0, 5.0, 28.0))
    _heart(c)
    c.tube(["ascending aorta", "arch of aorta", "descending aorta", "abdominal aorta"],
           [(30, 86, 160), (30, 86, 172), (50, 94, 180), (64, 94, 168), (64, 92, 110), (62, 86, 40)], 4.5,
           segment_names=[0, 1, 1, 2, 3])
    c.tube(["inferior vena cava"], [(58, 62, 40), (58, 62, 118), (44, 72, 132)], 4.5)
    c.tube(["trachea"], [(40, 80, 166), (40, 80, 207)], 6.0)
    c.tube(["trachea lumen"], [(40, 80, 166), (40, 80, 207)], 3.5)
    c.tube(["bronchi"], [(46, 58, 150), (41, 80, 166), (46, 102, 150)], 3.5)
    c.blob("larynx", (36.0, 80.0, 215.0), (9.0, 10.0, 9.0))
    c.tube(["esophagus"], [(56, 80, 206), (56, 80, 140), (54, 90, 124), (48, 102, 117)], 4.0)
    # upper abdomen, under the dome
    c.blob("liver", (38.0, 40.0, 104.0), (27.0, 32.0, 20.0), keep=_below_dome)
    c.blob("gallbladder", (18.0, 56.0, 92.0), (6.0, 5.0, 8.0))
    c.blob("fundus of stomach", (46.0, 112.0, 116.0), (11.0, 11.0, 8.0), keep=_below_dome)
    c.blob("cardia", (46.0, 102.0, 113.0), (5.0, 5.0, 4.0), keep=_below_dome)
    body_c, body_s = c.jitter((34.0, 110.0, 100.0), (12.0, 12.0, 12.0))
    box, mask = ellipsoid(c.shape, body_c, body_s)
    _, y, _ = _grid(box)
    c.paint("body of stomach", box, mask & (y >= body_c[1] - 7.0) & (y <= body_c[1] + 7.0))
    c.paint("greater curvature", box, mask & (y > body_c[1] + 7.0))
    c.paint("lesser curvature", box, mask & (y < body_c[1] - 7.0))
    c.blob("stomach", (24.0, 90.0, 90.0), (8.0, 13.0, 7.0))  # the antrum and pylorus
    c.blob("spleen", (66.0, 136.0, 106.0), (10.0, 8.0, 12.0))
    c.blob("pancreas", (47.0, 70.0, 87.0), (7.0, 7.0, 7.0))  # the head
    c.tube(["pancreas"], [(48, 72, 88), (52, 94, 94), (58, 126, 100)], 5.0)
    c.tube(["duodenum (retroperitoneal part)"],
           [(22, 76, 90), (36, 61, 91), (44, 60, 80), (46, 72, 72), (42, 92, 70), (36, 92, 60)], 4.5)
    for side, y, z in (("left", 118.0, 86.0), ("right", 42.0, 84.0)):
        k_c, k_s = c.jitter((70.0, y, z), (9.0, 8.0, 14.0))
        box, mask = ellipsoid(c.shape, k_c, k_s)
        c.paint(f"{side} kidney", box, mask)
        box, mask = ellipsoid(c.shape, k_c, k_s * np.array([0.45, 0.45, 0.55]))
        c.paint(f"{side} renal medulla", box, mask)
    # lower abdomen and pelvis
    c.blob("small intestine", (34.0, 80.0, 50.0), (18.0, 36.0, 16.0))
    c.tube(COLON_SEGMENTS, COLON_LINE, COLON_RADIUS, inner=COLON_RADIUS - 1.0,
           segment_names=COLON_SEGMENT_OF, jitter=False)
    c.blob("caecum", (30.0, 26.0, 34.0), (11.0, 11.0, 8.0))
    c.tube(["rectum"], [(62, 80, 30), (64, 80, 4)], 7.0)
    c.blob("urinary bladder", (20.0, 80.0, 24.0), (12.0, 15.0, 11.0))
    c.blob("prostate", (22.0, 80.0, 7.0), (7.0, 8.0, 5.0))
    c.blob("seminal gland", (38.0, 80.0, 20.0), (3.5, 12.0, 3.5))
    return c.vol, c.objects


def _write_sio(folder: Path, vol: np.ndarray, objects: dict[str, list[int]]) -> None:
    """``folder/innerorgans/``: ``labels/slice_<k>.tif`` (file k = z index Z − k) and ``objectlist.txt``."""
    import tifffile

    labels = folder / "innerorgans" / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    depth = vol.shape[2]
    for k in range(1, depth + 1):
        tifffile.imwrite(labels / f"slice_{k}.tif", np.ascontiguousarray(vol[:, :, depth - k]))
    header = ["VOXEL-MAN segmented inner organs - object list", "SYNTHETIC torso written by modalbridge "
              "(tasks/atlas/world.py); not the Visible Human data", f"volume: {vol.shape[0]} rows x "
              f"{vol.shape[1]} columns x {depth} slices, 1 mm, {vol.dtype}", "slices: labels/slice_<k>.tif, "
              "numbered from the head down", "", "format of the object lines below:",
              '  "<object name>" <label value> [<label value> ...]', "", "axes (this world): rows = anterior -> "
              "posterior, columns = right -> left", "", f"objects: {len(objects)}",
              f"labels: {sum(map(len, objects.values()))}", "", "----", "name labels", "----"]
    header += [""] * (HEADER_LINES - len(header))
    lines = header + [f'"{name}" ' + " ".join(map(str, values)) for name, values in objects.items()]
    (folder / "innerorgans" / "objectlist.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ================================================================================================ corpus
@dataclass(frozen=True)
class Topic:
    """How texts speak about one atlas organ (or brain region)."""

    organ: str                    # the atlas organ after the glossary
    mesh: tuple[str, ...]         # MeSH headings naming it (lower-cased, one of its aliases)
    names: tuple[str, ...]        # how texts name it
    adjective: str                # "hepatic": an adjective-only mention
    conditions: tuple[str, ...]
    parts: tuple[str, ...] = ()   # sub-region phrases (keys of the world's sub-region table)
    neighbours: tuple[str, ...] = ()
    group: str = ""               # functional-group words
    weight: float = 1.0           # relative frequency
    disease_mesh: tuple[str, ...] = ()
    zone: int = 0                 # coarse body zone: multi-organ articles often pair organs of different zones


TORSO_TOPICS: tuple[Topic, ...] = (
    Topic("liver", ("Liver",), ("liver",), "hepatic",
          ("hepatocellular carcinoma", "cirrhosis", "steatosis", "hepatitis", "fibrosis", "metastases"),
          ("right lobe of the liver", "left lobe of the liver"), ("gallbladder", "diaphragm", "kidney"),
          "digestive gland", 10, ("Liver Neoplasms", "Carcinoma, Hepatocellular", "Liver Cirrhosis")),
    Topic("lung", ("Lung",), ("lung", "lungs"), "pulmonary",
          ("adenocarcinoma", "fibrosis", "emphysema", "pneumonia", "nodules", "tuberculosis"),
          ("upper lobe of the lung", "apex of the lung", "base of the lung", "lower lobe of the lung"),
          ("diaphragm", "bronchi", "pericardium"), "respiratory tract", 10,
          ("Lung Neoplasms", "Pulmonary Fibrosis", "Pneumonia")),
    Topic("kidney", ("Kidney",), ("kidney", "kidneys"), "renal",
          ("carcinoma", "failure", "cysts", "stones", "glomerulonephritis", "injury"),
          ("upper pole of the kidney", "lower pole of the kidney"), ("spleen", "pancreas"), "urinary tract", 7,
          ("Kidney Neoplasms", "Renal Insufficiency", "Kidney Calculi")),
    Topic("colon", ("Colon",), ("colon",), "colonic",
          ("adenocarcinoma", "polyps", "diverticulitis", "colitis", "obstruction"),
          ("sigmoid colon", "ascending colon", "transverse colon", "descending colon"),
          ("small intestine", "caecum"), "gastrointestinal tract", 7, ("Colonic Neoplasms", "Colonic Polyps")),
    Topic("stomach", ("Stomach",), ("stomach",), "gastric",
          ("adenocarcinoma", "ulcers", "gastritis", "lymphoma", "emptying disorders"),
          ("gastric fundus", "gastric antrum"), ("spleen", "esophagus", "pancreas"), "gastrointestinal tract", 6,
          ("Stomach Neoplasms", "Stomach Ulcer", "Gastritis")),
    Topic("pancreas", ("Pancreas",), ("pancreas",), "pancreatic",
          ("adenocarcinoma", "pancreatitis", "cysts", "neuroendocrine tumours", "insufficiency"),
          ("head of the pancreas", "tail of the pancreas"), ("duodenum", "spleen"), "digestive gland", 6,
          ("Pancreatic Neoplasms", "Pancreatitis")),
    Topic("urinary bladder", ("Urinary Bladder",), ("urinary bladder", "bladder"), "vesical",
          ("urothelial carcinoma", "outlet obstruction", "overactivity", "stones"), (),
          ("prostate", "rectum"), "urinary tract", 5, ("Urinary Bladder Neoplasms", "Urinary Bladder, Overactive")),
    Topic("prostate", ("Prostate",), ("prostate", "prostate gland"), "prostatic",
          ("adenocarcinoma", "hyperplasia", "inflammation", "biopsy findings"), (),
          ("urinary bladder", "seminal gland", "rectum"), "male reproductive tract", 5,
          ("Prostatic Neoplasms", "Prostatic Hyperplasia")),
    Topic("myocardium", ("Myocardium",), ("myocardium", "heart muscle"), "myocardial",
          ("infarction", "fibrosis", "hypertrophy", "ischaemia", "inflammation"), (),
          ("pericardium", "lung"), "cardiovascular", 5, ("Myocardial Infarction", "Cardiomyopathies")),
    Topic("ventricle", ("Heart Ventricles",), ("left ventricle", "ventricle"), "ventricular",
          ("dysfunction", "hypertrophy", "thrombus", "dilatation", "remodelling"), (),
          ("atrium", "myocardium"), "cardiovascular", 5, ("Ventricular Dysfunction, Left", "Heart Failure")),
    Topic("rectum", ("Rectum",), ("rectum",), "rectal",
          ("adenocarcinoma", "prolapse", "bleeding", "fistula"), (), ("urinary bladder", "prostate", "colon"),
          "gastrointestinal tract", 4, ("Rectal Neoplasms",)),
    Topic("esophagus", ("Esophagus",), ("esophagus", "oesophagus"), "oesophageal",
          ("adenocarcinoma", "varices", "strictures", "reflux injury", "motility disorders"), (),
          ("trachea", "stomach"), "gastrointestinal tract", 4, ("Esophageal Neoplasms", "Barrett Esophagus")),
    Topic("small intestine", ("Ileum", "Jejunum"), ("small intestine", "small bowel"), "enteric",
          ("obstruction", "Crohn disease", "lymphoma", "bleeding", "malabsorption"),
          ("proximal jejunum", "terminal ileum"), ("colon", "duodenum"), "gastrointestinal tract", 4,
          ("Crohn Disease", "Intestinal Obstruction")),
    Topic("duodenum", ("Duodenum",), ("duodenum",), "duodenal",
          ("ulcers", "adenomas", "stenosis", "diverticula"), (), ("pancreas", "stomach", "gallbladder"),
          "gastrointestinal tract", 3, ("Duodenal Ulcer", "Duodenal Neoplasms")),
    Topic("gallbladder", ("Gallbladder",), ("gallbladder",), "biliary",
          ("stones", "cholecystitis", "carcinoma", "polyps"), (), ("liver", "duodenum"), "digestive gland", 3,
          ("Cholelithiasis", "Cholecystitis", "Gallbladder Neoplasms")),
    Topic("spleen", ("Spleen",), ("spleen",), "splenic",
          ("enlargement", "infarction", "rupture", "lymphoma"), (), ("stomach", "kidney", "pancreas"),
          "haematological", 3, ("Splenomegaly", "Splenic Rupture")),
    Topic("trachea", ("Trachea",), ("trachea",), "tracheal",
          ("stenosis", "intubation injury", "tumours", "malacia"), (), ("esophagus", "larynx", "bronchi"),
          "respiratory tract", 3, ("Tracheal Stenosis",)),
    Topic("bronchi", ("Bronchi",), ("bronchi", "bronchus"), "bronchial",
          ("asthma", "bronchiectasis", "obstruction", "carcinoid tumours"), (), ("lung", "trachea"),
          "respiratory tract", 3, ("Bronchiectasis", "Asthma")),
    Topic("larynx", ("Larynx",), ("larynx",), "laryngeal",
          ("carcinoma", "paralysis", "papillomatosis", "oedema"), (), ("trachea", "esophagus"),
          "respiratory tract", 3, ("Laryngeal Neoplasms", "Vocal Cord Paralysis")),
    Topic("atrium", ("Heart Atria",), ("left atrium", "atrium"), "atrial",
          ("fibrillation", "enlargement", "myxoma", "thrombus"), (), ("ventricle", "esophagus"), "cardiovascular",
          3, ("Atrial Fibrillation",)),
    Topic("pericardium", ("Pericardium",), ("pericardium",), "pericardial",
          ("effusion", "pericarditis", "constriction", "cysts"), (), ("myocardium", "lung", "diaphragm"),
          "cardiovascular", 2, ("Pericardial Effusion", "Pericarditis")),
    Topic("diaphragm", ("Diaphragm",), ("diaphragm",), "diaphragmatic",
          ("paralysis", "hernia", "eventration", "weakness"), (), ("liver", "lung", "spleen"), "respiratory tract",
          2, ("Hernia, Diaphragmatic",)),
    Topic("caecum", ("Cecum",), ("cecum", "caecum"), "caecal",
          ("volvulus", "adenocarcinoma", "typhlitis", "polyps"), (), ("small intestine", "colon"),
          "gastrointestinal tract", 2, ("Cecal Neoplasms",)),
    Topic("seminal gland", ("Seminal Vesicles",), ("seminal vesicles", "seminal gland"), "seminal",
          ("cysts", "invasion", "inflammation", "calculi"), (), ("prostate", "urinary bladder"),
          "male reproductive tract", 1.5, ("Genital Diseases, Male",)),
)

#: sub-region phrase → (atlas organ, axis, sign): where in the organ a text with that phrase belongs, as the
#: direction along an axis of ``labels[x, y, z]`` (torso: x anterior→posterior, y right→left, z feet→head)
SUBREGIONS: dict[str, tuple[str, int, int]] = {
    "upper lobe of the lung": ("lung", 2, 1), "apex of the lung": ("lung", 2, 1),
    "base of the lung": ("lung", 2, -1), "lower lobe of the lung": ("lung", 2, -1),
    "head of the pancreas": ("pancreas", 1, -1), "tail of the pancreas": ("pancreas", 1, 1),
    "gastric fundus": ("stomach", 2, 1), "gastric antrum": ("stomach", 2, -1),
    "ascending colon": ("colon", 1, -1), "descending colon": ("colon", 1, 1),
    "transverse colon": ("colon", 0, -1), "sigmoid colon": ("colon", 2, -1),
    "upper pole of the kidney": ("kidney", 2, 1), "lower pole of the kidney": ("kidney", 2, -1),
    "proximal jejunum": ("small intestine", 2, 1), "terminal ileum": ("small intestine", 2, -1),
    "right lobe of the liver": ("liver", 1, -1), "left lobe of the liver": ("liver", 1, 1),
}
#: MeSH headings that index a sub-region (the colon's segments, the small intestine's parts)
PART_MESH = {"sigmoid colon": "Colon, Sigmoid", "ascending colon": "Colon, Ascending",
             "transverse colon": "Colon, Transverse", "descending colon": "Colon, Descending",
             "proximal jejunum": "Jejunum", "terminal ileum": "Ileum"}

#: regional words → the organs an article about that region may be indexed with (one, at random)
TORSO_REGIONS: dict[str, tuple[str, ...]] = {
    "hepatobiliary": ("liver", "gallbladder"), "pancreaticoduodenal": ("pancreas", "duodenum"),
    "gastroduodenal": ("stomach", "duodenum"), "colorectal": ("colon", "rectum"),
    "cardiac": ("myocardium", "ventricle", "atrium", "pericardium"), "central airway": ("trachea", "bronchi"),
    "lower urinary tract": ("urinary bladder", "prostate"), "ileocaecal": ("small intestine", "caecum"),
    "upper aerodigestive": ("larynx", "esophagus"), "left upper quadrant": ("spleen", "stomach"),
    "pelvic": ("urinary bladder", "prostate", "seminal gland", "rectum"), "bronchopulmonary": ("bronchi", "lung"),
    "thoracoabdominal": ("diaphragm", "liver"), "mediastinal": ("esophagus", "trachea", "pericardium"),
    "splenorenal": ("spleen", "kidney"), "periampullary": ("duodenum", "pancreas", "gallbladder"),
}
#: organs the (male) atlas lacks, and the present organ a text places them beside
TORSO_ABSENT: dict[str, tuple[str, str]] = {
    "ovary": ("Ovary", "urinary bladder"), "uterus": ("Uterus", "urinary bladder"),
    "adrenal gland": ("Adrenal Glands", "kidney"), "appendix": ("Appendix", "caecum"),
    "thyroid gland": ("Thyroid Gland", "larynx"),
}
#: sub-region phrase → organs next to that part (named in its articles' neighbour sentences and chosen as their
#: second organ): what ties a sub-region's texts to its place in the organ
PART_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "upper lobe of the lung": ("trachea", "bronchi"), "apex of the lung": ("trachea", "larynx"),
    "base of the lung": ("diaphragm", "liver"), "lower lobe of the lung": ("diaphragm", "pericardium"),
    "head of the pancreas": ("duodenum", "gallbladder"), "tail of the pancreas": ("spleen", "kidney"),
    "gastric fundus": ("spleen", "diaphragm", "esophagus"), "gastric antrum": ("duodenum", "gallbladder"),
    "ascending colon": ("caecum", "small intestine"), "descending colon": ("spleen", "kidney"),
    "transverse colon": ("stomach", "gallbladder"), "sigmoid colon": ("rectum", "urinary bladder"),
    "upper pole of the kidney": ("spleen", "pancreas"), "lower pole of the kidney": ("small intestine",),
    "proximal jejunum": ("duodenum",), "terminal ileum": ("caecum", "colon"),
    "right lobe of the liver": ("diaphragm", "gallbladder"), "left lobe of the liver": ("stomach", "esophagus"),
}
#: coarse body zones (0 neck and thorax, 1 upper abdomen, 2 lower abdomen and pelvis): a multi-organ article's
#: second organ is often from another zone (metastasis, systemic disease), where the MSE regressor's mean of
#: the two falls between them, outside both
TORSO_ZONES = {**dict.fromkeys(("larynx", "trachea", "bronchi", "lung", "esophagus", "myocardium", "ventricle",
                                "atrium", "pericardium"), 0),
               **dict.fromkeys(("diaphragm", "liver", "gallbladder", "stomach", "spleen", "pancreas", "duodenum",
                                "kidney"), 1),
               **dict.fromkeys(("small intestine", "colon", "caecum", "rectum", "urinary bladder", "prostate",
                                "seminal gland"), 2)}
TORSO_TOPICS = tuple(replace(t, zone=TORSO_ZONES[t.organ]) for t in TORSO_TOPICS)
OTHER_MESH = ("Humans", "Male", "Adult", "Middle Aged", "Aged", "Retrospective Studies", "Prospective Studies",
              "Prognosis", "Treatment Outcome", "Tomography, X-Ray Computed", "Magnetic Resonance Imaging",
              "Biopsy", "Immunohistochemistry", "Risk Factors", "Follow-Up Studies", "Cohort Studies")
OFF_ATLAS_MESH = ("Skin", "Brain", "Eye", "Thyroid Gland", "Bone Marrow", "Lymph Nodes", "Breast", "Femur")
ANIMALS = (("Animals", "Rats"), ("Animals", "Mice"), ("Animals", "Disease Models, Animal", "Rats, Wistar"),
           ("Animals", "Swine"), ("Animals", "Mice, Inbred C57BL"), ("Animals", "Dogs"))
JOURNALS = ("Journal of Clinical Anatomy", "European Radiology Reports", "Annals of Internal Surgery",
            "Clinical Pathology Letters", "BMC Medical Imaging Notes", "Acta Medica Synthetica",
            "International Journal of Organ Research", "The Journal of Applied Clinical Studies")


@dataclass(frozen=True)
class Corpus:
    """A world's corpus vocabulary: topics, sub-region headings and neighbours, regions, absent organs."""

    topics: tuple[Topic, ...]
    part_mesh: dict[str, str]
    part_neighbours: dict[str, tuple[str, ...]]
    regions: dict[str, tuple[str, ...]]
    absent: dict[str, tuple[str, str]]
    studies: tuple[str, ...]
    animals_word: str = "in a rat model"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Writer:
    """Templated abstracts. Every choice comes from ``rng``; the templates are fixed."""

    BACKGROUND = ("{Cond} of the {name} remains a frequent clinical problem.",
                  "The {name} can be affected by {cond}.",
                  "{Adj} {cond} is associated with considerable morbidity.",
                  "Little is known about {cond} involving the {name} in adults.",
                  "{Name} {cond} was the focus of this study.")
    METHODS = ("We reviewed {n} consecutive patients with {cond} of the {name}.",
               "{Name} specimens from {n} patients were examined by immunohistochemistry.",
               "Computed tomography of the {name} was performed in {n} cases.",
               "A prospective cohort of {n} subjects underwent {adj} imaging.",
               "Clinical records of {n} patients with {adj} {cond} were analysed.")
    PART = ("Lesions were most often found in the {part}.", "The {part} was involved in {pct}% of the patients.",
            "Changes predominated in the {part}.", "Biopsies were taken from the {part}.")
    NEIGHBOUR = ("The adjacent {neighbour} was spared.", "Extension toward the neighbouring {neighbour} was rare.",
                 "Its relation to the nearby {neighbour} was assessed on imaging.")
    GROUP = ("These observations matter for {group} medicine.", "Such findings are typical of {group} disease.",
             "The results extend current knowledge of {group} disorders.")
    RESULT = ("Outcomes improved after {adj} treatment.", "{Cond} recurred in {pct}% during follow-up.",
              "Survival was associated with the extent of {adj} involvement.",
              "{Adj} function remained stable in most patients.")
    MULTI = ("Concurrent involvement of the {name} and the {name2} was observed in {pct}% of patients.",
             "Spread from the {name} to the {name2} was documented in {n} cases.",
             "Both the {name} and the {name2} were assessed with contrast imaging.")
    REGION = ("Patients with {region} disease were evaluated.",
              "Imaging of the {region} region revealed abnormalities in {pct}% of cases.",
              "{Region} surgery was performed in {n} patients.",
              "Complications after {region} procedures were recorded.")
    ABSENT = ("A lesion of the {absent} was found beside the {name}.",
              "The {absent}, lying near the {name}, showed {cond}.")
    DECOYS = ("The intervention was delivered by trained nurses.", "Care was delivered in an outpatient setting.",
              "Bacterial colonies were isolated from the swabs.", "Resting tachycardia was noted in some patients.")
    TITLES = ("{Cond} of the {name}: {study}", "{Adj} {cond} in adults: {study}", "The {name} in {cond}",
              "Outcomes of {adj} {cond}")
    TITLES_MULTI = ("{Name} and {name2} involvement in {cond}: {study}", "{Cond} of the {name} and the {name2}")

    def __init__(self, corpus: Corpus, rng: np.random.Generator):
        self.c, self.rng = corpus, rng
        self.by_organ = {t.organ: t for t in corpus.topics}
        weights = np.array([t.weight for t in corpus.topics], float)
        self.p = weights / weights.sum()

    def pick(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def fill(self, template: str, topic: Topic, **extra) -> str:
        name = extra.pop("name", None) or self.pick(topic.names)
        cond = extra.pop("cond", None) or self.pick(topic.conditions)
        values = {"name": name, "Name": _cap(name), "adj": topic.adjective, "Adj": _cap(topic.adjective),
                  "cond": cond, "Cond": _cap(cond), "n": int(self.rng.integers(12, 900)),
                  "pct": int(self.rng.integers(5, 80)), "group": topic.group, **extra}
        return template.format(**values)

    def weighted(self) -> Topic:
        return self.c.topics[int(self.rng.choice(len(self.p), p=self.p))]

    def organs(self, first: Topic, part: str | None) -> list[str]:
        """The article's organs: with a sub-region that has neighbours, 40 % ``first`` and one of them;
        otherwise ``first`` alone (64 %), with a second one (29 %: a neighbour — of the sub-region when the
        article names one — 50 %, an organ of another body zone 30 %, any organ 20 %) or with two others (7 %)."""
        u, kind = self.rng.random(), self.rng.random()
        part_near = [n for n in self.c.part_neighbours.get(part or "", ()) if n in self.by_organ]
        if part_near and kind < 0.4:  # a part with the organ beside it: SOD learns where the part is
            return [first.organ, self.pick(part_near)]
        if u < 0.64:
            return [first.organ]
        if u < 0.93:
            near = [n for n in (self.c.part_neighbours.get(part or "", ()) or first.neighbours)
                    if n in self.by_organ and n != first.organ]
            if kind < 0.5 and near:
                return [first.organ, self.pick(near)]
            second = self.weighted()
            for _ in range(20):  # a partner from another zone (metastasis, systemic disease)
                if kind >= 0.8 or second.zone != first.zone:
                    break
                second = self.weighted()
            return list(dict.fromkeys([first.organ, second.organ]))
        picks = [self.c.topics[int(i)].organ for i in self.rng.choice(len(self.p), size=3, replace=False, p=self.p)]
        return [first.organ] + [o for o in picks if o != first.organ][:2]

    def article(self) -> tuple[str, str, list[str]]:
        """``(title, abstract, meshMajor)`` of an ordinary article (1–3 organs)."""
        main = self.weighted()
        part = self.pick(main.parts) if main.parts and self.rng.random() < 0.45 else None
        topics = [self.by_organ[o] for o in self.organs(main, part)]
        cond, name = self.pick(main.conditions), self.pick(main.names)
        sentences = [self.fill(self.pick(self.BACKGROUND), main, name=name, cond=cond)]
        parts = {main.organ: part}
        for other in topics[1:]:
            sentences.append(self.fill(self.pick(self.MULTI), main, name2=self.pick(other.names)))
            parts[other.organ] = self.pick(other.parts) if other.parts and self.rng.random() < 0.3 else None
        sentences += [self.fill(self.pick(self.PART), t, part=parts[t.organ]) for t in topics if parts[t.organ]]
        near = [n for n in (self.c.part_neighbours.get(part or "", ()) or main.neighbours) if n != main.organ]
        if near and self.rng.random() < NEIGHBOUR_P:
            near_name = self.pick(near)
            near_name = self.pick(self.by_organ[near_name].names) if near_name in self.by_organ else near_name
            sentences.append(self.fill(self.pick(self.NEIGHBOUR), main, neighbour=near_name))
        if self.rng.random() < GROUP_P:
            sentences.append(self.fill(self.pick(self.GROUP), main))
        if self.rng.random() < 0.6:
            sentences.append(self.fill(self.pick(self.METHODS), main, cond=cond))
        if len(sentences) < 2 or self.rng.random() < 0.4:
            sentences.append(self.fill(self.pick(self.RESULT), main, cond=cond))
        titles = self.TITLES_MULTI if len(topics) > 1 else self.TITLES
        title = self.fill(self.pick(titles), main, name=name, cond=cond, study=self.pick(self.c.studies),
                          name2=self.pick(topics[-1].names))
        mesh = []
        for topic in topics:  # the organ's heading: the sub-region's own heading where MeSH has one
            mesh.append(self.c.part_mesh.get(parts[topic.organ] or "") or self.pick(topic.mesh))
            mesh.append(self.pick(topic.disease_mesh or ("Humans",)))
        return title, " ".join(sentences[:5]), mesh

    def regional(self) -> tuple[str, str, list[str]]:
        """An article about a region (no organ named), indexed with one of the region's organs at random."""
        region = self.pick(list(self.c.regions))
        topic = self.by_organ[self.pick(self.c.regions[region])]
        cond = self.pick(topic.conditions)
        picks = self.rng.choice(len(self.REGION), size=2 + int(self.rng.integers(2)), replace=False)
        sentences = [self.fill(self.REGION[int(i)], topic, region=region, Region=_cap(region), cond=cond)
                     for i in picks]
        title = f"{_cap(region)} {cond}: {self.pick(self.c.studies)}"
        return title, " ".join(sentences), [self.pick(topic.mesh), self.pick(topic.disease_mesh or ("Humans",))]

    def absent(self) -> tuple[str, str, list[str]]:
        """An article about an organ the atlas lacks, placed beside a present one (indexed with both)."""
        absent = self.pick(list(self.c.absent))
        heading, beside = self.c.absent[absent]
        topic = self.by_organ[beside]
        cond = self.pick(topic.conditions)
        sentences = [self.fill(self.pick(self.ABSENT), topic, absent=absent, cond=cond),
                     self.fill(self.pick(self.RESULT), topic, cond=cond)]
        return f"{_cap(absent)} {cond} near the {topic.names[0]}", " ".join(sentences), [heading, topic.mesh[0]]


def _articles(corpus: Corpus, n: int, seed: int, long_text: Callable[[_Writer], str]) -> list[dict]:
    """``n`` BioASQ articles (dicts in the field order of the release), drawn from ``seed``; the skip cases
    and the two over-long texts of the module docstring sit at fixed ordinals (modulo ``n``)."""
    rng = np.random.default_rng([seed, 2])
    w = _Writer(corpus, rng)
    out = []
    for i in range(n):
        u = rng.random()
        if u < 0.18:
            title, text, mesh = w.regional()
        elif u < 0.21 and corpus.absent:
            title, text, mesh = w.absent()
        else:
            title, text, mesh = w.article()
        extra = rng.random()
        if extra < 0.07:  # an animal study: dropped by the filter
            text = text.rstrip(".") + f" {corpus.animals_word}."
            mesh = list(w.pick(ANIMALS)) + mesh
        elif extra < 0.11:  # no atlas organ among the headings: dropped for want of a target
            mesh = [w.pick(OFF_ATLAS_MESH)] + [m for m in mesh if m in OTHER_MESH]
        elif extra < 0.15:  # a decoy sentence (the last one makes way when there are already five)
            kept = text.split(". ")
            text = ". ".join(kept[:4]).rstrip(".") + ". " + w.pick(w.DECOYS) if len(kept) >= 5 else \
                text + " " + w.pick(w.DECOYS)
        mesh = mesh + list(rng.choice(OTHER_MESH, size=int(rng.integers(1, 4)), replace=False))
        out.append({"journal": w.pick(JOURNALS), "meshMajor": list(dict.fromkeys(mesh)),
                    "year": str(1995 + int(rng.integers(26))), "abstractText": text, "pmid": str(30000001 + i),
                    "title": title})
    # the reader's skip paths and the length filter, at fixed ordinals
    for i in (5, 407, 1203):
        out[i % n].pop("abstractText", None)
    out[611 % n]["abstractText"] = ""
    for i in (19, 905):
        out[i % n].pop("meshMajor", None)
    out[1311 % n]["meshMajor"] = None
    for i in (77, 1499):
        out[i % n]["abstractText"] = long_text(w)
    return out


def _write_ndjson(folder: Path, articles: list[dict], truncate: int | None = 2) -> None:
    """``folder/bioasq/part_<i>.ndjson``, :data:`ARTICLES_PER_FILE` per file; the last line of part
    ``truncate`` is cut in half (a truncated download: the reader skips it)."""
    out = folder / "bioasq"
    out.mkdir(parents=True, exist_ok=True)
    for part, start in enumerate(range(0, len(articles), ARTICLES_PER_FILE)):
        lines = [json.dumps(a, ensure_ascii=False) for a in articles[start:start + ARTICLES_PER_FILE]]
        if part == truncate and lines:
            lines[-1] = lines[-1][: len(lines[-1]) // 2]
        (out / f"part_{part}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _long_torso(w: _Writer) -> str:
    topic = w.by_organ["liver"]
    return " ".join(w.fill(w.pick(w.BACKGROUND + w.METHODS + w.RESULT), topic) for _ in range(60))


TORSO_CORPUS = Corpus(TORSO_TOPICS, PART_MESH, PART_NEIGHBOURS, TORSO_REGIONS, TORSO_ABSENT,
                      ("a retrospective cohort study", "a prospective study", "a case series",
                       "a multicentre analysis", "a cross-sectional study", "a systematic review"))


# ================================================================================================ worlds
def _describe(kind: str, seed: int, objects: dict, articles: list[dict], **extra) -> dict:
    mesh = [m for a in articles for m in (a.get("meshMajor") or [])]
    return {"world": kind, "version": VERSION, "seed": seed, "articles": len(articles),
            "animal_articles": sum("Animals" in (a.get("meshMajor") or []) for a in articles),
            "mesh_terms": len(set(mesh)), "objects": objects, **extra}


def write_torso(folder: str | Path, seed: int = 0, articles: int = TORSO_ARTICLES) -> Path:
    """The torso world's RAW files (no ``processed/``) into ``folder``: ``innerorgans/``, ``bioasq/`` and
    ``world.json`` (module docstring). Deterministic per seed."""
    folder = Path(folder)
    vol, objects = torso_volume(seed)
    _write_sio(folder, vol, objects)
    docs = _articles(TORSO_CORPUS, articles, seed, _long_torso)
    _write_ndjson(folder, docs)
    axes = {"x": "anterior (0) -> posterior", "y": "patient's right (0) -> left", "z": "feet (0) -> head",
            "slices": "labels/slice_<k>.tif holds z = 224 - k"}
    meta = _describe("atlas", seed, objects, docs, shape=list(vol.shape), axes=axes,
                     subregions={k: list(v) for k, v in SUBREGIONS.items()},
                     regions={k: list(v) for k, v in TORSO_REGIONS.items()},
                     absent={k: v[1] for k, v in TORSO_ABSENT.items()}, colon_radius_mm=COLON_RADIUS)
    (folder / "world.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder


def _prepare(folder: Path, seed: int, **options) -> None:
    from modalbridge.tasks.atlas.prepare import prepare_atlas

    args = SimpleNamespace(**{"cap": WORLD_CAP, "seed": seed, "tokenizer": "minilm-l6", "max_tokens": 512,
                              "atlas": None, "bioasq": None, **options})
    prepare_atlas(folder, folder / "processed", args)


def torso_world(seed: int = 0) -> Path:
    """The cached torso world (``world://atlas``): ``<worlds>/atlas-<seed>/`` with the raw SIO + BioASQ files
    and ``processed/`` (the DataModule root ``world://atlas/processed``). Built once (a temporary sibling
    renamed into place, marker written last); a folder of another world version is rebuilt."""
    def write(folder: Path) -> None:
        write_torso(folder, seed)
        _prepare(folder, seed)

    return build_world(worlds_dir() / f"atlas-{seed}", {"version": VERSION, "seed": seed}, write)


# ================================================================================================= brain
#: region name → (MeSH-style heading, Seitzman anatomical labels or None, networks or None)
BRAIN_REGIONS: dict[str, tuple[str, tuple[int, ...] | None, tuple[str, ...] | None]] = {
    "hippocampus": ("Hippocampus", (3,), None),
    "amygdala": ("Amygdala", (4,), None),
    "basal ganglia": ("Basal Ganglia", (5,), None),
    "thalamus": ("Thalamus", (6,), None),
    "cerebellum": ("Cerebellum", (7,), None),
    "visual cortex": ("Visual Cortex", None, ("Visual",)),
    "sensorimotor cortex": ("Sensorimotor Cortex", None, ("SomatomotorDorsal", "SomatomotorLateral")),
    "auditory cortex": ("Auditory Cortex", None, ("Auditory",)),
    "default mode network": ("Default Mode Network", None, ("DefaultMode",)),
    "frontoparietal network": ("Frontoparietal Network", None, ("FrontoParietal",)),
    "cingulo-opercular network": ("Cingulo-Opercular Network", None, ("CinguloOpercular",)),
    "dorsal attention network": ("Dorsal Attention Network", None, ("DorsalAttention",)),
    "ventral attention network": ("Ventral Attention Network", None, ("VentralAttention",)),
    "salience network": ("Salience Network", None, ("Salience",)),
}
GM_FILE = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
ROI_FILE = "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt"
ANATOMY_FILE = "seitzman_2018_ROIs_anatomicalLabels.txt"
GM_THRESHOLD = 0.25  # grey-matter probability kept inside an ROI sphere


def nilearn_data() -> Path:
    """The data folder inside the installed nilearn wheel (found without importing nilearn)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the brain world needs nilearn's packaged data: pip install nilearn")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [f for f in (GM_FILE, ROI_FILE, ANATOMY_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: nilearn's packaged data lacks {', '.join(missing)}")
    return folder


def _seitzman(data: Path) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """ROI centres ``(R, 3)`` MNI mm, radii ``(R,)`` mm, network names and anatomical labels ``(R,)``."""
    rows = [line.split() for line in (data / ROI_FILE).read_text().splitlines()[1:] if line.strip()]
    centres = np.array([[float(v) for v in r[:3]] for r in rows])
    radii = np.array([float(r[3]) for r in rows])
    networks = [r[5] for r in rows]
    anatomy = np.array([int(v) for v in (data / ANATOMY_FILE).read_text().split()[1:]])
    if anatomy.size != len(rows):
        raise ValueError(f"{ANATOMY_FILE}: {anatomy.size} labels for {len(rows)} ROIs")
    return centres, radii, networks, anatomy


def _roi_region(networks: Sequence[str], anatomy: np.ndarray) -> np.ndarray:
    """``(R,)`` index into :data:`BRAIN_REGIONS` of every ROI, -1 for the ROIs left out."""
    out = np.full(len(networks), -1)
    for i, (net, anat) in enumerate(zip(networks, anatomy)):
        for j, (_, anatomical, nets) in enumerate(BRAIN_REGIONS.values()):
            if anatomical is not None and anat in anatomical:
                out[i] = j
            elif nets is not None and anat <= 2 and net in nets:
                out[i] = j
    return out


def brain_volume() -> tuple[np.ndarray, np.ndarray, dict[str, list[int]]]:
    """``(labels (197, 233, 189) uint16, affine (4, 4), {region: [ROI label values]})`` from nilearn's files:
    grey-matter voxels (probability ≥ :data:`GM_THRESHOLD`) within an ROI's radius of its centre, labelled with
    that ROI's number (1-based line of the ROI file; the nearest centre wins where spheres overlap)."""
    import nibabel as nib
    from scipy.spatial import cKDTree

    data = nilearn_data()
    gm_img = nib.load(str(data / GM_FILE))
    gm = np.asarray(gm_img.dataobj, dtype=np.float32)
    gm = gm / 255.0 if gm.max() > 1.0 else gm
    affine = np.asarray(gm_img.affine, float)
    centres, radii, networks, anatomy = _seitzman(data)
    region = _roi_region(networks, anatomy)
    kept = np.flatnonzero(region >= 0)
    ijk = (np.linalg.inv(affine) @ np.c_[centres, np.ones(len(centres))].T)[:3].T  # (R, 3) voxel coordinates
    voxels = np.argwhere(gm >= GM_THRESHOLD)
    tree = cKDTree(ijk[kept])
    dist, nearest = tree.query(voxels, distance_upper_bound=float(radii.max()) + 1e-6)
    found = np.isfinite(dist)
    roi = kept[nearest[found]]
    inside = dist[found] <= radii[roi] + 1e-6
    labels = np.zeros(gm.shape, np.uint16)
    labels[tuple(voxels[found][inside].T)] = (roi[inside] + 1).astype(np.uint16)
    present = set(np.unique(labels).tolist())
    table = {name: [int(r) + 1 for r in kept if region[r] == j and int(r) + 1 in present]
             for j, name in enumerate(BRAIN_REGIONS)}
    return labels, affine, {name: values for name, values in table.items() if values}


BRAIN_TOPICS: tuple[Topic, ...] = (
    Topic("hippocampus", ("Hippocampus",), ("hippocampus",), "hippocampal",
          ("memory consolidation", "atrophy", "sclerosis", "spatial navigation deficits"),
          ("left hippocampus", "right hippocampus"), ("amygdala",), "limbic system", 8,
          ("Memory, Episodic", "Alzheimer Disease", "Epilepsy, Temporal Lobe")),
    Topic("amygdala", ("Amygdala",), ("amygdala",), "amygdalar",
          ("fear conditioning", "threat reactivity", "emotional memory", "anxiety"),
          ("left amygdala", "right amygdala"), ("hippocampus",), "limbic system", 6, ("Fear", "Anxiety Disorders")),
    Topic("basal ganglia", ("Basal Ganglia",), ("basal ganglia", "striatum"), "striatal",
          ("dopamine depletion", "reward learning", "habit formation", "parkinsonism"),
          ("left basal ganglia", "right basal ganglia"), ("thalamus",), "subcortical motor loop", 6,
          ("Parkinson Disease", "Dopamine", "Reward")),
    Topic("thalamus", ("Thalamus",), ("thalamus",), "thalamic",
          ("sensory relay", "sleep spindles", "infarction", "thalamocortical dysrhythmia"),
          ("left thalamus", "right thalamus"), ("basal ganglia",), "subcortical relay", 5,
          ("Sleep", "Stroke")),
    Topic("cerebellum", ("Cerebellum",), ("cerebellum",), "cerebellar",
          ("ataxia", "motor timing", "degeneration", "motor learning"),
          ("left cerebellum", "right cerebellum"), ("visual cortex",), "motor system", 6,
          ("Cerebellar Ataxia", "Motor Skills")),
    Topic("visual cortex", ("Visual Cortex",), ("visual cortex", "occipital cortex"), "visual",
          ("retinotopic mapping", "contrast processing", "hemianopia", "visual plasticity"),
          ("left visual cortex", "right visual cortex"), ("cerebellum",), "visual system", 8,
          ("Visual Perception", "Hemianopsia")),
    Topic("sensorimotor cortex", ("Sensorimotor Cortex",), ("sensorimotor cortex", "motor cortex"), "somatomotor",
          ("finger tapping", "motor execution", "somatosensory processing", "stroke recovery"),
          ("left sensorimotor cortex", "right sensorimotor cortex"), ("auditory cortex",), "motor system", 8,
          ("Movement", "Psychomotor Performance")),
    Topic("auditory cortex", ("Auditory Cortex",), ("auditory cortex",), "auditory",
          ("tonotopic maps", "speech perception", "tinnitus", "pitch processing"),
          ("left auditory cortex", "right auditory cortex"), ("sensorimotor cortex",), "auditory system", 5,
          ("Speech Perception", "Tinnitus")),
    Topic("default mode network", ("Default Mode Network",), ("default mode network",), "self-referential",
          ("mind wandering", "resting-state connectivity", "autobiographical recall", "rumination"),
          (), ("frontoparietal network",), "intrinsic connectivity", 8, ("Rest", "Depressive Disorder")),
    Topic("frontoparietal network", ("Frontoparietal Network",), ("frontoparietal network",), "executive",
          ("cognitive control", "working memory load", "task switching", "reasoning"),
          ("left frontoparietal network", "right frontoparietal network"), ("dorsal attention network",),
          "control systems", 6, ("Executive Function", "Memory, Short-Term")),
    Topic("cingulo-opercular network", ("Cingulo-Opercular Network",), ("cingulo-opercular network",), "tonic",
          ("task-set maintenance", "alertness", "error monitoring"), (), ("salience network",), "control systems",
          4, ("Attention",)),
    Topic("dorsal attention network", ("Dorsal Attention Network",), ("dorsal attention network",), "spatial",
          ("spatial attention", "saccade planning", "visual search"), (), ("visual cortex",), "attention systems",
          4, ("Attention", "Saccades")),
    Topic("ventral attention network", ("Ventral Attention Network",), ("ventral attention network",),
          "reorienting", ("stimulus-driven reorienting", "neglect", "oddball detection"), (),
          ("auditory cortex",), "attention systems", 3, ("Attention", "Perceptual Disorders")),
    Topic("salience network", ("Salience Network",), ("salience network",), "interoceptive",
          ("interoceptive awareness", "pain salience", "switching between networks"), (),
          ("cingulo-opercular network",), "intrinsic connectivity", 3, ("Interoception", "Pain")),
)
BRAIN_ZONES = {**dict.fromkeys(("hippocampus", "amygdala", "basal ganglia", "thalamus"), 0), "cerebellum": 1,
               **dict.fromkeys(("visual cortex", "dorsal attention network"), 2),
               **dict.fromkeys(("sensorimotor cortex", "auditory cortex", "cingulo-opercular network",
                                "salience network", "ventral attention network"), 3),
               **dict.fromkeys(("default mode network", "frontoparietal network"), 4)}
BRAIN_TOPICS = tuple(replace(t, zone=BRAIN_ZONES[t.organ]) for t in BRAIN_TOPICS)
#: the brain's sub-region phrases: a hemisphere, along x (MNI left → right)
BRAIN_SUBREGIONS: dict[str, tuple[str, int, int]] = {
    part: (t.organ, 0, -1 if part.startswith("left ") else 1) for t in BRAIN_TOPICS for part in t.parts}
BRAIN_CORPUS = Corpus(
    BRAIN_TOPICS, {}, {},
    {"limbic": ("hippocampus", "amygdala"), "deep grey matter": ("thalamus", "basal ganglia"),
     "attentional": ("dorsal attention network", "ventral attention network"),
     "cognitive control": ("frontoparietal network", "cingulo-opercular network", "salience network")},
    {}, ("a functional MRI study", "a lesion study", "a resting-state analysis", "a diffusion imaging study",
         "a case series", "a meta-analysis"), animals_word="in mice")


def _long_brain(w: _Writer) -> str:
    topic = w.by_organ["hippocampus"]
    return " ".join(w.fill(w.pick(w.BACKGROUND + w.METHODS + w.RESULT), topic) for _ in range(60))


def write_brain(folder: str | Path, seed: int = 0, articles: int = BRAIN_ARTICLES) -> Path:
    """The brain world's RAW files into ``folder``: ``atlas/brain_regions.nii.gz`` (+ ``.tsv`` label table),
    ``bioasq/part_<i>.ndjson`` and ``world.json`` (module docstring). Deterministic per seed (the volume does
    not depend on it)."""
    import nibabel as nib

    folder = Path(folder)
    labels, affine, table = brain_volume()
    (folder / "atlas").mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(labels, affine)
    image.header.set_xyzt_units("mm")
    # gzip with a fixed timestamp: the same bytes every time
    (folder / "atlas" / "brain_regions.nii.gz").write_bytes(gzip.compress(image.to_bytes(), 6, mtime=0))
    rows = ["label\tname"] + [f"{v}\t{name}" for name, values in table.items() for v in values]
    (folder / "atlas" / "brain_regions.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    docs = _articles(BRAIN_CORPUS, articles, seed, _long_brain)
    _write_ndjson(folder, docs)
    axes = {"x": "MNI left (0) -> right", "y": "posterior (0) -> anterior", "z": "inferior (0) -> superior",
            "affine": affine.tolist()}
    meta = _describe("atlas_brain", seed, table, docs, shape=list(labels.shape), axes=axes,
                     sources={"volume": GM_FILE, "rois": ROI_FILE, "anatomy": ANATOMY_FILE,
                              "package": "nilearn (BSD-3-Clause); Seitzman et al. 2018 ROIs; MNI ICBM152 2009a"},
                     real="volume, ROI coordinates, radii and labels", templated="corpus texts and MeSH headings")
    (folder / "world.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder


def brain_world(seed: int = 0) -> Path:
    """The cached brain world (``world://atlas_brain``): ``<worlds>/atlas_brain-<seed>/`` with ``atlas/``,
    ``bioasq/`` and ``processed/`` (module docstring)."""
    def write(folder: Path) -> None:
        write_brain(folder, seed)
        _prepare(folder, seed, atlas=str(folder / "atlas" / "brain_regions.nii.gz"))

    return build_world(worlds_dir() / f"atlas_brain-{seed}", {"version": VERSION, "seed": seed}, write)

