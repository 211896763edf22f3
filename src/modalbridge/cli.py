"""``modalbridge`` command line.

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) go through LightningCLI with YAML
configs and dotted overrides; the other verbs are plain sub-commands::

    modalbridge fit --config configs/actions/world.yaml [--trainer.max_epochs 3]
    modalbridge demo                      # the main job on the embedded world
    modalbridge world actions             # build/locate an embedded world
    modalbridge data check epic-kitchens-100 /data/EPIC-KITCHENS
    modalbridge recognize clip.mp4 --ckpt runs/actions/world/checkpoints/last.ckpt
    modalbridge recognize 123.webm --ckpt runs/layouts/world_stlt/checkpoints/last.ckpt --picture p.png
    modalbridge data prepare something-else /data/something-else --out /data/layouts
    modalbridge data flow --root /data/something-something-v2 --shard 0/8   # stride-1 optical flow
    modalbridge data pack --dataset epic-kitchens-100 --root /data/EPIC-KITCHENS --out /data/ek-packed
    modalbridge models                    # list registered models
    modalbridge bench all
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

LIGHTNING_VERBS = ("fit", "validate", "test", "predict")

# embedded world per task name used by ``modalbridge world <task>``
TASK_WORLDS = {"actions": "kitchen", "distill": "kitchen-distill", "layouts": "kitchen-layouts"}


def _check_init_from(cfg) -> None:
    """Fail before building anything, with the weights resolver's message, when a checkpoint named by
    ``model.init_args.init_from`` (a path or ``{branch: path}``) cannot be found."""
    from modalbridge.core.weights import resolve_weights

    init = getattr(getattr(cfg.model, "init_args", None), "init_from", None)
    if init is None or isinstance(init, str):
        paths = [init]
    else:  # {branch: path}, a dict or a jsonargparse Namespace
        paths = list((init if isinstance(init, dict) else vars(init)).values())
    for path in filter(None, paths):
        resolve_weights(path)


def _lightning(argv: list[str]) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI

    from modalbridge.core.paths import runs_dir
    from modalbridge.core.runs import KillAtEpoch, RunDirCallback

    class ModalbridgeCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.add_argument("--task", default="actions", help="task folder of the run (runs/<task>/<name>)")
            parser.add_argument("--run_name", default="default", help="run name (runs/<task>/<name>)")
            parser.add_argument("--monitor", default="val/action_top1", help="metric selecting the best ckpt")
            parser.link_arguments("data.heads", "model.init_args.heads", apply_on="instantiate")

        def before_instantiate_classes(self) -> None:
            cfg = self.config[self.subcommand] if self.subcommand else self.config
            if cfg.trainer.default_root_dir in (None, "", "."):
                cfg.trainer.default_root_dir = str(runs_dir() / cfg.task / cfg.run_name)
            self._monitor = cfg.monitor
            _check_init_from(cfg)

        def instantiate_trainer(self, **kwargs):
            kwargs.setdefault("callbacks", [])
            # saved at train-epoch end (after validation): a checkpoint written at validation end holds a
            # half-finished epoch whose resume replays the previous epoch's sampler order
            # Two callbacks: since Lightning 2.x ``save_last=True`` next to a monitor only refreshes last.ckpt when a
            # new best is saved (last.ckpt = the best epoch, resume restarts from it); the second one writes
            # last.ckpt after every epoch.
            kwargs["callbacks"] = list(kwargs["callbacks"]) + [
                ModelCheckpoint(monitor=self._monitor, mode="max", filename="best-{epoch}",
                                save_on_train_epoch_end=True),
                ModelCheckpoint(monitor=None, save_top_k=1, filename="last", enable_version_counter=False,
                                save_on_train_epoch_end=True)]
            return super().instantiate_trainer(**kwargs)

    callbacks = [RunDirCallback()]
    if os.environ.get("MODALBRIDGE_KILL_AT_EPOCH"):
        callbacks.append(KillAtEpoch(int(os.environ["MODALBRIDGE_KILL_AT_EPOCH"])))
    ModalbridgeCLI(
        args=argv,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"logger": False, "use_distributed_sampler": False, "reload_dataloaders_every_n_epochs": 1,
                          "callbacks": callbacks, "enable_progress_bar": not os.environ.get("CI")},
        parser_kwargs={"prog": f"modalbridge {argv[0] if argv else ''}".strip()},
    )


def _world(args) -> int:
    from modalbridge.core.worlds import world_builder

    name = TASK_WORLDS.get(args.task, args.task)
    root = world_builder(name)()
    print(root)
    return 0


def _data_check(args) -> int:
    from modalbridge.io.check import check_dataset, format_report

    problems = check_dataset(args.dataset, Path(args.root))
    print(format_report(problems))
    return 1 if problems else 0


def _models(args) -> int:
    from modalbridge.core.registry import list_models, model_entry

    for name in list_models(args.task):
        e = model_entry(name)
        print(f"{name:24s} {e.task:10s} {e.doc}")
    return 0


def _recognize(args) -> int:
    from modalbridge.tasks.layouts.infer import is_layout_checkpoint, recognize_layouts

    if is_layout_checkpoint(args.ckpt):
        result = recognize_layouts(args.video, args.ckpt, boxes=args.boxes, top_k=args.top, picture=args.picture)
    else:
        from modalbridge.tasks.actions.infer import recognize

        result = recognize(args.video, args.ckpt, top_k=args.top)
    for head, top in result.items():
        print(f"{head}:")
        for rank, (label, p) in enumerate(top, 1):
            print(f"  {rank}. {label:30s} {100 * p:5.1f}%")
    if getattr(args, "picture", None) and is_layout_checkpoint(args.ckpt):
        print(f"picture: {args.picture}")
    return 0


def _data_prepare(args) -> int:
    if args.dataset == "action-genome":
        from modalbridge.io.action_genome import prepare_action_genome

        written = prepare_action_genome(args.root, args.out, allow_pickle=args.allow_pickle)
    else:
        from modalbridge.io.boxes import convert_something_else, find_box_parts, write_layouts
        from modalbridge.io.something import SomethingSomething

        root, out = Path(args.root), Path(args.out or args.root)
        dataset = SomethingSomething(root, variant=args.variant)
        parts = find_box_parts(root)
        written = {}
        for split, name in (("train", "train_dataset.json"), ("validation", "val_dataset.json")):
            layouts = convert_something_else(dataset.videos(split), parts, root / "videoid2size.json")
            written[split] = write_layouts(out / name, layouts)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n`` (an argparse type)."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n such as 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n, got {text!r}")
    return index, count


def _data_flow(args) -> int:
    import time

    from modalbridge.core.worlds import resolve_root
    from modalbridge.io.flow import extract_flow_tree
    from modalbridge.io.something import SomethingSomething

    dataset = SomethingSomething(resolve_root(args.root), variant=args.variant, flow_root=args.out)
    splits = [name.strip() for name in args.split.split(",") if name.strip()]
    ids = [video.id for split in splits for video in dataset.videos(split)]
    started = time.perf_counter()
    every = max(1, len(ids) // (100 * args.shard[1]))  # about 100 progress lines per shard

    def progress(position: int, total: int, video_id: str, outcome: str) -> None:
        if outcome == "failed" or position % every == 0 or position == total:
            elapsed = time.perf_counter() - started
            print(f"[{position}/{total}] {video_id}: {outcome} ({elapsed:.0f} s, "
                  f"{position / max(elapsed, 1e-9):.1f} videos/s)", flush=True)

    i, n = args.shard
    print(f"flow: {dataset.variant} {'+'.join(splits)}, shard {i}/{n} of {len(dict.fromkeys(ids))} videos, "
          f"method {args.method}, stride 1 → {dataset.flow_root}", flush=True)
    summary = extract_flow_tree(ids, dataset.video_path, dataset.flow_root, stride=1, method=args.method,
                                shard=args.shard, overwrite=args.overwrite, progress=progress)
    print(f"done {len(summary.done)}, skipped {len(summary.skipped)}, failed {len(summary.failed)} of "
          f"{summary.total} videos in {summary.seconds:.1f} s")
    if summary.failed:
        print("failed videos:")
        for video_id, reason in summary.failed.items():
            print(f"  {video_id}: {reason}")
        return 1
    return 0


def _data_pack(args) -> int:
    from modalbridge.core.worlds import resolve_root
    from modalbridge.io.packed import pack_epic, pack_something

    root = resolve_root(args.root)
    epic = args.dataset == "epic-kitchens-100"
    default = "rgb,flow,audio" if epic else "rgb"
    modalities = [m.strip() for m in (args.modalities or default).split(",") if m.strip()]
    splits = [s.strip() for s in args.split.split(",") if s.strip()] if args.split else None
    every = {}

    def progress(modality: str, position: int, total: int, key: str) -> None:
        step = every.setdefault(modality, max(1, total // 20))  # about 20 lines per file
        if position % step == 0 or position == total:
            print(f"{modality} [{position}/{total}] {key}", flush=True)

    print(f"pack: {args.dataset} {root} ({', '.join(modalities)}) → {args.out}", flush=True)
    if epic:
        summary = pack_epic(root, args.out, modalities=modalities, splits=splits, quality=args.quality,
                            progress=progress)
    else:
        variant = args.variant or ("ssv2" if args.dataset == "ssv2" else "something-else/compositional")
        summary = pack_something(root, args.out, variant=variant, modalities=modalities, splits=splits,
                                 flow_root=args.flow_root, quality=args.quality, progress=progress)
    for modality, path in summary.files.items():
        size = path.stat().st_size / 2**20
        print(f"{modality}: {path} — {summary.datasets[modality]} datasets, {summary.elements[modality]} "
              f"{'samples' if modality == 'audio' else 'JPEGs'}, {size:.1f} MiB")
    print(f"done in {summary.seconds:.1f} s")
    return 0


def _bench(args) -> int:
    from modalbridge.benchmarks import run_benchmarks

    run_benchmarks(args.name, quick=args.quick)
    return 0


def _demo(args) -> int:
    from modalbridge.tasks.distill.demo import run_demo

    report = run_demo(quick=args.quick)
    print(f"report: {report}")
    return 0


def _distill_cache(args) -> int:
    import json

    import torch

    from modalbridge.io.datamodules import (
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
                                    num_workers=args.num_workers, collate_fn=dm.collate_fn)
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modalbridge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for verb in LIGHTNING_VERBS:
        sub.add_parser(verb, help=f"Lightning {verb} from a YAML config (see `modalbridge {verb} --help`)",
                       add_help=False)
    s = sub.add_parser("demo", help="the main job on the embedded world; writes runs/demo/report.html")
    s.add_argument("--quick", action="store_true", help="smaller settings (smoke test)")
    s.set_defaults(func=_demo)
    s = sub.add_parser("world", help="build (first use) and print the folder of a task's embedded world")
    s.add_argument("task", help=f"task or world name ({', '.join(sorted(TASK_WORLDS))})")
    s.set_defaults(func=_world)
    s = sub.add_parser("data", help="dataset utilities")
    dsub = s.add_subparsers(dest="data_verb", required=True)
    c = dsub.add_parser("check", help="validate a dataset folder and list every problem (exit 1 if any)")
    c.add_argument("dataset", help="epic-kitchens-100 | ssv2 | something-else")
    c.add_argument("root")
    c.set_defaults(func=_data_check)
    c = dsub.add_parser("prepare", help="convert box annotations to the unified layout JSON (STLT format)")
    c.add_argument("dataset", choices=("something-else", "action-genome"))
    c.add_argument("root", help="dataset folder (Something-Else: split lists + box parts + videoid2size.json)")
    c.add_argument("--out", help="output folder (default: root)")
    c.add_argument("--variant", default="something-else/compositional", help="split lists (Something-Else)")
    c.add_argument("--allow-pickle", action="store_true",
                   help="Action Genome ships pickles: read them (restricted unpickler) only with this flag")
    c.set_defaults(func=_data_prepare)
    c = dsub.add_parser("flow", help="extract stride-1 optical flow JPEGs for SSv2 / Something-Else (--shard i/n)")
    c.add_argument("--root", required=True, help="dataset folder (split lists + videos/) or world://...")
    c.add_argument("--variant", default="ssv2", help="ssv2 | something-else/compositional | ... (split lists)")
    c.add_argument("--split", default="train,validation", help="comma-separated splits whose videos to extract")
    c.add_argument("--method", default="dis", choices=("dis", "farneback", "tvl1"),  # io.flow.FLOW_METHODS
                   help="OpenCV flow: DIS (default, fast), Farneback, or TV-L1 (needs opencv-contrib)")
    c.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: extract videos i::n only")
    c.add_argument("--out", help="flow folder (default: <root>/flow)")
    c.add_argument("--overwrite", action="store_true", help="recompute videos whose flow is already complete")
    c.set_defaults(func=_data_flow)
    c = dsub.add_parser("pack", help="write the reference's packed HDF5 files (rgb.hdf5, flow.hdf5, audio.hdf5)")
    c.add_argument("--dataset", required=True, choices=("epic-kitchens-100", "ssv2", "something-else"))
    c.add_argument("--root", required=True, help="dataset folder (raw layout) or world://...")
    c.add_argument("--out", required=True, help="folder for the .hdf5 files (data modules: packed=<this>)")
    c.add_argument("--modalities", help="comma-separated subset of rgb,flow,audio (default: EPIC rgb,flow,audio; "
                                        "SSv2 rgb — flow needs `modalbridge data flow` first)")
    c.add_argument("--split", help="comma-separated splits whose clips to pack (default: every split present)")
    c.add_argument("--variant", help="SSv2 split lists (default: ssv2 / something-else/compositional)")
    c.add_argument("--flow-root", help="SSv2 optical flow folder (default <root>/flow)")
    c.add_argument("--quality", type=int, default=90, help="JPEG quality of re-encoded frames (1-100)")
    c.set_defaults(func=_data_pack)
    s = sub.add_parser("models", help="list registered models")
    s.add_argument("--task", default=None)
    s.set_defaults(func=_models)
    s = sub.add_parser("recognize", help="top-k labels of a video with a trained checkpoint")
    s.add_argument("video")
    s.add_argument("--ckpt", required=True, help="Lightning .ckpt written by `modalbridge fit`")
    s.add_argument("--top", type=int, default=5)
    s.add_argument("--boxes", help="layout/fusion checkpoints: box JSON (default: <video>.json next to it)")
    s.add_argument("--picture", help="layout/fusion checkpoints: save frames with boxes and the label here")
    s.set_defaults(func=_recognize)
    s = sub.add_parser("distill-cache", help="precompute teacher-ensemble logits for distillation (--shard i/n)")
    s.add_argument("--teachers", nargs="+", default=[], help="teacher .ckpt files")
    s.add_argument("--weights", help="JSON {head: [w_1..w_M]} (default: uniform)")
    s.add_argument("--dataset", default="epic-kitchens-100", choices=("epic-kitchens-100", "ssv2", "something-else"))
    s.add_argument("--root", default="world://kitchen/ek100", help="the dataset's folder")
    s.add_argument("--variant", help="SSv2 split variant (default: ssv2 / something-else/compositional)")
    s.add_argument("--flow-root", help="SSv2 optical flow folder (default <root>/flow)")
    s.add_argument("--split", default="train")
    s.add_argument("--num-frames", type=int, default=32, help="frames per clip (SSv2: TSN segments)")
    s.add_argument("--stride", type=int, default=2, help="frame stride (EK clips; Something-Else appearance clips)")
    s.add_argument("--boxes", default="oracle", help="object teacher: oracle | detections | a box file/folder")
    s.add_argument("--layout-frames", type=int, default=16, help="object teacher: layout frames per clip")
    s.add_argument("--size", type=int, default=224)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--num-workers", type=int, default=2)
    s.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: compute rows i::n only")
    s.add_argument("--merge", nargs="+", help="merge these shard files into --out instead")
    s.add_argument("--out", required=True)
    s.set_defaults(func=_distill_cache)
    s = sub.add_parser("bench", help="benchmarks printing ratios measured in one run")
    s.add_argument("name", nargs="?", default="all", help="all | clip_pipeline | train_step | distill | layouts")
    s.add_argument("--quick", action="store_true")
    s.set_defaults(func=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in LIGHTNING_VERBS:
        _lightning(argv)
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
