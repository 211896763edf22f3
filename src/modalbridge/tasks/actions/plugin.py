"""The ``actions`` task declared to the trunk: RGB video action recognition on EPIC-KITCHENS-100 and
Something-Something V2 / Something-Else, plus the video datasets' utilities (``data flow``, ``data pack``)
and the ``recognize`` verb shared by every video task (each task says how its checkpoints answer it)."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin, Verb, add_precision_argument, shard_arg


def _recognize_arguments(p) -> None:
    p.add_argument("video")
    p.add_argument("--ckpt", required=True, help="Lightning .ckpt written by `modalbridge fit`")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--boxes", help="layout/fusion checkpoints: box JSON (default: <video>.json next to it)")
    p.add_argument("--picture", help="layout/fusion checkpoints: save frames with boxes and the label here")
    add_precision_argument(p, choices=None)


def _flow_arguments(c) -> None:
    c.add_argument("--root", required=True, help="dataset folder (split lists + videos/) or world://...")
    c.add_argument("--variant", default="ssv2", help="ssv2 | something-else/compositional | ... (split lists)")
    c.add_argument("--split", default="train,validation", help="comma-separated splits whose videos to extract")
    c.add_argument("--method", default="dis", choices=("dis", "farneback", "tvl1"),  # io.flow.FLOW_METHODS
                   help="OpenCV flow: DIS (default, fast), Farneback, or TV-L1 (needs opencv-contrib)")
    c.add_argument("--shard", type=shard_arg, default=(0, 1), help="i/n: extract videos i::n only")
    c.add_argument("--out", help="flow folder (default: <root>/flow)")
    c.add_argument("--overwrite", action="store_true", help="recompute videos whose flow is already complete")


def _pack_arguments(c) -> None:
    c.add_argument("--dataset", required=True, choices=("epic-kitchens-100", "ssv2", "something-else"))
    c.add_argument("--root", required=True, help="dataset folder (raw layout) or world://...")
    c.add_argument("--out", required=True, help="folder for the .hdf5 files (data modules: packed=<this>)")
    c.add_argument("--modalities", help="comma-separated subset of rgb,flow,audio (default: EPIC rgb,flow,audio; "
                                        "SSv2 rgb — flow needs `modalbridge data flow` first)")
    c.add_argument("--split", help="comma-separated splits whose clips to pack (default: every split present)")
    c.add_argument("--variant", help="SSv2 split lists (default: ssv2 / something-else/compositional)")
    c.add_argument("--flow-root", help="SSv2 optical flow folder (default <root>/flow)")
    c.add_argument("--quality", type=int, default=90, help="JPEG quality of re-encoded frames (1-100)")


VIDEO_DATASETS = (
    DatasetEntry("epic-kitchens-100", check="modalbridge.datasets.check:check_epic_kitchens_100",
                 doc="EPIC-KITCHENS-100 annotation CSVs + videos / frames"),
    DatasetEntry("ssv2", check="modalbridge.datasets.check:check_ssv2",
                 doc="Something-Something V2 label/split JSONs + videos"),
    DatasetEntry("something-else", check="modalbridge.datasets.check:check_something_else",
                 prepare="modalbridge.datasets.cli:prepare_something_else",
                 doc="Something-Else split lists + box annotations (prepare: unified layout JSON)"),
)

PLUGIN = TaskPlugin(
    name="actions",
    doc="RGB video action recognition (Video Swin-T / R3D) on EPIC-KITCHENS-100 and SSv2/Something-Else",
    models=("modalbridge.tasks.actions.models",),
    worlds={"kitchen": "modalbridge.worlds.kitchen:kitchen_world"},
    datasets=VIDEO_DATASETS,
    benchmarks={"clip_pipeline": "modalbridge.tasks.actions.bench_clip_pipeline:run",
                "train_step": "modalbridge.tasks.actions.bench_train_step:run"},
    verbs=(
        Verb("recognize", "top-k labels of a video with a trained checkpoint (any video task)",
             _recognize_arguments, "modalbridge.tasks.actions.infer:recognize_cli"),
        Verb("flow", "extract stride-1 optical flow JPEGs for SSv2 / Something-Else (--shard i/n)",
             _flow_arguments, "modalbridge.datasets.cli:flow_cli", group="data"),
        Verb("pack", "write the reference's packed HDF5 files (rgb.hdf5, flow.hdf5, audio.hdf5)",
             _pack_arguments, "modalbridge.datasets.cli:pack_cli", group="data"),
    ),
    recognizers={"ModalityClassifierModule": "modalbridge.tasks.actions.infer:recognize",
                 "ActionRecognitionModule": "modalbridge.tasks.actions.infer:recognize"},
)
