"""``modalbridge ground``: a medical text → a 3-D point in the atlas with a trained model, its nearest organs, a
picture (three orthogonal slices) and an interactive 3-D view; ``--retrieve``: the corpus documents nearest the
text's point, a point (``--xyz``) or an organ (``--organ``) — by physical distance for point models (spec §5),
in embedding space for the retrieval baselines.

    modalbridge ground "Resection of hepatocellular carcinoma in the right lobe." --ckpt runs/atlas/world/checkpoints/best-….ckpt
    modalbridge ground --retrieve --organ kidney --ckpt … -k 5
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalbridge.core.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["GroundingModel", "ground_cli", "parse_xyz"]

#: documents embedded per forward pass
BATCH = 32


def parse_xyz(text: str) -> np.ndarray:
    """``"12, -40.5, 3"`` → ``(3,)`` centred mm; anything else is an error naming ``--xyz``."""
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise DataError(f"--xyz {text!r}: expected three finite numbers 'x,y,z' in centred mm (e.g. 10,-40,25)",
                        field="--xyz")
    return np.asarray(values, dtype=np.float64)


class GroundingModel:
    """A trained atlas checkpoint ready for inference: the module, its tokenizer, its atlas and its corpus root.

    Args:
        ckpt: a ``.ckpt`` of :class:`~modalbridge.tasks.atlas.module.AtlasModule`.
        atlas: an atlas file to use instead of the training data's ``atlas.npz``.
        precision: ``auto`` | ``bf16-mixed`` | ``32-true``.
    """

    def __init__(self, ckpt: str | Path, atlas: str | Path | None = None, precision: str = "auto"):
        from modalbridge.core.engine import load_module_checkpoint, read_checkpoint
        from modalbridge.core.precision import resolve_precision
        from modalbridge.core.worlds import resolve_root
        from modalbridge.nn.bert import load_tokenizer
        from modalbridge.tasks.atlas.atlas import read_atlas
        from modalbridge.tasks.atlas.module import AtlasModule

        kind = read_checkpoint(ckpt).get("modalbridge_class")
        if kind != "AtlasModule":
            raise DataError(f"not an atlas checkpoint (written by {kind or 'an unknown module'}); give the .ckpt of "
                            "`modalbridge fit --config configs/atlas/…`", path=ckpt)
        self.module, data = load_module_checkpoint(str(ckpt), AtlasModule)
        hp: dict[str, Any] = data.get("hparams") or {}
        self.root: Path | None = None
        if atlas is None:
            try:
                self.root = Path(resolve_root(hp.get("root", "world://atlas/processed")))
            except (OSError, ValueError) as exc:
                raise DataError(f"the training data of this checkpoint ({hp.get('root')}) is not here ({exc}); give "
                                "its atlas with --atlas atlas.npz", path=ckpt) from None
            atlas = self.root / "atlas.npz"
        if not Path(atlas).exists():
            raise DataError("atlas not found (give --atlas: an atlas.npz written by `modalbridge data prepare atlas`, "
                            "an SIO innerorgans/ folder or a labelled NIfTI)", path=atlas)
        self.atlas = read_atlas(atlas)
        self.module.set_atlas(self.atlas)
        self.tokenizer = load_tokenizer(hp.get("tokenizer", "minilm-l6"))
        self.max_length = int(hp.get("max_length", 512))
        self.precision = resolve_precision(precision, "cpu")

    @property
    def output(self) -> str:
        """``point`` (SOD/MSE regressors, centre), ``logits`` (classifier), ``organ_probs`` (naive baselines) or
        ``embedding`` (retrieval baselines)."""
        return self.module.output

    def _forward(self, texts: list[str]) -> dict[str, torch.Tensor]:
        from torch.nn.utils.rnn import pad_sequence

        from modalbridge.core.precision import autocast
        from modalbridge.tasks.atlas.data import encode_texts

        ids = [torch.as_tensor(x, dtype=torch.long) for x in encode_texts(self.tokenizer, texts, self.max_length)]
        input_ids = pad_sequence(ids, batch_first=True, padding_value=0)
        mask = input_ids != 0
        with torch.inference_mode(), autocast(self.precision, "cpu"):
            out = self.module.model(input_ids, mask)
        return {k: v.float() for k, v in out.items()}

    def points(self, texts: list[str]) -> np.ndarray:
        """``(n, 3)`` centred-mm points of ``texts`` (batched); a retrieval model has none (an error)."""
        if self.output == "embedding":
            raise DataError("this checkpoint is a retrieval model (it embeds texts, it places no point); use "
                            "--retrieve with it, or a point model (configs/atlas/world.yaml)", field="--ckpt")
        parts = []
        for start in range(0, len(texts), BATCH):
            chunk = texts[start:start + BATCH]
            out = self._forward(chunk)
            index = torch.arange(start, start + len(chunk))
            parts.append(self.module.predict_points(out, index)[0].numpy())
        return np.concatenate(parts) if parts else np.zeros((0, 3))

    def embeddings(self, texts: list[str]) -> np.ndarray:
        """``(n, d)`` what retrieval ranks by: points (mm) for point models, embeddings for retrieval models."""
        if self.output != "embedding":
            return self.points(texts)
        return np.concatenate([self._forward(texts[s:s + BATCH])["embedding"].numpy()
                               for s in range(0, len(texts), BATCH)]) if texts else np.zeros((0, 1))


def _report_point(model: GroundingModel, point: np.ndarray, nearest: int) -> list[str]:
    atlas = model.atlas
    voxel = atlas.to_index(point[None])[0]
    organ = int(atlas.organ_at(point[None])[0])
    organs, dist = atlas.nearest_organs(point[None], k=min(nearest, atlas.num_organs))
    lines = [f"point (centred mm): x {point[0]:.1f}, y {point[1]:.1f}, z {point[2]:.1f}   voxel {tuple(int(v) for v in voxel)}"
             f"   inside: {atlas.organs[organ] if organ >= 0 else 'no organ'}",
             "nearest organs: " + ", ".join(f"{atlas.organs[o]} {d:.1f} mm" for o, d in zip(organs[0], dist[0])
                                            if o >= 0)]
    return lines


def _draw(model: GroundingModel, point: np.ndarray, args, title: str) -> list[str]:
    from modalbridge.tasks.atlas.render import atlas_html, slices_figure

    lines = []
    if args.picture:
        if Path(args.picture).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise DataError(f"--picture {args.picture!r}: give a file name ending in .png or .jpg", field="--picture")
        lines.append(f"picture: {slices_figure(model.atlas, point, args.picture, title=title, nearest=args.nearest)}")
    if args.html:
        if Path(args.html).suffix.lower() not in (".html", ".htm"):
            raise DataError(f"--html {args.html!r}: give a file name ending in .html (or '' to skip)", field="--html")
        lines.append(f"3-D view: {atlas_html(model.atlas, {'prediction': point[None]}, args.html, title=title)}")
    return lines


def _corpus(model: GroundingModel, path: str | None) -> tuple[Path, list[dict]]:
    from modalbridge.tasks.atlas.bioasq import read_records

    if path is None:
        if model.root is None:
            raise DataError("give --corpus: a processed split JSON (dataset_test.json) to retrieve from", field="--corpus")
        path = model.root / "dataset_test.json"
    path = Path(path)
    if not path.is_file():
        raise DataError("corpus not found (a processed split JSON written by `modalbridge data prepare atlas`)",
                        path=path)
    records = read_records(path, organs=model.atlas.organs)
    if not records:
        raise DataError("the corpus holds no document", path=path)
    return path, records


def _retrieve(model: GroundingModel, args) -> int:
    import scipy.spatial

    queries = [q for q in (args.text and "text", args.xyz and "--xyz", args.organ and "--organ") if q]
    if len(queries) != 1:
        raise DataError("--retrieve needs exactly one query: a text, --xyz x,y,z or --organ NAME"
                        + (f" (got {', '.join(queries)})" if queries else ""), field="--retrieve")
    if args.k < 1:
        raise DataError(f"-k {args.k}: give a positive number of documents", field="-k")
    path, records = _corpus(model, args.corpus)
    if args.xyz or args.organ:
        if model.output == "embedding":
            raise DataError("a retrieval model embeds texts, not locations: query it with a text, or use a point "
                            "model for --xyz/--organ", field="--ckpt")
        point = parse_xyz(args.xyz) if args.xyz else model.atlas.centre(model.atlas.organ_index(args.organ))
        query, described = np.asarray(point, np.float64)[None], f"point {np.round(point, 1).tolist()} mm"
    else:
        query, described = model.embeddings([args.text]), "the text's " + (
            "embedding" if model.output == "embedding" else "point")
    docs = model.embeddings([r["text"] for r in records])
    k = min(args.k, len(records))
    dist, idx = scipy.spatial.cKDTree(docs).query(query, k=k)
    dist, idx = np.atleast_1d(dist[0]), np.atleast_1d(idx[0])
    unit = "" if model.output == "embedding" else " mm"
    print(f"{k} documents of {path} ({len(records)}) nearest {described}:")
    for rank, (d, i) in enumerate(zip(dist, idx), start=1):
        r = records[int(i)]
        title = (r.get("title") or r["text"])[:90]
        print(f"{rank:3d}. {d:8.1f}{unit}  pmid {r.get('pmid', '?')}  [{', '.join(r.get('organ_names') or [])}]  {title}")
    return 0


def ground_cli(args) -> int:
    model = GroundingModel(args.ckpt, getattr(args, "atlas", None), args.precision)
    if args.nearest < 1:
        raise DataError(f"--nearest {args.nearest}: give a positive number of organs", field="--nearest")
    if args.retrieve:
        return _retrieve(model, args)
    if args.xyz or args.organ or args.corpus:
        raise DataError("--xyz, --organ and --corpus are --retrieve's options", field="--retrieve")
    text = (args.text or "").strip()
    if not text:
        raise DataError("the text is empty; give a medical text to ground, e.g. \"Hepatocellular carcinoma of the "
                        "liver.\"", field="text")
    point = model.points([text])[0]
    for line in _report_point(model, point, args.nearest):
        print(line)
    for line in _draw(model, point, args, title=text[:80] + ("…" if len(text) > 80 else "")):
        print(line)
    return 0
