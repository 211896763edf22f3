"""``modalbridge data prepare atlas`` and ``modalbridge data check atlas``: an atlas plus the BioASQ corpus →
a processed folder (spec ``text2atlas.md`` §2).

**Raw root** (``<root>``; ``--atlas`` / ``--bioasq`` point elsewhere):

* the atlas — ``innerorgans/`` (the SIO zip's folder: ``labels/*.tif`` + ``objectlist.txt``), or ``labels/``
  directly under the root, or ``atlas.npz``, or one ``*.nii`` / ``*.nii.gz`` with its label table beside it
  (read by :func:`~modalbridge.tasks.atlas.atlas.read_atlas`);
* the corpus — ``bioasq/`` (``*.ndjson``), or the official ``allMeSH*.json``, or ``*.ndjson`` in the root
  (read by :func:`~modalbridge.tasks.atlas.bioasq.iter_bioasq`).

**Processed folder** (``--out``, default ``<root>/processed``; what the data module reads):

* ``atlas.npz`` (:meth:`Atlas.save`) and ``organs/*.json`` (the reference's organ dictionaries,
  :meth:`Atlas.export_dicts`);
* ``dataset.json`` — every record (format: :mod:`~modalbridge.tasks.atlas.bioasq`), and
  ``dataset_{train,val,test}.json`` — the seeded 70/15/15 split;
* ``prepare_summary.json`` — the options, sources and counts (articles read, skips, filters, patches, splits).

Options: ``--cap`` (500, per organ and pool), ``--seed`` (0: shuffle and split), ``--tokenizer`` (the
length filter's WordPiece tokenizer, default ``minilm-l6`` = the bert-base-uncased vocabulary; ``none`` skips
the filter), ``--max-tokens`` (512: keep texts with fewer ids, [CLS]/[SEP] included).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from modalbridge.core.errors import DataError
from modalbridge.datasets.check import MAX_LISTED, CheckReport
from modalbridge.tasks.atlas import bioasq as B

__all__ = ["DEFAULTS", "SPLITS", "PreparedAtlas", "check_atlas", "find_atlas", "find_bioasq",
           "prepare_atlas", "processed_folder"]

SPLITS = ("train", "val", "test")
#: ``data prepare atlas`` options and their defaults (``args`` may lack any of them)
DEFAULTS = {"atlas": None, "bioasq": None, "glossary": None, "cap": 500, "seed": 0, "tokenizer": "minilm-l6", "max_tokens": 512}
NIFTI = ("*.nii.gz", "*.nii")


class PreparedAtlas(dict):
    """``{name: written path}`` (what ``data prepare`` prints); ``.summary``: the counts of
    ``prepare_summary.json``."""

    summary: dict


def _option(args, name: str):
    value = getattr(args, name, None) if args is not None else None
    return DEFAULTS[name] if value is None else value


# ============================================================================================ sources
def find_atlas(root: str | Path, atlas: str | Path | None = None) -> Path:
    """The atlas to read (module docstring): ``atlas`` when given, else the first found under ``root``."""
    if atlas is not None:
        atlas = Path(atlas)
        if not atlas.exists():
            raise DataError("atlas not found (--atlas: an SIO innerorgans/ folder, atlas.npz or .nii/.nii.gz)",
                            path=atlas)
        return atlas
    root = Path(root)
    for candidate in (root / "innerorgans", root):
        if (candidate / "labels").is_dir():
            return candidate
    if (root / "atlas.npz").is_file():
        return root / "atlas.npz"
    volumes = sorted({p for pattern in NIFTI for p in root.glob(pattern)})
    if len(volumes) == 1:
        return volumes[0]
    if volumes:
        raise DataError(f"several NIfTI volumes ({', '.join(p.name for p in volumes)}); choose one with --atlas",
                        path=root)
    raise DataError("no atlas: expected innerorgans/ (the SIO zip's folder with labels/ and objectlist.txt), "
                    "labels/, atlas.npz or one .nii/.nii.gz here, or --atlas PATH", path=root)


def find_bioasq(root: str | Path, bioasq: str | Path | None = None) -> Path:
    """The BioASQ articles to read: ``bioasq`` when given, else ``root/bioasq``, ``root/allMeSH*.json`` or the
    ``*.ndjson`` files of ``root``."""
    if bioasq is not None:
        return Path(bioasq)
    root = Path(root)
    if (root / "bioasq").is_dir():
        return root / "bioasq"
    official = sorted(root.glob("allMeSH*.json*"))
    if official:
        return official[0]
    if any(root.glob("*.ndjson")):
        return root
    raise DataError("no BioASQ articles: expected bioasq/ (*.ndjson), allMeSH_2020.json or *.ndjson here, or "
                    "--bioasq PATH", path=root)


def _load_tokenizer(name: str):
    if str(name).lower() in ("", "none"):
        return None
    from modalbridge.nn.bert import load_tokenizer

    return load_tokenizer(name)


def _write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ============================================================================================ prepare
def prepare_atlas(root: str | Path, out: str | Path | None = None, args=None) -> PreparedAtlas:
    """``modalbridge data prepare atlas <root>`` (module docstring). ``args``: the parsed options (any may be
    missing: :data:`DEFAULTS`). Returns the written files; ``.summary`` holds the counts."""
    from modalbridge.tasks.atlas.atlas import read_atlas

    root = Path(root)
    out = Path(out) if out is not None else root / "processed"
    atlas_path = find_atlas(root, _option(args, "atlas"))
    corpus_path = find_bioasq(root, _option(args, "bioasq"))
    cap, seed = int(_option(args, "cap")), int(_option(args, "seed"))
    max_tokens, tokenizer_name = int(_option(args, "max_tokens")), str(_option(args, "tokenizer"))
    if cap < 1 or max_tokens < 3:
        raise DataError(f"--cap must be ≥ 1 and --max-tokens ≥ 3, got {cap} and {max_tokens}")
    glossary_file = _option(args, "glossary")
    glossary = None
    if glossary_file is not None:
        from modalbridge.tasks.atlas.glossary import load_glossary

        glossary = load_glossary(glossary_file)
    atlas = read_atlas(atlas_path, glossary)
    summary: dict = {"glossary": str(glossary_file) if glossary_file else "SIO (built in)", "atlas": str(atlas_path), "bioasq": str(corpus_path), "organs": len(atlas.organs),
                     "cap": cap, "seed": seed, "tokenizer": tokenizer_name, "max_tokens": max_tokens}
    counts: dict = {}
    records = B.build_corpus(B.iter_bioasq(corpus_path, counts=counts), atlas.organs, atlas.aliases, cap=cap,
                             seed=seed, tokenizer=_load_tokenizer(tokenizer_name), max_tokens=max_tokens,
                             summary=counts)
    summary.update(counts)
    if not records:
        raise DataError(f"no article kept (counts: {counts}); do the MeSH terms name the atlas' organs "
                        f"({', '.join(atlas.organs[:8])}, …)?", path=corpus_path)
    splits = B.split_records(records, seed)
    summary["splits"] = {name: len(part) for name, part in splits.items()}
    summary["records per organ"] = dict(sorted(Counter(n for r in records for n in r["organ_names"]).items()))
    written = PreparedAtlas()
    written["atlas"] = atlas.save(out / "atlas.npz")
    for path in atlas.export_dicts(out / "organs"):
        written[f"organs/{Path(path).stem}"] = Path(path)
    written["dataset"] = _write_json(out / "dataset.json", records)
    for name, part in splits.items():
        written[f"dataset_{name}"] = _write_json(out / f"dataset_{name}.json", part)
    written["summary"] = _write_json(out / "prepare_summary.json", summary)
    written.summary = summary
    return written


# ============================================================================================ check
def processed_folder(root: str | Path) -> Path | None:
    """``root`` or ``root/processed`` when it holds a ``dataset_{train,val,test}.json`` split, else None."""
    root = Path(root)
    for folder in (root, root / "processed"):
        if any((folder / f"dataset_{s}.json").is_file() for s in SPLITS):
            return folder
    return None


def check_atlas(root: str | Path) -> CheckReport:
    """``modalbridge data check atlas <root>``: every problem of a raw root (atlas files and the BioASQ
    articles) or, when it (or ``root/processed``) holds processed files, of the processed folder; and a
    summary of what was found."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, expected the dataset folder" if root.exists() else "dataset folder not found"
        raise DataError(f"{what} (give the folder with innerorgans/ and bioasq/, or a processed folder)",
                        path=root)
    folder = processed_folder(root)
    return _check_processed(folder) if folder is not None else _check_raw(root)


def _capped(problems: list[DataError], start: int, where: Path | str) -> None:
    """Keep at most :data:`MAX_LISTED` of the problems added since ``start``, then one summarising line."""
    extra = len(problems) - start - MAX_LISTED
    if extra > 0:
        del problems[start + MAX_LISTED:]
        problems.append(DataError(f"... and {extra} more problems of this kind", path=where))


def _check_raw(root: Path) -> CheckReport:
    from modalbridge.tasks.atlas.atlas import check_atlas_files, read_atlas

    problems: list[DataError] = []
    summary: dict = {}
    atlas = None
    try:
        atlas_path = find_atlas(root)
        found, atlas_summary = check_atlas_files(atlas_path)
        problems += found
        summary.update(atlas_summary)
        if not found:
            atlas = read_atlas(atlas_path)
    except DataError as exc:
        problems.append(exc)
    try:
        corpus = find_bioasq(root)
    except DataError as exc:
        problems.append(exc)
        return CheckReport(problems, summary)
    counts: dict = {}
    start = len(problems)
    index = B.AliasIndex(B.alias_lists(atlas.aliases, atlas.organs)) if atlas is not None else None
    articles = with_organ = animal = 0
    try:
        for path, line, article in B.iter_bioasq(corpus, counts=counts, errors=problems):
            articles += 1
            problem = B.article_problem(article)
            if problem is not None:
                counts["missing fields"] = counts.get("missing fields", 0) + 1
                problems.append(DataError(problem[1], path=path, row=line, field=problem[0]))
                continue
            if index is not None and index.mesh(article["meshMajor"]):
                with_organ += 1
                animal += B.is_animal(article["meshMajor"])
    except DataError as exc:
        problems.append(exc)
    _capped(problems, start, corpus)
    summary.update({"articles": articles, **counts})
    if index is not None:
        summary.update({"articles with an organ": with_organ, "animal articles with an organ": animal})
        if articles and not with_organ:
            problems.append(DataError("no article has a MeSH term naming an atlas organ (the corpus would be "
                                      "empty)", path=corpus))
    return CheckReport(problems, summary)


def _check_processed(folder: Path) -> CheckReport:
    from modalbridge.tasks.atlas.atlas import Atlas

    problems: list[DataError] = []
    summary: dict = {}
    organs = None
    try:
        atlas = Atlas.load(folder / "atlas.npz")
        organs = atlas.organs
        summary["organs"] = len(organs)
    except (DataError, OSError, ValueError, KeyError) as exc:
        problems.append(exc if isinstance(exc, DataError) else
                        DataError(f"cannot read the atlas ({exc}); run `modalbridge data prepare atlas`",
                                  path=folder / "atlas.npz"))
    counts: dict = {}
    pmids: dict[str, set] = {}
    used: set[int] = set()
    for split in SPLITS:
        path = folder / f"dataset_{split}.json"
        if not path.is_file():
            problems.append(DataError(f"missing the {split} split", path=path))
            continue
        start = len(problems)
        try:
            records = B.read_records(path, organs=organs, counts=counts, errors=problems)
        except DataError as exc:
            problems.append(exc)
            continue
        _capped(problems, start, path)
        summary[f"{split} records"] = len(records)
        summary[f"{split} without occurrence organs"] = sum(not r["occ_organ_indices"] for r in records)
        pmids[split] = {str(r["pmid"]) for r in records if r["pmid"] is not None}
        used.update(i for r in records for i in r["organ_indices"])
    summary.update(counts)
    if organs is not None:
        summary["organs with records"] = len(used)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = pmids.get(a, set()) & pmids.get(b, set())
        if shared:
            problems.append(DataError(f"{len(shared)} pmid(s) are in both {a} and {b} (e.g. "
                                      f"{sorted(shared)[0]}): the split leaks", path=folder / f"dataset_{b}.json"))
    return CheckReport(problems, summary)
