"""``modalbridge encode-kg``: a trained pre-ranker's KG index built as a batch job — sharded over processes or
machines, resumable, then merged into one index folder (spec ``fact_linking.md`` §5, §10).

Encoding the Large KG is the expensive part of serving (5.8 M entries: ≈ 2 h on 2 CPU cores in bf16, minutes on a
few GPUs). It is embarrassingly parallel:

1. ``modalbridge encode-kg --ckpt C --out DIR --shard i/n`` (one per worker, any order, any machine sharing DIR):
   shard ``i`` of ``n`` is a contiguous block of the KG's entity rows (and of the predicate rows), encoded
   ``chunk`` entries at a time into ``DIR/shards/<kind>.shard-i-of-n.part-<k>.npy`` (float32, unit rows). A part
   is written atomically (temporary name, then renamed); a re-run skips the parts already there, so an
   interrupted worker resumes where it stopped. ``DIR/shards/manifest.json`` records the encoder's fingerprint
   and the KG size; a worker with another checkpoint or KG is refused.
2. ``modalbridge encode-kg --ckpt C --out DIR --merge --shards n [--kind flat|flat16|ivfpq]``: when every part
   of every shard is there, the vectors are added in KG order to one FAISS index per kind (IVF-PQ first trains
   on a sample), saved in the reference layout (``faiss_index_entity``, ``index2entity.json`` … + ``meta.json``
   with the fingerprint) — what ``modalbridge link --index DIR`` loads (and refuses for another encoder).

Without ``--shard`` / ``--merge`` both steps run in this process (``--shard 0/1`` then the merge).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from modalbridge.core.errors import DataError
from modalbridge.tasks.facts.kg import parse_shard
from modalbridge.tasks.facts.search import INDEX_KINDS

log = logging.getLogger(__name__)

__all__ = ["CHUNK", "encode_shard", "merge_shards", "shard_rows"]

#: entries encoded per part file (bounds memory and the work lost to an interruption)
CHUNK = 65_536


def shard_rows(total: int, shard: int, shards: int) -> tuple[int, int]:
    """``[start, stop)`` of shard ``shard`` of ``shards`` contiguous blocks over ``total`` rows (sizes differ by at
    most one)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    base, extra = divmod(total, shards)
    start = shard * base + min(shard, extra)
    return start, start + base + (shard < extra)


def _part(folder: Path, kind: str, shard: int, shards: int, k: int) -> Path:
    return folder / "shards" / f"{kind}.shard-{shard}-of-{shards}.part-{k}.npy"


def _manifest(folder: Path, fingerprint: str, sizes: dict[str, int], shards: int) -> None:
    """Write or check ``shards/manifest.json`` (the same encoder, KG size and shard count for every worker)."""
    path = folder / "shards" / "manifest.json"
    wanted = {"fingerprint": fingerprint, "sizes": sizes, "shards": shards}
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != wanted:
            raise DataError(f"these shards were started with another encoder, KG or shard count ({found}); this run "
                            f"has {wanted}: use another --out, or the same checkpoint, KG and n", path=path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(wanted, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _sizes(kg) -> dict[str, int]:
    return {kind: len(kg.table(table)) for kind, table in INDEX_KINDS}


def encode_shard(module, kg, folder: str | Path, fingerprint: str, shard: str = "0/1", chunk: int = CHUNK,
                 autocast=None) -> dict[str, int]:
    """Encode shard ``"i/n"`` of ``kg`` with ``module`` (a :class:`~.module.FactsModule` attached to its data
    module) into part files under ``folder/shards``; returns ``{"encoded": parts written, "skipped": parts found}``.
    ``autocast``: a context-manager factory for mixed precision (default none)."""
    import contextlib

    i, n = parse_shard(shard)
    folder = Path(folder)
    _manifest(folder, fingerprint, _sizes(kg), n)
    counts = {"encoded": 0, "skipped": 0}
    for kind, table in INDEX_KINDS:
        start, stop = shard_rows(len(kg.table(table)), i, n)
        for k, first in enumerate(range(start, stop, chunk)):
            path = _part(folder, kind, i, n, k)
            if path.is_file():
                counts["skipped"] += 1
                continue
            rows = np.arange(first, min(first + chunk, stop))
            with torch.inference_mode(), (autocast() if autocast else contextlib.nullcontext()):
                vectors = module.encode_entries(table, rows).float().cpu().numpy()
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            os.replace(tmp, path)
            counts["encoded"] += 1
    return counts


def _parts(folder: Path, kind: str, total: int, shards: int, chunk: int) -> list[Path]:
    paths, missing = [], []
    for i in range(shards):
        start, stop = shard_rows(total, i, shards)
        for k in range(len(range(start, stop, chunk))):
            path = _part(folder, kind, i, shards, k)
            (paths if path.is_file() else missing).append(path)
    if missing:
        raise DataError(f"{len(missing)} {kind} part(s) are not encoded yet (first: {missing[0].name}): run the "
                        "missing --shard i/n first", path=folder / "shards")
    return paths


def merge_shards(kg, folder: str | Path, fingerprint: str, shards: int, index_kind: str = "flat",
                 chunk: int = CHUNK, **options) -> Path:
    """Every shard's parts → one FAISS index per kind (``index_kind`` "flat" | "flat16" | "ivfpq", ``options``
    :class:`~.index.FaissIndex`'s), saved in ``folder`` in the reference layout with ``fingerprint``."""
    from modalbridge.tasks.facts.index import FaissIndex

    folder = Path(folder)
    _manifest(folder, fingerprint, _sizes(kg), shards)
    for kind, table in INDEX_KINDS:
        ids = kg.table(table).ids
        paths = _parts(folder, kind, len(ids), shards, chunk)
        first = np.load(paths[0], mmap_mode="r")
        index = FaissIndex(first.shape[1], index_kind, fingerprint=fingerprint, **options)
        if index_kind == "ivfpq":
            index.train(np.concatenate([np.load(p, mmap_mode="r") for p in paths[:4]]))
        index.reserve(len(ids))
        row = 0
        for path in paths:
            vectors = np.load(path)
            index.add(ids.take(np.arange(row, row + len(vectors))).tolist(), vectors)
            row += len(vectors)
        index.save(folder, kind=kind, embeddings=index_kind == "flat")
        log.info("%s index: %d vectors of %d parts", kind, row, len(paths))
    return folder


def encode_kg_cli(args) -> int:
    """``modalbridge encode-kg``: encode a shard, merge the shards, or both (module docstring)."""
    from modalbridge.core.precision import autocast, resolve_precision
    from modalbridge.tasks.facts.index import encoder_fingerprint
    from modalbridge.tasks.facts.infer import _datamodule, _load_module

    if args.chunk < 1:
        raise DataError(f"--chunk {args.chunk}: give a positive number of entries", field="--chunk")
    module, hparams = _load_module(args.ckpt)
    if module.kind == "reranker":
        module.model = None  # only its frozen pre-ranker encodes the KG
    dm = _datamodule(hparams, args.kg, args.ckpt)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = module.to(device).eval().attach(dm)
    name = "slot_linker" if module.linker is not None else module.hparams.model
    fingerprint = encoder_fingerprint(name, module.encoder)
    precision = resolve_precision(args.precision, device.type)
    out = Path(args.out)
    if not args.merge:
        counts = encode_shard(module, dm.kg, out, fingerprint, args.shard or "0/1", args.chunk,
                              lambda: autocast(precision, device.type))
        print(f"shard {args.shard or '0/1'}: {counts['encoded']} part(s) encoded, {counts['skipped']} already there "
              f"({fingerprint}, {precision})")
    if args.merge or not args.shard:
        shards = args.shards if args.merge else 1
        merge_shards(dm.kg, out, fingerprint, shards, args.index_kind, args.chunk)
        print(f"index ({args.index_kind}) of {len(dm.kg.entities):,} entities and {len(dm.kg.predicates):,} "
              f"predicates written to {out} ({fingerprint}); use it with modalbridge link --index {out}")
    return 0
