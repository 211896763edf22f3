"""``modalbridge recognize``: top-k labels of one video from a checkpoint written by ``modalbridge fit``.

The whole video is treated as one trimmed clip and sampled the way the checkpoint's data module
sampled validation clips (EK: centred ``num_frames`` × ``stride`` window; SSv2: TSN segment middles),
then resized/centre-cropped to the training crop size.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modalbridge.core.engine import ModalityClassifierModule, load_module_checkpoint
from modalbridge.io.samplers import ek_clip_indices, tsn_indices
from modalbridge.io.transforms import ClipTransform
from modalbridge.io.video import probe, read_frames


def load_checkpoint(ckpt: str | Path) -> tuple[ModalityClassifierModule, dict]:
    """Rebuild the classifier from a ``modalbridge fit`` checkpoint (``weights_only=True``)."""
    return load_module_checkpoint(str(ckpt), ModalityClassifierModule)


@torch.no_grad()
def recognize(video: str | Path, ckpt: str | Path, *, top_k: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Returns ``{head: [(label, probability), ...]}`` with the ``top_k`` most likely labels per head."""
    module, data = load_checkpoint(ckpt)
    hp = data.get("hparams", {})
    length = probe(video).num_frames
    if "num_segments" in hp:
        indices = tsn_indices(length, hp["num_segments"], train=False)
    else:
        indices = ek_clip_indices(length, hp.get("num_frames", 32), hp.get("stride", 2), train=False)
    clip = ClipTransform(hp.get("size", 224), train=False)(read_frames(video, indices))
    outputs = module(clip.unsqueeze(0))
    names = data.get("class_names") or {}
    result = {}
    for head, logits in outputs.items():
        probs = logits.softmax(-1)[0]
        p, idx = probs.topk(min(top_k, probs.numel()))
        labels = names.get(head) or [str(i) for i in range(probs.numel())]
        result[head] = [(labels[i], float(q)) for q, i in zip(p.tolist(), idx.tolist())]
    return result
