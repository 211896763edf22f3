"""What ``modalbridge data prepare|flow|pack`` run for the shared video datasets (declared by the task
plugins that read them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modalbridge.core.progress import progress
from modalbridge.core.worlds import resolve_root


def prepare_something_else(root: Path, out: Path | None, args: argparse.Namespace) -> dict[str, Path]:
    """Something-Else split lists + box parts → ``train_dataset.json`` / ``val_dataset.json`` (STLT format)."""
    from modalbridge.datasets.boxes import convert_something_else, find_box_parts, write_layouts
    from modalbridge.datasets.something import SomethingSomething

    out = Path(out or root)
    dataset = SomethingSomething(root, variant=getattr(args, "variant", None) or "something-else/compositional")
    parts = find_box_parts(root)
    written = {}
    for split, name in progress((("train", "train_dataset.json"), ("validation", "val_dataset.json")),
                                "prepare something-else", unit="split"):
        layouts = convert_something_else(dataset.videos(split), parts, root / "videoid2size.json")
        written[split] = write_layouts(out / name, layouts)
    return written


def prepare_action_genome(root: Path, out: Path | None, args: argparse.Namespace) -> dict[str, Path]:
    """Action Genome pickles + Charades CSVs → unified layout JSONs (needs ``--allow-pickle``)."""
    from modalbridge.datasets.action_genome import prepare_action_genome as prepare

    return prepare(root, out, allow_pickle=bool(getattr(args, "allow_pickle", False)))


def flow_cli(args: argparse.Namespace) -> int:
    """``modalbridge data flow``: stride-1 optical flow of SSv2 / Something-Else videos, one shard (progress
    through :func:`~modalbridge.core.progress.progress`; failures are listed at the end)."""
    from modalbridge.datasets.something import SomethingSomething
    from modalbridge.io.flow import extract_flow_tree

    dataset = SomethingSomething(resolve_root(args.root), variant=args.variant, flow_root=args.out)
    splits = [name.strip() for name in args.split.split(",") if name.strip()]
    ids = [video.id for split in splits for video in dataset.videos(split)]
    i, n = args.shard
    print(f"flow: {dataset.variant} {'+'.join(splits)}, shard {i}/{n} of {len(dict.fromkeys(ids))} videos, "
          f"method {args.method}, stride 1 → {dataset.flow_root}", flush=True)
    summary = extract_flow_tree(ids, dataset.video_path, dataset.flow_root, stride=1, method=args.method,
                                shard=args.shard, overwrite=args.overwrite)
    print(f"done {len(summary.done)}, skipped {len(summary.skipped)}, failed {len(summary.failed)} of "
          f"{summary.total} videos in {summary.seconds:.1f} s")
    if summary.failed:
        print("failed videos:")
        for video_id, reason in summary.failed.items():
            print(f"  {video_id}: {reason}")
        return 1
    return 0


def pack_cli(args: argparse.Namespace) -> int:
    """``modalbridge data pack``: the reference's packed HDF5 files (progress per file through
    :func:`~modalbridge.core.progress.progress`)."""
    from modalbridge.datasets.packed import pack_epic, pack_something

    root = resolve_root(args.root)
    epic = args.dataset == "epic-kitchens-100"
    default = "rgb,flow,audio" if epic else "rgb"
    modalities = [m.strip() for m in (args.modalities or default).split(",") if m.strip()]
    splits = [s.strip() for s in args.split.split(",") if s.strip()] if args.split else None
    print(f"pack: {args.dataset} {root} ({', '.join(modalities)}) → {args.out}", flush=True)
    if epic:
        summary = pack_epic(root, args.out, modalities=modalities, splits=splits, quality=args.quality)
    else:
        variant = args.variant or ("ssv2" if args.dataset == "ssv2" else "something-else/compositional")
        summary = pack_something(root, args.out, variant=variant, modalities=modalities, splits=splits,
                                 flow_root=args.flow_root, quality=args.quality)
    for modality, path in summary.files.items():
        size = path.stat().st_size / 2**20
        print(f"{modality}: {path} — {summary.datasets[modality]} datasets, {summary.elements[modality]} "
              f"{'samples' if modality == 'audio' else 'JPEGs'}, {size:.1f} MiB")
    print(f"done in {summary.seconds:.1f} s")
    return 0
