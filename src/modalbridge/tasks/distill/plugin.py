"""The ``distill`` task declared to the trunk: multimodal and language → RGB knowledge distillation,
the teacher-logit cache verb and the main demo."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin, Verb, add_precision_argument, shard_arg


def _cache_arguments(s) -> None:
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
    s.add_argument("--shard", type=shard_arg, default=(0, 1), help="i/n: compute rows i::n only")
    s.add_argument("--merge", nargs="+", help="merge these shard files into --out instead")
    s.add_argument("--out", required=True)
    add_precision_argument(s, choices=None)


PLUGIN = TaskPlugin(
    name="distill",
    doc="multimodal (RGB/flow/audio/objects) and language (LanViKD) teachers → RGB student; the main demo",
    models=("modalbridge.tasks.distill.models",),
    worlds={"kitchen-distill": "modalbridge.worlds.kitchen:distill_kitchen_world"},
    datasets=(DatasetEntry("epic-kitchens-100"), DatasetEntry("ssv2"), DatasetEntry("something-else")),
    benchmarks={"distill": "modalbridge.tasks.distill.bench:run"},
    demo="modalbridge.tasks.distill.demo:run_demo",
    verbs=(Verb("distill-cache", "precompute teacher-ensemble logits for distillation (--shard i/n)",
                _cache_arguments, "modalbridge.tasks.distill.cache:distill_cache_cli"),),
)
