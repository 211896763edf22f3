"""``modalbridge distill-cache``: precompute a teacher ensemble's logits over a split (``--shard i/n``) or merge
the shards — what a user with 90k clips runs once instead of running the teachers every epoch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def distill_cache_cli(args: argparse.Namespace) -> int:
    from modalbridge.datasets.datamodules import (
        EpicKitchensDataModule,
        SomethingDataModule,
        SomethingLayoutDataModule,
    )
    from modalbridge.tasks.distill.module import (
        check_teacher_heads,
        load_teacher,
        merge_logit_shards,
        precompute_teacher_logits,
    )

    if args.merge:
        print(merge_logit_shards(args.merge, args.out))
        return 0
    if not args.teachers:
        raise SystemExit("distill-cache: give the teacher checkpoints with --teachers a.ckpt b.ckpt … "
                         "(or --merge shard files)")
    teachers = [load_teacher(p) for p in args.teachers]
    if args.weights:
        weights = {h: torch.tensor(w) for h, w in json.loads(Path(args.weights).read_text()).items()}
    else:
        weights = {h: torch.full((len(teachers),), 1 / len(teachers)) for h in teachers[0].heads}
    i, n = args.shard
    # decode only what the teachers read (a flow/audio/text-only ensemble never decodes RGB)
    inputs = tuple(dict.fromkeys(t.input_key for t in teachers))
    variant = args.variant or ("ssv2" if args.dataset == "ssv2" else "something-else/compositional")
    if args.dataset == "epic-kitchens-100":
        dm = EpicKitchensDataModule(args.root, modalities=inputs, num_frames=args.num_frames, stride=args.stride,
                                    size=args.size, audio_size=args.size)
    elif "categories" in inputs:  # an object (layout) teacher: the layout data module's clips, as RGB&OBJ trains
        modalities = tuple("layout" if k == "categories" else k for k in inputs)
        dm = SomethingLayoutDataModule(args.root, variant=variant, boxes=args.boxes, modalities=modalities,
                                       layout_frames=args.layout_frames, appearance_frames=args.num_frames,
                                       appearance_stride=args.stride, size=args.size, flow_root=args.flow_root)
    else:  # ssv2 / something-else: TSN segments as the student's SomethingDataModule samples them
        dm = SomethingDataModule(args.root, variant=variant, modalities=inputs, num_segments=args.num_frames,
                                 size=args.size, flow_root=args.flow_root)
    for teacher in teachers:
        check_teacher_heads(teacher, dm.heads, f" ({teacher.name})")
    dataset = dm.make_dataset(args.split, train=False)
    out = precompute_teacher_logits(teachers, weights, dataset, args.out, shard=(i, n), batch_size=args.batch_size,
                                    num_workers=args.num_workers, collate_fn=dm.collate_fn,
                                    precision=args.precision)
    print(out)
    return 0
