"""The voxel atlas of the ``atlas`` task: :class:`Atlas` (organs, voxel clouds, exact nearest-voxel distances,
point sampling, deep-inside centres, merged/held-out variants, ``atlas.npz``) and its readers (spec
``text2atlas.md`` §2.1, §6, §10).

**Coordinates.** ``labels[x, y, z]`` is the raw label volume (0 = background); ``center = shape / 2``
(float64; SIO: (165.0, 286.5, 387.0)); ``spacing`` (3,) mm per voxel. Centred mm: ``p = (idx - center) *
spacing``; model space: ``u = p / (center * spacing)`` ∈ [-1, 1]^3 (each axis scaled on its own, as in the
paper); back to voxels: ``idx = clip(round(p / spacing + center), 0, shape - 1)`` with ``np.round`` (half to
even, as the reference).

**SIO** (VOXEL-MAN "Segmented Inner Organs", :func:`read_sio`): ``innerorgans/labels/*.tif`` — one 2-D integer
label image (any integer dtype) per slice, named with a running number; sorted in natural order
(``slice_2`` < ``slice_10``), REVERSED, stacked to ``(n, rows, cols)`` and transposed to ``(rows, cols, n)``:
the k-th file of n in natural order becomes ``z = n - 1 - k``. ``objectlist.txt`` (17 header lines) or
``classes.txt`` (none): one line per object, ``"<name>" <label> [<label> …]``. The :mod:`.glossary` rules turn
objects into organs. Rejected with a :class:`~modalbridge.core.errors.DataError` naming the file (and line):
no slices; gaps or repeats in the slice numbers; a slice whose shape or dtype differs from the first, that is
not 2-D or not integer; a class line that does not parse; a label value used twice or ≤ 0; an organ with no
voxel.
The anatomical sign of the axes was never checked by the authors; ``meta["axes"]`` says so.

**NIfTI** (:func:`read_nifti`): a 3-D integer label volume (float volumes must hold integral values); spacing
from the header zooms (the affine's rotation and axis signs are not used: a warning is logged for an oblique
affine, and the affine is kept in ``meta``). The label table, by default ``<stem>.tsv``/``.csv``/``.txt``
beside the volume, holds ``label<TAB>name`` (or ``label,name``) lines with an optional header line, or FSL
LUT lines ``label name r g b [a]``; ``#`` comments and label 0 are skipped; several labels may share a name
(one organ).
Table entries absent from the volume are dropped and logged (atlas tables often list more than one volume
holds); an empty result is an error.

**atlas.npz** (:meth:`Atlas.save` / :meth:`Atlas.load`, no pickle): ``version``; ``labels`` (uint16 when the
values fit, else the smallest fitting integer type); ``organs`` (unicode array); ``label_values`` +
``label_counts`` (each organ's label values, concatenated in organ order); ``voxels`` (int16 (N, 3) voxel
indices, all organs concatenated in organ order, C order within an organ) + ``voxel_counts``; ``spacing``
(float64 (3,)); ``aliases`` and ``meta`` as JSON strings.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from modalbridge.core.errors import DataError
from modalbridge.core.paths import natural_key
from modalbridge.datasets.check import MAX_LISTED, CheckReport
from modalbridge.tasks.atlas.glossary import SIO_GLOSSARY, Glossary, apply_glossary

__all__ = ["NPZ_VERSION", "SIO_HEADER_LINES", "Atlas", "check_atlas_files", "find_sio", "list_slices",
           "parse_class_list", "parse_label_table", "read_atlas", "read_nifti", "read_sio"]

log = logging.getLogger(__name__)

NPZ_VERSION = 1
#: header lines of the SIO ``objectlist.txt`` before the first class line
SIO_HEADER_LINES = 17
TIFF_SUFFIXES = (".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
TABLE_SUFFIXES = (".tsv", ".csv", ".txt")
SIO_AXES = ("x = TIFF row, y = TIFF column, z = slice (natural order reversed: the last file is z = 0); "
            "anatomical signs not checked")
_SIX = ndimage.generate_binary_structure(3, 1)
_FULL = ndimage.generate_binary_structure(3, 3)
_NPZ_KEYS = ("version", "labels", "organs", "label_values", "label_counts", "voxels", "voxel_counts",
             "spacing", "aliases", "meta")


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


def _listed(values: Sequence, limit: int = MAX_LISTED) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


# ============================================================================================== Atlas
class Atlas:
    """A labelled voxel volume and its organ glossary.

    ``labels`` (X, Y, Z) integer label volume (raw values, 0 = background; shared, not copied); ``organs``:
    organ index i ↔ ``organs[i]``; ``organ_labels`` {organ: [positive label values]} (a value belongs to one
    organ at most; values absent from the glossary are background for every organ query); ``aliases``
    {organ: [names]} (default: the organ's name); ``spacing`` mm per voxel along x, y, z; ``meta``: free JSON
    data (source, axis notes, merges). Voxel clouds, boundary KD-trees and the organ volume are computed on
    first use and cached.
    """

    def __init__(self, labels: np.ndarray, organs: Sequence[str], organ_labels: Mapping[str, Sequence[int]],
                 aliases: Mapping[str, Sequence[str]] | None = None,
                 spacing: Sequence[float] = (1.0, 1.0, 1.0), meta: Mapping | None = None):
        labels = np.asarray(labels)
        if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"the label volume must be a 3-D integer array, got {labels.dtype} "
                            f"{labels.shape}")
        if max(labels.shape) > np.iinfo(np.int16).max:
            raise DataError(f"volume {labels.shape} too large: voxel indices are stored as int16 (≤ 32767)")
        organs = [str(o) for o in organs]
        repeated = [o for o, n in Counter(organs).items() if n > 1]
        if repeated:
            raise DataError(f"organ names must be unique; repeated: {_listed(repeated)}")
        if set(organ_labels) != set(organs):
            extra, missing = sorted(set(organ_labels) - set(organs)), sorted(set(organs) - set(organ_labels))
            raise DataError(f"organ_labels must have one entry per organ (missing: {missing}, "
                            f"extra: {extra})")
        owner: dict[int, int] = {}
        for i, organ in enumerate(organs):
            values = [int(v) for v in organ_labels[organ]]
            if not values:
                raise DataError(f"organ {organ!r} has no label values")
            for v in values:
                if v <= 0:
                    raise DataError(f"organ {organ!r}: label values must be positive (0 is background), "
                                    f"got {v}")
                if owner.get(v, i) != i:
                    raise DataError(f"label {v} belongs to both {organs[owner[v]]!r} and {organ!r}")
                owner[v] = i
        spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
        if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise DataError(f"spacing must be 3 finite positive mm values, got {spacing.tolist()}")
        self.labels = labels
        self.organs = organs
        self.organ_labels = {o: _unique(int(v) for v in organ_labels[o]) for o in organs}
        aliases = aliases or {}
        self.aliases = {o: _unique(str(a) for a in aliases.get(o, [o])) for o in organs}
        self.spacing = spacing
        self.meta = dict(meta or {})
        self._index = {o: i for i, o in enumerate(organs)}
        self._values = np.array(sorted(owner), dtype=np.int64)              # sorted label values
        self._value_organ = np.array([owner[v] for v in self._values], dtype=np.int16)
        self._organ_volume: np.ndarray | None = None
        self._boxes: list | None = None
        self._voxels: dict[int, np.ndarray] = {}
        self._trees: dict[int, cKDTree | None] = {}
        self._centres: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.labels.shape)

    @property
    def center(self) -> np.ndarray:
        """(3,) float64 ``shape / 2`` (voxel units)."""
        return np.array(self.labels.shape, dtype=np.float64) / 2

    @property
    def num_organs(self) -> int:
        return len(self.organs)

    @property
    def scale(self) -> np.ndarray:
        """(3,) float64 mm that map to 1 in model space: ``center * spacing``."""
        return self.center * self.spacing

    def __repr__(self) -> str:
        return (f"Atlas(shape={self.shape}, spacing={self.spacing.tolist()}, organs={self.num_organs}, "
                f"source={self.meta.get('source', '?')!r})")

    def organ_index(self, name: str) -> int:
        """The index of organ ``name``; a DataError listing the known organs if there is none."""
        try:
            return self._index[name]
        except KeyError:
            raise DataError(f"unknown organ {name!r}; the atlas has: {_listed(self.organs)}") from None

    def _check_organ(self, organ: int) -> int:
        organ = int(organ)
        if not 0 <= organ < self.num_organs:
            raise DataError(f"organ index {organ} out of range (the atlas has {self.num_organs} organs)")
        return organ

    def organs_of_labels(self, values: np.ndarray) -> np.ndarray:
        """Organ index (int16, -1 for none) of each raw label value; any shape."""
        values = np.asarray(values)
        if self._values.size == 0:
            return np.full(values.shape, -1, dtype=np.int16)
        if values.dtype.kind == "u" and values.dtype.itemsize <= 2:  # look-up table over the dtype's range
            lut = np.full(1 << (8 * values.dtype.itemsize), -1, dtype=np.int16)
            fits = self._values < lut.size
            lut[self._values[fits]] = self._value_organ[fits]
            if values.ndim < 2 or values.size < 1 << 22:
                return lut[values]
            out = np.empty(values.shape, dtype=np.int16)
            step = max(1, (1 << 22) // max(1, values[0].size))  # slabs: no volume-sized index temporary
            for start in range(0, len(values), step):
                np.take(lut, values[start:start + step], out=out[start:start + step])
            return out
        pos = np.clip(np.searchsorted(self._values, values), 0, self._values.size - 1)
        return np.where(self._values[pos] == values, self._value_organ[pos], -1).astype(np.int16)

    def organ_volume(self) -> np.ndarray:
        """(X, Y, Z) int16 organ index of every voxel, -1 elsewhere (computed once)."""
        if self._organ_volume is None:
            self._organ_volume = self.organs_of_labels(self.labels)
        return self._organ_volume

    def _box(self, organ: int) -> tuple[slice, slice, slice] | None:
        """The bounding box of an organ's voxels (None when it has none), from one pass over the volume."""
        if self._boxes is None:
            top = int(self._values.max()) if self._values.size else 0
            if top > 1 << 24:  # huge label values: boxes of the organ volume (one int32 copy) instead
                shifted = self.organ_volume().astype(np.int32) + 1
                found = ndimage.find_objects(shifted, max_label=self.num_organs)
                self._boxes = list(found) + [None] * (self.num_organs - len(found))
                return self._boxes[organ]
            per_value = ndimage.find_objects(self.labels, max_label=top) if top else []
            self._boxes = []
            for organ_name in self.organs:
                boxes = [per_value[v - 1] for v in self.organ_labels[organ_name]]
                boxes = [b for b in boxes if b is not None]
                self._boxes.append(None if not boxes else tuple(
                    slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3)))
        return self._boxes[organ]

    def _mask(self, organ: int) -> tuple[np.ndarray, np.ndarray]:
        """``(mask, offset)``: the organ's boolean mask over its bounding box and the box's first voxel."""
        box = self._box(self._check_organ(organ))
        if box is None:
            return np.zeros((0, 0, 0), dtype=bool), np.zeros(3, dtype=np.int64)
        mask = np.isin(self.labels[box], self.organ_labels[self.organs[organ]])
        return mask, np.array([s.start for s in box], dtype=np.int64)

    def present(self, organ: int) -> bool:
        """Whether the organ has at least one voxel."""
        return self._box(self._check_organ(organ)) is not None

    # ------------------------------------------------------------------------------------------ voxels
    def voxels(self, organ: int) -> np.ndarray:
        """(K, 3) int16 voxel indices of the organ, C order (cached)."""
        organ = self._check_organ(organ)
        if organ not in self._voxels:
            mask, offset = self._mask(organ)
            vox = (np.argwhere(mask) + offset).astype(np.int16)
            vox.flags.writeable = False
            self._voxels[organ] = vox
        return self._voxels[organ]

    def to_mm(self, idx: np.ndarray) -> np.ndarray:
        """Voxel indices (..., 3) → centred mm (..., 3) float64."""
        return (np.asarray(idx, dtype=np.float64) - self.center) * self.spacing

    def points_mm(self, organ: int) -> np.ndarray:
        """(K, 3) float32 centred mm of the organ's voxels."""
        return self.to_mm(self.voxels(organ)).astype(np.float32)

    def normalise(self, p_mm: np.ndarray) -> np.ndarray:
        """Centred mm (..., 3) → model space ``p / (center * spacing)``; float32 stays float32."""
        p = np.asarray(p_mm)
        dtype = np.result_type(p.dtype, np.float32)
        return (p / self.scale).astype(dtype, copy=False)

    def denormalise(self, u: np.ndarray) -> np.ndarray:
        """Model space (..., 3) → centred mm; float32 stays float32."""
        u = np.asarray(u)
        dtype = np.result_type(u.dtype, np.float32)
        return (u * self.scale).astype(dtype, copy=False)

    def to_index(self, p_mm: np.ndarray) -> np.ndarray:
        """Centred mm (..., 3) → int64 voxel indices, rounded half to even and clipped into the volume."""
        p = np.asarray(p_mm, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise DataError(f"points must have 3 coordinates (x, y, z) in their last axis, got shape "
                            f"{p.shape}")
        if np.isnan(p).any():
            raise DataError(f"{int(np.isnan(p).any(axis=-1).sum())} point(s) have NaN coordinates")
        idx = np.round(p / self.spacing + self.center)
        return np.clip(idx, 0, np.array(self.shape) - 1).astype(np.int64)

    def organ_at(self, p_mm: np.ndarray) -> np.ndarray:
        """(...,) int64 organ index at the rounded, clipped voxel of each point, -1 for none."""
        idx = self.to_index(p_mm)
        values = self.labels[idx[..., 0], idx[..., 1], idx[..., 2]]
        return self.organs_of_labels(values).astype(np.int64)

    # --------------------------------------------------------------------------------------- distances
    def _tree(self, organ: int) -> cKDTree | None:
        """KD-tree over the organ's boundary voxels (mask minus its 6-connected erosion), in centred mm."""
        if organ not in self._trees:
            mask, offset = self._mask(organ)
            boundary = mask & ~ndimage.binary_erosion(mask, _SIX)
            pts = self.to_mm(np.argwhere(boundary) + offset)
            self._trees[organ] = cKDTree(pts) if len(pts) else None
        return self._trees[organ]

    def _query(self, organ: int, p: np.ndarray) -> np.ndarray:
        tree = self._tree(organ)
        if tree is None:
            return np.full(len(p), np.inf)
        return tree.query(p)[0]

    @staticmethod
    def _points(p_mm) -> np.ndarray:
        p = np.asarray(p_mm, dtype=np.float64)
        if p.ndim == 1:
            p = p[None]
        if p.ndim != 2 or p.shape[1] != 3:
            raise DataError(f"points must be a (P, 3) array of centred mm, got shape {p.shape}")
        return p

    def _targets(self, targets, n: int) -> np.ndarray:
        """(P, M) int64 organ indices, -1 padded, from an array (or tensor) or a list of lists."""
        if not isinstance(targets, list | tuple) or (len(targets) and np.isscalar(targets[0])):
            t = np.asarray(targets, dtype=np.int64)
            t = t.reshape(n, -1) if t.ndim == 1 else t
        else:
            width = max((len(row) for row in targets), default=0)
            t = np.full((len(targets), max(width, 1)), -1, dtype=np.int64)
            for i, row in enumerate(targets):
                t[i, :len(row)] = row
        if t.ndim != 2 or len(t) != n:
            raise DataError(f"targets must give one row of organ indices per point ({n}), got shape "
                            f"{t.shape}")
        if t.size and (t.max() >= self.num_organs or t.min() < -1):
            raise DataError(f"target organ indices must lie in [0, {self.num_organs}) (-1 = padding)")
        return t

    def distance(self, p_mm, targets) -> np.ndarray:
        """(P,) float64 mm from each point to the nearest voxel of its target organs (card §6).

        ``p_mm`` (P, 3) centred mm; ``targets`` (P, M) organ indices padded with -1, or a list of lists. 0
        when the rounded, clipped voxel belongs to any target organ; otherwise the exact minimum over the
        targets of the Euclidean distance from the UNCLIPPED point to the organ's nearest voxel centre
        (nearest boundary voxel — the same, since a nearer interior voxel would have a nearer neighbour). A
        row without targets gives inf. Queries are grouped by organ (one KD-tree query per target organ).
        """
        p = self._points(p_mm)
        t = self._targets(targets, len(p))
        at = self.organ_at(p)
        inside = ((t == at[:, None]) & (t >= 0)).any(axis=1)
        out = np.where(inside, 0.0, np.inf)
        for organ in np.unique(t[t >= 0]):
            rows = np.flatnonzero(~inside & (t == organ).any(axis=1))
            if rows.size:
                out[rows] = np.minimum(out[rows], self._query(int(organ), p[rows]))
        return out

    def organ_distances(self, p_mm) -> np.ndarray:
        """(P, K) float64 mm from every point to every organ (0 for the organ at the rounded voxel)."""
        p = self._points(p_mm)
        d = np.empty((len(p), self.num_organs))
        for organ in range(self.num_organs):
            d[:, organ] = self._query(organ, p)
        at = self.organ_at(p)
        rows = np.flatnonzero(at >= 0)
        d[rows, at[rows]] = 0.0
        return d

    def nearest_organs(self, p_mm, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest organs of each point: (P, k) int64 indices and (P, k) float64 mm, nearest first
        (ties: lower index first; 0 for the organ at the rounded voxel); padded with -1 / inf beyond the organ
        count."""
        d = self.organ_distances(p_mm)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        dist = np.take_along_axis(d, order, axis=1)
        if order.shape[1] < k:
            pad = k - order.shape[1]
            order = np.pad(order, ((0, 0), (0, pad)), constant_values=-1)
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
        return order.astype(np.int64), dist

    # ---------------------------------------------------------------------------------------- sampling
    def _draw(self, organ: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) int16 voxels drawn uniformly: without replacement when the organ has ≥ n voxels."""
        vox = self.voxels(organ)
        if not len(vox):
            raise DataError(f"organ {self.organs[organ]!r} has no voxel to sample")
        pick = rng.choice(len(vox), size=n, replace=False) if len(vox) >= n else rng.integers(0, len(vox), n)
        return vox[pick]

    def sample(self, organ: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) float32 normalised points: voxels of the organ drawn uniformly, without replacement when the
        organ has at least n voxels (with replacement otherwise)."""
        return self.normalise(self.to_mm(self._draw(organ, n, rng))).astype(np.float32)

    def summary(self, organ: int, n: int = 1000, seed: int = 0) -> np.ndarray:
        """(n, 3) float32 centred mm: the organ's ``organ2summary`` points, drawn like :meth:`sample` with a
        generator seeded by ``(seed, organ)``."""
        rng = np.random.default_rng([seed, self._check_organ(organ)])
        return self.to_mm(self._draw(organ, n, rng)).astype(np.float32)

    def centre(self, organ: int) -> np.ndarray:
        """(3,) float64 centred mm of a point deep inside the organ (card §2.1): erode with the 6-connected
        structure until nothing is left, keep the last non-empty set (voxels of maximal city-block depth —
        one distance transform instead of the erosion loop), its largest 26-connected component, and average.
        When that mean does not fall in the organ (a hollow shell), the component voxel nearest to it is used.
        Cached.
        """
        organ = self._check_organ(organ)
        if organ not in self._centres:
            self._centres[organ] = self._deep_point(organ)
        return self._centres[organ].copy()

    def _deep_point(self, organ: int) -> np.ndarray:
        mask, offset = self._mask(organ)
        if not mask.any():
            raise DataError(f"organ {self.organs[organ]!r} has no voxel")
        depth = ndimage.distance_transform_cdt(np.pad(mask, 1), metric="taxicab")[1:-1, 1:-1, 1:-1]
        components, _ = ndimage.label(depth == depth.max(), structure=_FULL)
        largest = np.argmax(np.bincount(components.ravel())[1:]) + 1
        idx = np.argwhere(components == largest) + offset
        p = self.to_mm(idx.mean(axis=0))
        if int(self.organ_at(p[None])[0]) != organ:
            p = self.to_mm(idx[np.argmin((((idx - idx.mean(axis=0)) * self.spacing) ** 2).sum(axis=1))])
        return p

    # ---------------------------------------------------------------------------------- derived atlases
    def _groups(self, groups: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
        seen: dict[int, str] = {}
        out: dict[str, list[int]] = {}
        for new, parts in groups.items():
            idx = _unique(self.organ_index(p) for p in parts)
            if not idx:
                raise DataError(f"merge group {new!r} has no organs")
            for i in idx:
                if i in seen:
                    raise DataError(f"organ {self.organs[i]!r} is in two merge groups ({seen[i]!r}, {new!r})")
                seen[i] = new
            out[str(new)] = idx
        kept = {o for i, o in enumerate(self.organs) if i not in seen}
        clash = sorted(kept & set(out))
        if clash:
            raise DataError(f"merged organ names {clash} are already names of organs that are not merged")
        return out

    def index_map_after_merge(self, groups: Mapping[str, Sequence[str]]) -> np.ndarray:
        """(K,) int64: the index each organ gets in :meth:`merged` (``groups``) — unmerged organs keep their
        order and come first, then the super-organs in the order of ``groups``."""
        parts = self._groups(groups)
        merged = {i for idx in parts.values() for i in idx}
        kept = [i for i in range(self.num_organs) if i not in merged]
        out = np.full(self.num_organs, -1, dtype=np.int64)
        out[kept] = np.arange(len(kept))
        for j, idx in enumerate(parts.values()):
            out[idx] = len(kept) + j
        return out

    def merged(self, groups: Mapping[str, Sequence[str]]) -> Atlas:
        """A new atlas where each ``{new name: [organ names]}`` group is one super-organ (union of labels,
        voxels and aliases). The merged organs disappear; the others keep their order; the super-organs are
        appended in the order of ``groups``. :meth:`index_map_after_merge` gives old → new indices (remap
        record indices with :meth:`remap`). Records the groups in ``meta["merged"]``."""
        parts = self._groups(groups)
        mapping = self.index_map_after_merge(groups)
        kept = [i for i in range(self.num_organs) if i not in {j for idx in parts.values() for j in idx}]
        organs = [self.organs[i] for i in kept] + list(parts)
        labels = {self.organs[i]: self.organ_labels[self.organs[i]] for i in kept}
        aliases = {self.organs[i]: self.aliases[self.organs[i]] for i in kept}
        for new, idx in parts.items():
            labels[new] = [v for i in idx for v in self.organ_labels[self.organs[i]]]
            aliases[new] = _unique(a for i in idx for a in self.aliases[self.organs[i]])
        meta = {**self.meta, "merged": {**self.meta.get("merged", {}),
                                        **{new: [self.organs[i] for i in idx] for new, idx in parts.items()}}}
        return self._derived(organs, labels, aliases, meta, mapping)

    def index_map_after_without(self, names: Iterable[str]) -> np.ndarray:
        """(K,) int64: the index each organ gets in :meth:`without` (``names``), -1 for the removed ones."""
        removed = {self.organ_index(n) for n in ([names] if isinstance(names, str) else names)}
        out = np.full(self.num_organs, -1, dtype=np.int64)
        kept = [i for i in range(self.num_organs) if i not in removed]
        out[kept] = np.arange(len(kept))
        return out

    def without(self, names: Iterable[str]) -> Atlas:
        """A new atlas without the named organs (their voxels become background for every organ query); the
        others keep their order (:meth:`index_map_after_without`). Records them in ``meta["removed"]``."""
        names = [names] if isinstance(names, str) else list(names)
        mapping = self.index_map_after_without(names)
        organs = [o for i, o in enumerate(self.organs) if mapping[i] >= 0]
        meta = {**self.meta, "removed": [*self.meta.get("removed", []), *names]}
        return self._derived(organs, {o: self.organ_labels[o] for o in organs},
                             {o: self.aliases[o] for o in organs}, meta, mapping)

    def _derived(self, organs, labels, aliases, meta, mapping: np.ndarray) -> Atlas:
        out = Atlas(self.labels, organs, labels, aliases, self.spacing, meta)
        moved = Counter(int(m) for m in mapping if m >= 0)
        for old, new in enumerate(mapping.tolist()):  # caches of organs that are unchanged
            if new >= 0 and moved[new] == 1:
                if old in self._voxels:
                    out._voxels[new] = self._voxels[old]
                if old in self._trees:
                    out._trees[new] = self._trees[old]
                if old in self._centres:
                    out._centres[new] = self._centres[old]
        return out

    @staticmethod
    def remap(indices: Iterable[int], index_map: np.ndarray) -> list[int]:
        """Organ indices through an index map (:meth:`index_map_after_merge` / ``_without``): removed ones
        dropped, repeats removed, first occurrence kept."""
        return _unique(int(index_map[i]) for i in indices if index_map[i] >= 0)

    # --------------------------------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Write ``atlas.npz`` (module docstring; compressed, no pickle); returns the path (``.npz``
        appended when missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        lo, hi = int(self.labels.min()), int(self.labels.max())
        dtype = next((t for t in (np.uint8, np.uint16, np.int16, np.int32, np.int64)
                      if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), self.labels.dtype.type)
        if dtype is np.uint8:
            dtype = np.uint16  # the card's on-disk type
        vox = [self.voxels(i) for i in range(self.num_organs)]
        values = [self.organ_labels[o] for o in self.organs]
        arrays = {
            "version": np.array(NPZ_VERSION),
            "labels": self.labels.astype(dtype, copy=False),
            "organs": np.array(self.organs, dtype=str) if self.organs else np.zeros(0, dtype="<U1"),
            "label_values": np.array([v for vals in values for v in vals], dtype=np.int64),
            "label_counts": np.array([len(v) for v in values], dtype=np.int64),
            "voxels": np.concatenate(vox).astype(np.int16) if vox else np.zeros((0, 3), np.int16),
            "voxel_counts": np.array([len(v) for v in vox], dtype=np.int64),
            "spacing": self.spacing,
            "aliases": np.array(json.dumps(self.aliases)),
            "meta": np.array(json.dumps(self.meta, default=str)),
        }
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Atlas:
        """Read an ``atlas.npz`` written by :meth:`save` (``allow_pickle=False``)."""
        path = Path(path)
        if not path.is_file():
            raise DataError("atlas file not found (write one with `modalbridge data prepare atlas`)",
                            path=path)
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in _NPZ_KEYS if k not in z.files]
                if missing:
                    raise DataError(f"not an atlas.npz: missing arrays {missing}", path=path)
                arrays = {k: z[k] for k in _NPZ_KEYS}
        except DataError:
            raise
        except Exception as exc:  # a truncated zip, an object array, …
            raise DataError(f"unreadable atlas.npz ({type(exc).__name__}: {exc})", path=path) from exc
        if int(arrays["version"]) > NPZ_VERSION:
            raise DataError(f"atlas.npz version {int(arrays['version'])} is newer than this reader "
                            f"({NPZ_VERSION})", path=path)
        organs = [str(o) for o in arrays["organs"].tolist()]
        counts = arrays["label_counts"].astype(np.int64)
        vcounts = arrays["voxel_counts"].astype(np.int64)
        if (len(counts) != len(organs) or len(vcounts) != len(organs)
                or counts.sum() != len(arrays["label_values"]) or vcounts.sum() != len(arrays["voxels"])):
            raise DataError("inconsistent atlas.npz: organ, label and voxel counts disagree", path=path)
        values = np.split(arrays["label_values"], np.cumsum(counts)[:-1]) if organs else []
        try:
            aliases, meta = json.loads(str(arrays["aliases"])), json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise DataError(f"aliases/meta are not JSON ({exc})", path=path) from exc
        try:
            atlas = cls(arrays["labels"], organs, {o: v.tolist() for o, v in zip(organs, values)}, aliases,
                        arrays["spacing"], meta)
        except DataError as exc:
            raise DataError(exc.message, path=path) from exc
        for i, vox in enumerate(np.split(arrays["voxels"], np.cumsum(vcounts)[:-1]) if organs else []):
            vox = vox.astype(np.int16)
            vox.flags.writeable = False
            atlas._voxels[i] = vox
        return atlas

    def export_dicts(self, folder: str | Path, *, all_voxels: bool = False, seed: int = 0) -> list[Path]:
        """The reference's organ dictionaries as JSON files in ``folder``: ``organ2ind`` {name: int},
        ``ind2organ`` {"int": name} (string keys, as JSON has them), ``organ2label``, ``organ2alias``,
        ``organ2center`` (:meth:`centre`), ``organ2summary`` (:meth:`summary`, 1000 points) and, with
        ``all_voxels``, ``organ2voxels`` (every voxel, centred mm — large). Returns the paths written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        dicts = {
            "organ2ind": {o: i for i, o in enumerate(self.organs)},
            "ind2organ": {str(i): o for i, o in enumerate(self.organs)},
            "organ2label": self.organ_labels,
            "organ2alias": self.aliases,
            "organ2center": {o: self.centre(i).tolist() for i, o in enumerate(self.organs)},
            "organ2summary": {o: self.summary(i, 1000, seed).tolist() for i, o in enumerate(self.organs)},
        }
        if all_voxels:
            dicts["organ2voxels"] = {o: self.points_mm(i).tolist() for i, o in enumerate(self.organs)}
        paths = []
        for name, data in dicts.items():
            paths.append(folder / f"{name}.json")
            paths[-1].write_text(json.dumps(data), encoding="utf-8")
        return paths


# ============================================================================================= SIO reader
def find_sio(folder: str | Path) -> Path:
    """The SIO ``innerorgans/`` folder: ``folder`` itself when it holds ``labels/``, else
    ``folder/innerorgans``."""
    folder = Path(folder)
    for candidate in (folder, folder / "innerorgans"):
        if (candidate / "labels").is_dir():
            return candidate
    what = "folder not found" if not folder.exists() else "no labels/ folder of label slices"
    raise DataError(f"{what}: expected the SIO innerorgans/ folder (labels/*.tif + objectlist.txt) or its "
                    "parent", path=folder)


def list_slices(labels_dir: str | Path) -> tuple[list[Path], list[DataError]]:
    """The ``*.tif``/``*.tiff`` slices in NATURAL order (not yet reversed) and the problems of their
    numbering: none at all, a number used twice, gaps between the smallest and largest number, names without
    a number."""
    labels_dir = Path(labels_dir)
    files = sorted((p for p in labels_dir.iterdir() if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not files:
        return [], [DataError("no label slices (*.tif) in the labels folder", path=labels_dir)]
    problems = []
    numbers = {p: re.findall(r"\d+", p.stem) for p in files}
    unnumbered = [p.name for p in files if not numbers[p]]
    if unnumbered:
        problems.append(DataError(f"slice file names without a slice number: {_listed(unnumbered)}",
                                  path=labels_dir))
        return files, problems
    by_number: dict[int, list[str]] = {}
    for p in files:
        by_number.setdefault(int(numbers[p][-1]), []).append(p.name)
    repeated = [f"{n} ({', '.join(names)})" for n, names in by_number.items() if len(names) > 1]
    if repeated:
        problems.append(DataError(f"slice numbers used by several files: {_listed(repeated)}",
                                  path=labels_dir))
    lo, hi = min(by_number), max(by_number)
    missing = sorted(set(range(lo, hi + 1)) - set(by_number))
    if missing:
        problems.append(DataError(f"missing slice numbers {_listed(missing)} (the slices run from {lo} to "
                                  f"{hi}; {len(missing)} missing)", path=labels_dir))
    return files, problems


def _read_slice(path: Path) -> np.ndarray:
    import tifffile

    try:
        image = np.asarray(tifffile.imread(path))
    except Exception as exc:  # tifffile raises many kinds on corrupt files
        raise DataError(f"unreadable TIFF ({type(exc).__name__}: {exc})", path=path) from exc
    if image.ndim != 2:
        raise DataError(f"expected one 2-D label image, got an array of shape {image.shape}", path=path)
    if not np.issubdtype(image.dtype, np.integer):
        raise DataError(f"label slices must hold integers, got {image.dtype}", path=path)
    return image


def _read_stack(files: Sequence[Path]) -> np.ndarray:
    """(rows, cols, n) volume whose ``[:, :, i]`` is ``files[i]`` (files given in stack order)."""
    first = _read_slice(files[0])
    volume = np.empty((*first.shape, len(files)), dtype=first.dtype)
    volume[:, :, 0] = first
    for i, path in enumerate(files[1:], 1):
        image = _read_slice(path)
        if image.shape != first.shape or image.dtype != first.dtype:
            raise DataError(f"slice is {image.shape[0]}x{image.shape[1]} {image.dtype}, expected "
                            f"{first.shape[0]}x{first.shape[1]} {first.dtype} like {files[0].name}",
                            path=path)
        volume[:, :, i] = image
    return volume


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_CLASS_LINE = re.compile(r'^"(?P<name>[^"]*)"\s+(?P<labels>.*)$')


def find_class_list(folder: Path) -> tuple[Path, int]:
    """``(path, header lines)``: ``objectlist.txt`` (17 header lines) or else ``classes.txt`` (none)."""
    for name, header in (("objectlist.txt", SIO_HEADER_LINES), ("classes.txt", 0)):
        if (folder / name).is_file():
            return folder / name, header
    raise DataError("no class list: expected objectlist.txt (17 header lines, then '\"<name>\" <label> …' "
                    "lines) or classes.txt (the same lines, no header)", path=folder)


def parse_class_list(path: str | Path, header_lines: int = SIO_HEADER_LINES
                     ) -> tuple[dict[str, list[int]], list[DataError]]:
    """``{object name: [label values]}`` in file order, and every problem (file, line number): a line that is
    not ``"<name>" <int> [<int> …]``, a non-positive or repeated label value, a repeated name, no classes."""
    path = Path(path)
    lines = _read_text(path).splitlines()
    raw: dict[str, list[int]] = {}
    first_line: dict[str, int] = {}
    owner: dict[int, str] = {}
    problems = []
    for number, line in enumerate(lines[header_lines:], header_lines + 1):
        text = line.strip()
        if not text:
            continue
        match = _CLASS_LINE.match(text)
        if not match or not match["name"].strip():
            problems.append(DataError(f"expected '\"<organ name>\" <label> [<label> …]', got {text[:80]!r}",
                                      path=path, row=number))
            continue
        name = match["name"].strip()
        try:
            values = [int(t) for t in match["labels"].split()]
        except ValueError:
            problems.append(DataError(f"label values must be integers, got {match['labels'][:60]!r}",
                                      path=path, row=number, field="labels"))
            continue
        if not values:
            problems.append(DataError(f"class {name!r} has no label values", path=path, row=number,
                                      field="labels"))
            continue
        if name in raw:
            problems.append(DataError(f"class {name!r} repeated (first on line {first_line[name]})",
                                      path=path, row=number))
            continue
        bad = [v for v in values if v <= 0]
        shared = [f"{v} (also {owner[v]!r})" for v in values if v in owner]
        if bad or shared:
            what = (f"non-positive label values {bad} (0 is background)" if bad
                    else f"label values used by another class: {', '.join(shared)}")
            problems.append(DataError(what, path=path, row=number, field="labels"))
            continue
        raw[name], first_line[name] = values, number
        owner.update((v, name) for v in values)
    if not raw and not problems:
        hint = f" after the {header_lines} header lines" if header_lines else ""
        problems.append(DataError(f"no class lines{hint} (the file has {len(lines)} lines)", path=path))
    return raw, problems


def _present_values(volume: np.ndarray, values: Iterable[int]) -> set[int]:
    """Which of the positive label values occur in the volume (one pass, no copy)."""
    values = sorted({int(v) for v in values if v > 0})
    if not values:
        return set()
    if values[-1] <= 1 << 24:
        boxes = ndimage.find_objects(volume, max_label=values[-1])
        return {v for v in values if boxes[v - 1] is not None}
    return {int(v) for v in np.unique(volume) if int(v) in set(values)}


def _glossary_organs(raw: dict[str, list[int]], glossary: Glossary | None, umls=None):
    if glossary is None:
        return list(raw), dict(raw), {name: [name] for name in raw}
    return apply_glossary(raw, glossary, umls)


def _absent_organs(volume, organs, organ_labels) -> tuple[list[str], dict[str, list[int]]]:
    """Organs with no voxel, and (other) organs with some label values absent."""
    present = _present_values(volume, (v for o in organs for v in organ_labels[o]))
    empty = [o for o in organs if not present.intersection(organ_labels[o])]
    partial = {o: [v for v in organ_labels[o] if v not in present] for o in organs if o not in empty}
    return empty, {o: v for o, v in partial.items() if v}


def read_sio(folder: str | Path, glossary: Glossary | None = SIO_GLOSSARY,
             umls: Mapping[str, Sequence[str]] | None = None) -> Atlas:
    """The SIO atlas (module docstring) from ``innerorgans/`` or its parent. ``glossary=None`` keeps every
    object under its own name; ``umls``: optional extra aliases per organ
    (:func:`~modalbridge.tasks.atlas.glossary.apply_glossary`)."""
    root = find_sio(folder)
    files, problems = list_slices(root / "labels")
    if problems:
        raise problems[0]
    classes, header = find_class_list(root)
    raw, problems = parse_class_list(classes, header)
    if problems:
        raise problems[0]
    organs, organ_labels, aliases = _glossary_organs(raw, glossary, umls)
    if not organs:
        raise DataError(f"no organ left after the glossary rules ({len(raw)} classes)", path=classes)
    volume = _read_stack(files[::-1])
    empty, partial = _absent_organs(volume, organs, organ_labels)
    if empty:
        raise DataError("organs without any voxel in the label volume: " + _listed(
            [f"{o} (labels {organ_labels[o]})" for o in empty]), path=classes)
    for organ, values in partial.items():
        log.warning("%s: organ %r: label values %s do not occur in the volume", classes, organ, values)
    meta = {"source": "sio", "path": str(root), "class_list": classes.name, "slices": len(files),
            "dtype": str(volume.dtype), "axes": SIO_AXES, "glossary": glossary is not None}
    return Atlas(volume, organs, organ_labels, aliases, (1.0, 1.0, 1.0), meta)


# =========================================================================================== NIfTI reader
def _nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return path.stem


def find_label_table(path: str | Path) -> Path:
    """``<stem>.tsv``/``.csv``/``.txt`` beside a NIfTI file; a DataError saying what to add otherwise."""
    path = Path(path)
    stem = _nifti_stem(path)
    for suffix in TABLE_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    raise DataError(f"no label table for this NIfTI: put {stem}.tsv beside it with one 'label<TAB>name' line "
                    "per organ (e.g. '1\\tliver'; several labels may share a name), or pass the table "
                    "explicitly", path=path)


_LABEL_COLUMNS = ("index", "label_id", "value", "id", "label", "number")
_NAME_COLUMNS = ("name", "label_name", "structure", "organ", "region", "label")


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"[+-]?\d+", text.strip()))


def _split_table_line(line: str) -> list[str]:
    if "\t" in line:
        return [f.strip() for f in line.split("\t")]
    if "," in line:
        return [f.strip() for f in next(csv.reader([line]))]
    tokens = line.split()
    if len(tokens) >= 5 and all(_is_int(t) for t in tokens[-4:]):       # FSL LUT: label name r g b a
        return [tokens[0], " ".join(tokens[1:-4])]
    if len(tokens) >= 4 and all(_is_int(t) for t in tokens[-3:]):       # label name r g b
        return [tokens[0], " ".join(tokens[1:-3])]
    return [tokens[0], " ".join(tokens[1:])] if tokens else []


def parse_label_table(path: str | Path) -> tuple[dict[str, list[int]], list[DataError]]:
    """``{name: [label values]}`` (first-appearance order) from a label table (module docstring), and every
    problem with its line number: no name, a label that is not an integer, negative or repeated."""
    path = Path(path)
    raw: dict[str, list[int]] = {}
    seen: dict[int, int] = {}
    problems = []
    label_col, name_col, header_done = 0, 1, False
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _split_table_line(line)
        if not header_done:
            header_done = True
            if fields and not _is_int(fields[0]):  # a header line: map its columns when it names them
                lower = [f.lower() for f in fields]
                label_col = next((lower.index(c) for c in _LABEL_COLUMNS if c in lower), 0)
                names = [lower.index(c) for c in _NAME_COLUMNS if c in lower and lower.index(c) != label_col]
                name_col = names[0] if names else (1 if label_col != 1 else 0)
                continue
        if len(fields) <= max(label_col, name_col) or not fields[name_col]:
            problems.append(DataError("expected 'label<TAB>name' (or 'label,name', or 'label name r g b a')",
                                      path=path, row=number, field="name"))
            continue
        if not _is_int(fields[label_col]):
            problems.append(DataError(f"label must be an integer, got {fields[label_col]!r}", path=path,
                                      row=number, field="label"))
            continue
        value, name = int(fields[label_col]), fields[name_col]
        if value < 0:
            problems.append(DataError(f"label must be ≥ 0, got {value}", path=path, row=number,
                                      field="label"))
        elif value in seen:
            problems.append(DataError(f"label {value} already listed on line {seen[value]}", path=path,
                                      row=number, field="label"))
        elif value > 0:  # 0 = background (e.g. FSL's "0 Unknown")
            seen[value] = number
            raw.setdefault(name, []).append(value)
    if not raw and not problems:
        problems.append(DataError("no labelled rows (expected 'label<TAB>name' lines)", path=path))
    return raw, problems


def _nifti_volume(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, spacing, affine)`` of a NIfTI label volume (spacing not yet validated)."""
    import nibabel as nib

    if not path.is_file():
        raise DataError("NIfTI file not found", path=path)
    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises several kinds on bad files
        raise DataError(f"unreadable NIfTI ({type(exc).__name__}: {exc})", path=path) from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"expected a 3-D label volume, got shape {data.shape}", path=path)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise DataError(f"the label volume holds non-integer values ({data.dtype}); expected integer "
                            "labels", path=path)
        lo, hi = float(data.min()), float(data.max())
        dtype = next(t for t in (np.uint8, np.uint16, np.int32, np.int64)
                     if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max)
        data = data.astype(dtype)
    spacing = np.asarray(image.header.get_zooms()[:3], dtype=np.float64)
    return np.ascontiguousarray(data), spacing, np.asarray(image.affine, dtype=np.float64)


def _spacing_problem(spacing: np.ndarray, path: Path) -> DataError | None:
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        return DataError(f"voxel sizes must be 3 finite positive mm values, got {spacing.tolist()}",
                         path=path, field="pixdim")
    return None


def read_nifti(path: str | Path, table: str | Path | None = None) -> Atlas:
    """An atlas from a NIfTI label volume and its label table (module docstring). ``table`` defaults to
    ``<stem>.tsv``/``.csv``/``.txt`` beside the volume."""
    path = Path(path)
    volume, spacing, affine = _nifti_volume(path)
    problem = _spacing_problem(spacing, path)
    if problem:
        raise problem
    table = Path(table) if table is not None else find_label_table(path)
    if not table.is_file():
        raise DataError("label table not found", path=table)
    raw, problems = parse_label_table(table)
    if problems:
        raise problems[0]
    rotation = affine[:3, :3]
    off_diagonal = np.abs(rotation - np.diag(np.diag(rotation))).max()
    if off_diagonal > 1e-3 * np.abs(rotation).max():
        log.warning("%s: oblique affine; only the voxel sizes %s are used (axes stay the array axes)", path,
                    spacing.tolist())
    empty, partial = _absent_organs(volume, list(raw), raw)
    for organ, values in partial.items():
        log.warning("%s: %r: label values %s do not occur in the volume", table, organ, values)
    if empty:
        log.warning("%s: %d table entries have no voxel and are left out: %s", table, len(empty),
                    _listed(empty))
    organs = [o for o in raw if o not in empty]
    if not organs:
        raise DataError(f"none of the table's labels occurs in {path.name}", path=table)
    aliases = {o: _unique([o, o.lower()]) for o in organs}
    meta = {"source": "nifti", "path": str(path), "table": str(table), "affine": affine.tolist(),
            "axes": "array axes of the NIfTI volume; the affine's rotation and signs are not applied",
            "absent": empty}
    return Atlas(volume, organs, {o: raw[o] for o in organs}, aliases, spacing, meta)


# ============================================================================================== dispatch
def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def read_atlas(path: str | Path, glossary: Glossary | None = None) -> Atlas:
    """An atlas from ``atlas.npz``, an SIO folder (``innerorgans/`` or its parent), a folder holding
    ``atlas.npz`` or exactly one ``.nii``/``.nii.gz``, or a NIfTI file (label table beside it). ``glossary``:
    the SIO rules to apply instead of :data:`~.glossary.SIO_GLOSSARY` (SIO folders only)."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".npz":
            return Atlas.load(path)
        if _is_nifti(path):
            return read_nifti(path)
        raise DataError("unknown atlas file: expected atlas.npz or a .nii/.nii.gz label volume", path=path)
    if not path.is_dir():
        raise DataError("atlas not found", path=path)
    if (path / "atlas.npz").is_file():
        return Atlas.load(path / "atlas.npz")
    if (path / "labels").is_dir() or (path / "innerorgans" / "labels").is_dir():
        return read_sio(path) if glossary is None else read_sio(path, glossary)
    niftis = sorted(p for p in path.iterdir() if p.is_file() and _is_nifti(p))
    if len(niftis) == 1:
        return read_nifti(niftis[0])
    found = f"{len(niftis)} NIfTI files — name one" if niftis else "nothing usable"
    raise DataError(f"no atlas here ({found}): expected atlas.npz, an SIO innerorgans/ folder (labels/*.tif "
                    "+ objectlist.txt) or its parent, or one .nii/.nii.gz with its label table", path=path)


def _guarded(problems: list[DataError], fn, *args):
    try:
        return fn(*args)
    except DataError as exc:
        problems.append(exc)
        return None


def check_atlas_files(path: str | Path, glossary: Glossary | None = SIO_GLOSSARY) -> CheckReport:
    """Every problem of an atlas (SIO folder, NIfTI + table, or atlas.npz) instead of the first one, and what
    was found: ``{"slices", "shape", "organs", "voxels", …}``."""
    path = Path(path)
    if not path.exists():
        raise DataError("atlas not found", path=path)
    if path.is_dir() and ((path / "labels").is_dir() or (path / "innerorgans" / "labels").is_dir()):
        return _check_sio(find_sio(path), glossary)
    target: Path | None = path
    if path.is_dir():
        niftis = sorted(p for p in path.iterdir() if p.is_file() and _is_nifti(p))
        single = niftis[0] if len(niftis) == 1 else None
        target = path / "atlas.npz" if (path / "atlas.npz").is_file() else single
    if target is not None and _is_nifti(target):
        return _check_nifti(target)
    problems: list[DataError] = []
    atlas = _guarded(problems, read_atlas, target or path)  # no atlas in a folder: says what was looked for
    return CheckReport(problems, {} if atlas is None else _atlas_summary(atlas))


def _atlas_summary(atlas: Atlas) -> dict:
    voxels = int(np.count_nonzero(atlas.organ_volume() >= 0))
    return {"shape": "x".join(map(str, atlas.shape)), "organs": atlas.num_organs, "voxels": voxels}


def _check_sio(root: Path, glossary: Glossary | None) -> CheckReport:
    import tifffile

    problems: list[DataError] = []
    files, listing = list_slices(root / "labels")
    problems += listing
    kinds: dict[Path, tuple] = {}
    for p in files:
        try:
            with tifffile.TiffFile(p) as tif:
                page = tif.pages[0]
                kinds[p] = (tuple(page.shape), np.dtype(page.dtype).str, len(tif.pages))
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a problem to list
            problems.append(DataError(f"unreadable TIFF ({type(exc).__name__}: {exc})", path=p))
    if kinds:
        usual = Counter(kinds.values()).most_common(1)[0][0]
        for p, kind in kinds.items():
            if kind != usual:
                problems.append(DataError(f"slice is {_kind(kind)}; the other slices are {_kind(usual)}",
                                          path=p))
        if len(usual[0]) != 2 or np.dtype(usual[1]).kind not in "ui":
            problems.append(DataError(f"slices are {_kind(usual)}: expected single 2-D integer label images",
                                      path=root / "labels"))
    summary: dict = {"slices": len(files)}
    raw: dict[str, list[int]] = {}
    try:
        classes, header = find_class_list(root)
        raw, parsed = parse_class_list(classes, header)
        problems += parsed
    except DataError as exc:
        problems.append(exc)
        classes = None
    organs, organ_labels, _ = _glossary_organs(raw, glossary)
    summary.update({"classes": len(raw), "organs": len(organs)})
    if classes is not None and raw and not organs:
        problems.append(DataError(f"no organ left after the glossary rules ({len(raw)} classes)",
                                  path=classes))
    if files and len(kinds) == len(files) and len(set(kinds.values())) == 1:  # all readable and alike
        volume = _guarded(problems, _read_stack, files[::-1])
        if volume is not None:
            summary["shape"] = "x".join(map(str, volume.shape))
            if organs:
                empty, _ = _absent_organs(volume, organs, organ_labels)
                if empty:
                    problems.append(DataError("organs without any voxel in the label volume: " + _listed(
                        [f"{o} (labels {organ_labels[o]})" for o in empty]), path=classes))
                wanted = np.array(sorted(v for o in organs for v in organ_labels[o]), dtype=np.int64)
                summary["voxels"] = int(np.isin(volume, wanted).sum())
            if volume.dtype.kind == "u" and volume.dtype.itemsize <= 2:  # values no class line names
                listed = {v for values in raw.values() for v in values}
                present = _present_values(volume, range(1, int(volume.max()) + 1))
                summary["unlisted label values"] = len(present - listed)
    return CheckReport(problems, summary)


def _kind(kind: tuple) -> str:
    shape, dtype, pages = kind
    text = "x".join(map(str, shape)) + f" {np.dtype(dtype)}"
    return text + (f" ({pages} pages)" if pages != 1 else "")


def _check_nifti(path: Path) -> CheckReport:
    problems: list[DataError] = []
    loaded = _guarded(problems, _nifti_volume, path)
    table = _guarded(problems, find_label_table, path)
    raw: dict[str, list[int]] = {}
    if table is not None:
        raw, parsed = parse_label_table(table)
        problems += parsed
    summary: dict = {"organs": 0}
    if loaded is not None:
        volume, spacing, _ = loaded
        problems += [p for p in [_spacing_problem(spacing, path)] if p]
        summary["shape"] = "x".join(map(str, volume.shape))
        summary["spacing"] = "x".join(f"{s:g}" for s in spacing)
        if raw:
            empty, _ = _absent_organs(volume, list(raw), raw)
            organs = [o for o in raw if o not in empty]
            summary.update({"organs": len(organs), "table entries without voxels": len(empty)})
            if not organs:
                problems.append(DataError(f"none of the table's labels occurs in {path.name}", path=table))
            wanted = np.array(sorted(v for o in organs for v in raw[o]), dtype=np.int64)
            summary["voxels"] = int(np.isin(volume, wanted).sum())
    return CheckReport(problems, summary)
