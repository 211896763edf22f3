"""Pre-decoded augmented views: decode a small world once, train many epochs without decoding.

A video epoch on 2 CPU cores is mostly decoding and cropping. For models that train for 100+ epochs on a few
hundred clips (the demo, ``studies/distill_calibration.py``), :func:`decode_views` draws ``V`` augmented views of
every training clip once, through the real data module (its sampler, crops and transforms), and keeps them in
memory as float16; :class:`DecodedViews` serves epoch ``e`` from view ``e mod V``, optionally with the teacher
ensemble's logits of that view as ``teacher/<head>`` (what :class:`~modalbridge.tasks.distill.module.
DistillModule` reads instead of running the teachers), and :class:`ViewsDataModule` feeds them to the Lightning
Trainer with the library's seeded epoch sampler.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from modalbridge.core.data import SeededDataModule, collate_skipping
from modalbridge.core.progress import progress

__all__ = ["DecodedViews", "ViewsDataModule", "decode_views", "ensemble_view_logits"]

#: a decoded set: ``{key: (N, ...)}`` — media as float16, labels as int64, ``index`` the clip's position
View = dict[str, torch.Tensor]


def decode_views(dataset: Dataset, *, keys: Sequence[str], views: int = 1, clips: int | None = None,
                 num_workers: int = 0, batch_size: int = 32, desc: str = "decoding views") -> list[View]:
    """``views`` decoded passes over the first ``clips`` clips of ``dataset`` (all by default), stacked per key.

    An epoch-indexed training set (``epoch_indexed = True``: item ``e * n + i`` is clip ``i`` as augmented in
    epoch ``e``) gives view ``e`` its epoch-``e`` augmentation; an evaluation set gives the same clips each
    view. Media keys are stored as float16 (half the memory; they are cast back per item).
    """
    n = len(dataset) if clips is None else min(clips, len(dataset))
    epoch_indexed = bool(getattr(dataset, "epoch_indexed", False))
    out: list[View] = []
    for v in range(views):
        indices = [(v * len(dataset) if epoch_indexed else 0) + i for i in range(n)]
        loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, num_workers=num_workers,
                            collate_fn=collate_skipping)
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in (*keys, "index")}
        for batch in progress(loader, f"{desc} ({v + 1}/{views})", unit="batch", min_items=4):
            if "index" not in batch:  # every clip of the batch failed to decode (counted by the dataset)
                continue
            for k in parts:
                value = batch[k]
                parts[k].append(value.half() if value.is_floating_point() else value)
        out.append({k: torch.cat(p) for k, p in parts.items() if p})
    return out


class DecodedViews(Dataset):
    """Decoded views as a training (or evaluation) set: item ``e * n + i`` is clip ``i`` of view ``e mod V``
    (the seeded loader's epoch encoding), media cast back to float32, with ``teacher/<head>`` logits of the
    same view when ``teacher`` is given (one ``{head: (N, C)}`` per view)."""

    epoch_indexed = True

    def __init__(self, views: list[View], teacher: list[dict[str, torch.Tensor]] | None = None):
        if not views:
            raise ValueError("DecodedViews needs at least one decoded view")
        if teacher is not None and len(teacher) != len(views):
            raise ValueError(f"{len(teacher)} teacher logit sets for {len(views)} views")
        self.views, self.teacher, self.n = views, teacher, len(views[0]["index"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        epoch, row = divmod(int(i), self.n)
        view = self.views[epoch % len(self.views)]
        item = {k: (t[row].float() if t.is_floating_point() else t[row]) for k, t in view.items()}
        if self.teacher is not None:
            item.update({f"teacher/{h}": z[row] for h, z in self.teacher[epoch % len(self.views)].items()})
        return item


class ViewsDataModule(SeededDataModule):
    """Training views (shuffled by the seeded epoch sampler) and one evaluation set as a data module.
    ``heads``/``class_names``/``split_masks`` come from the data module the views were decoded with."""

    def __init__(self, source: SeededDataModule, train: DecodedViews | None, evaluate: DecodedViews | None, *,
                 batch_size: int, seed: int):
        super().__init__(batch_size=batch_size, num_workers=0, seed=seed)
        self.source = source
        self.heads, self.class_names = dict(source.heads), getattr(source, "class_names", {})
        self.train_set, self.val_set = train, evaluate

    def setup(self, stage: str | None = None) -> None:  # both sets are given
        pass

    def split_masks(self) -> dict[str, torch.Tensor]:
        """The source's evaluation subsets (EK seen/unseen participants), looked up by the decoded ``index``."""
        return self.source.split_masks() if hasattr(self.source, "split_masks") else {}


@torch.no_grad()
def ensemble_view_logits(ensemble: torch.nn.Module, views: list[View], *, batch_size: int = 64,
                         precision: str = "auto") -> list[dict[str, torch.Tensor]]:
    """The ensemble's fp32 logits ``{head: (N, C)}`` for every clip of every view (the KD targets of that view;
    the teachers' forward pass runs in ``precision``)."""
    from modalbridge.core.precision import autocast

    ensemble.eval()
    device = next(iter(ensemble.parameters())).device
    out = []
    for view in views:
        n = len(view["index"])
        parts: dict[str, list[torch.Tensor]] = {}
        for start in range(0, n, batch_size):
            batch = {k: (t[start:start + batch_size].to(device).float() if t.is_floating_point()
                         else t[start:start + batch_size].to(device)) for k, t in view.items()}
            with autocast(precision, device.type):
                logits = ensemble(batch)
            for h, z in logits.items():
                parts.setdefault(h, []).append(z.float().cpu())
        out.append({h: torch.cat(p) for h, p in parts.items()})
    return out
