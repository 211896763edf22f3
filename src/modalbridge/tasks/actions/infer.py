"""``modalbridge recognize``: top-k labels of one video from a checkpoint written by ``modalbridge fit``.

The whole video is treated as one trimmed clip and sampled the way the checkpoint's data module
sampled validation clips (EK: centred ``num_frames`` × ``stride`` window; SSv2: TSN segment middles),
then resized/centre-cropped to the training crop size.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modalbridge.core.classifier import ModalityClassifierModule
from modalbridge.core.engine import load_module_checkpoint
from modalbridge.core.precision import autocast
from modalbridge.io.samplers import ek_clip_indices, tsn_indices
from modalbridge.io.transforms import ClipTransform
from modalbridge.io.video import probe, read_frames


def recognize_cli(args) -> int:
    """``modalbridge recognize``: the checkpoint's module class picks the task that answers (every task
    plugin lists its ``recognizers``); prints the top-k labels per head."""
    from modalbridge.core.engine import read_checkpoint
    from modalbridge.core.errors import CheckpointError, MediaError
    from modalbridge.core.plugins import all_recognizers, load_target

    kind = read_checkpoint(args.ckpt).get("modalbridge_class", "ModalityClassifierModule")
    recognizers = all_recognizers()
    if kind not in recognizers:
        raise CheckpointError(f"a {kind} checkpoint cannot recognise videos; expected one of "
                              f"{', '.join(sorted(recognizers))}", path=args.ckpt)
    if probe(args.video).num_frames < 1:  # a missing/empty/non-video file fails here, before a model is built
        raise MediaError("the video has no frames", path=args.video)
    options = {"boxes": args.boxes, "picture": args.picture}
    result = load_target(recognizers[kind])(args.video, args.ckpt, top_k=args.top, precision=args.precision,
                                            **{k: v for k, v in options.items() if v is not None})
    for head, top in result.items():
        print(f"{head}:")
        for rank, (label, p) in enumerate(top, 1):
            print(f"  {rank}. {label:30s} {100 * p:5.1f}%")
    if args.picture:
        print(f"picture: {args.picture}")
    return 0


def load_checkpoint(ckpt: str | Path) -> tuple[ModalityClassifierModule, dict]:
    """Rebuild the classifier from a ``modalbridge fit`` checkpoint (``weights_only=True``)."""
    return load_module_checkpoint(str(ckpt), ModalityClassifierModule)


@torch.no_grad()
def recognize(video: str | Path, ckpt: str | Path, *, top_k: int = 5,
              precision: str = "auto") -> dict[str, list[tuple[str, float]]]:
    """Returns ``{head: [(label, probability), ...]}`` with the ``top_k`` most likely labels per head."""
    module, data = load_checkpoint(ckpt)
    hp = data.get("hparams", {})
    length = probe(video).num_frames
    if "num_segments" in hp:
        indices = tsn_indices(length, hp["num_segments"], train=False)
    else:
        indices = ek_clip_indices(length, hp.get("num_frames", 32), hp.get("stride", 2), train=False)
    clip = ClipTransform(hp.get("size", 224), train=False)(read_frames(video, indices))
    with autocast(precision, "cpu"):
        outputs = module(clip.unsqueeze(0))
    names = data.get("class_names") or {}
    result = {}
    for head, logits in outputs.items():
        probs = logits.float().softmax(-1)[0]
        p, idx = probs.topk(min(top_k, probs.numel()))
        labels = names.get(head) or [str(i) for i in range(probs.numel())]
        result[head] = [(labels[i], float(q)) for q, i in zip(p.tolist(), idx.tolist())]
    return result
