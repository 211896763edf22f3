"""Models of the atlas task (spec ``text2atlas.md`` §3): every system of the thesis's tables, by registry name.

Every model takes ``forward(input_ids (B, T), attention_mask (B, T) bool)`` — or one :ref:`atlas batch
<atlas-batch>` dict holding those keys — and returns one of four outputs (its class attribute ``output``):

=================  ===========================  ================================================================
``output``         returned dict                models
=================  ===========================  ================================================================
``point``          ``{"point": (B, 3)}``        ``sod_regressor`` (SOD or MSE training), ``centre``: normalised
                                                space (``ŷ ∈ (−1, 1)³``, ``ŷ · CENTER`` = centred mm)
``logits``         ``{"logits": (B, K)}``       ``organ_classifier`` (BCE on multi-hot organ sets)
``organ_probs``    ``{"organ_probs": (B, K)}``  the naive organ baselines ``random_organ``, ``frequency``,
                                                ``occurrence_random``: a distribution over organs from which the
                                                module draws one organ per document (seeded by document); a row
                                                of zeros means "the atlas centre"
``embedding``      ``{"embedding": (B, d)}``    ``siamese`` (triplet training, d = 3 or 768), ``pooled_encoder``
                                                (no training, d = 3·H): L2-normalised
=================  ===========================  ================================================================

The BERT models read the last layer's ``[CLS]`` state (``pooled_encoder`` also max- and mean-pools over the real
tokens). The encoder is any BERT folder :func:`~modalbridge.nn.bert.load_bert` resolves (default MiniLM-L6; the
thesis: ``bert-base-uncased``, BioBERT, SciBERT from a local folder).

The naive baselines hold no parameters; what they need comes from the data module through
:meth:`NaiveOrganBaseline.fit_statistics` (the module calls it before evaluating): the number of organs of the
training atlas and, for ``frequency``, the organ counts of the training split. ``occurrence_random`` reads each
document's organ-name occurrences, which the batch carries as its loss targets ``organs`` when the data module
uses ``targets="occ"`` (the module checks that).

Deviation: ``pooled_encoder`` pools over the real tokens only (the reference's max and mean included padding).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modalbridge.core.registry import register_model
from modalbridge.nn.bert import DEFAULT_BERT, TINY_BERT, load_bert, masked_mean

__all__ = [
    "CentreBaseline",
    "FrequencyBaseline",
    "NaiveOrganBaseline",
    "OccurrenceRandomBaseline",
    "OrganClassifier",
    "PooledEncoder",
    "RandomOrganBaseline",
    "SODRegressor",
    "SiameseEncoder",
    "TextEncoder",
    "example_batch",
]

OUTPUTS = ("point", "logits", "organ_probs", "embedding")


def _inputs(input_ids: Any, attention_mask: torch.Tensor | None, organs: torch.Tensor | None = None):
    """``(input_ids, attention_mask, organs)`` from positional tensors or one batch dict."""
    if isinstance(input_ids, Mapping):
        batch = input_ids
        input_ids, attention_mask, organs = batch["input_ids"], batch.get("attention_mask"), batch.get("organs")
    if attention_mask is None:
        attention_mask = input_ids != 0
    return input_ids, attention_mask.bool(), organs


class AtlasModel(nn.Module):
    """Base of the atlas models: ``output`` names the returned key (module docstring); ``default_loss`` is the loss
    the module trains it with unless told otherwise (``"none"``: nothing to train)."""

    output: str = "point"
    default_loss: str = "none"
    #: reads the documents' organ-name occurrences (batch ``organs`` under ``targets="occ"``)
    needs_occurrences: bool = False

    def forward(self, input_ids, attention_mask=None, organs=None) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class TextEncoder(AtlasModel):
    """A BERT encoder (``bert``, ``bert_config``, ``layers``: :func:`~modalbridge.nn.bert.load_bert`); ``hidden``
    is its size H."""

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None):
        super().__init__()
        self.bert = load_bert(bert, bert_config, layers)
        self.hidden = int(self.bert.config.hidden_size)

    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer states ``(B, T, H)``."""
        return self.bert(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state

    def cls(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer ``[CLS]`` state ``(B, H)``."""
        return self.states(input_ids, attention_mask)[:, 0]


class SODRegressor(TextEncoder):
    """The main model: ``[CLS]`` → ``Linear(H, 3)`` → ``tanh``: ``{"point": (B, 3)}`` in normalised space (fp32).
    Trained with the SOD loss, or the MSE loss for the MSE-regression baseline."""

    output, default_loss = "point", "sod"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None):
        super().__init__(bert, bert_config, layers)
        self.head = nn.Linear(self.hidden, 3)

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, attention_mask, _ = _inputs(input_ids, attention_mask)
        return {"point": torch.tanh(self.head(self.cls(input_ids, attention_mask)).float())}


class OrganClassifier(TextEncoder):
    """The classifier baseline: ``[CLS]`` → ``Linear(H, K)``: ``{"logits": (B, K)}`` (fp32), trained with BCE on the
    multi-hot organ set; the predicted organ is the argmax."""

    output, default_loss = "logits", "bce"

    def __init__(self, num_organs: int, bert: str | os.PathLike[str] = DEFAULT_BERT,
                 bert_config: dict | None = None, layers: int | None = None):
        super().__init__(bert, bert_config, layers)
        if num_organs < 1:
            raise ValueError(f"num_organs must be positive, got {num_organs}")
        self.num_organs = int(num_organs)
        self.head = nn.Linear(self.hidden, self.num_organs)

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, attention_mask, _ = _inputs(input_ids, attention_mask)
        return {"logits": self.head(self.cls(input_ids, attention_mask)).float()}


class SiameseEncoder(TextEncoder):
    """Siamese-d retrieval baseline: ``[CLS]`` → ``Linear(H, d)`` → L2-normalise: ``{"embedding": (B, d)}``, trained
    with the batch-all triplet loss (same organ set = positive)."""

    output, default_loss = "embedding", "triplet"

    def __init__(self, dim: int = 768, bert: str | os.PathLike[str] = DEFAULT_BERT,
                 bert_config: dict | None = None, layers: int | None = None):
        super().__init__(bert, bert_config, layers)
        self.dim = int(dim)
        self.head = nn.Linear(self.hidden, self.dim)

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, attention_mask, _ = _inputs(input_ids, attention_mask)
        return {"embedding": F.normalize(self.head(self.cls(input_ids, attention_mask)).float(), dim=-1)}


class PooledEncoder(TextEncoder):
    """BaseBert/BioBert retrieval baselines (no training): ``[CLS] ‖ max-pool ‖ mean-pool`` of the last layer over
    the real tokens, L2-normalised: ``{"embedding": (B, 3·H)}`` (2304-d for BERT-base)."""

    output, default_loss = "embedding", "none"

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, attention_mask, _ = _inputs(input_ids, attention_mask)
        states = self.states(input_ids, attention_mask).float()  # (B, T, H)
        maximum = states.masked_fill(~attention_mask[..., None], float("-inf")).amax(dim=1)
        mean = masked_mean(states, attention_mask)
        return {"embedding": F.normalize(torch.cat([states[:, 0], maximum, mean], dim=-1), dim=-1)}


# -- naive baselines ---------------------------------------------------------------------------------------------
class CentreBaseline(AtlasModel):
    """Centre baseline: the atlas centre, (0, 0, 0) in centred coordinates, for every document."""

    output = "point"

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, _, _ = _inputs(input_ids, attention_mask)
        return {"point": torch.zeros(input_ids.shape[0], 3, device=input_ids.device)}


class NaiveOrganBaseline(AtlasModel):
    """Base of the baselines that pick an organ without reading the text: ``{"organ_probs": (B, K)}``. ``K``
    (``num_organs``) is given or read from the data module by :meth:`fit_statistics`."""

    output = "organ_probs"

    def __init__(self, num_organs: int | None = None):
        super().__init__()
        self.num_organs = num_organs

    @property
    def fitted(self) -> bool:
        return self.num_organs is not None

    def fit_statistics(self, datamodule) -> NaiveOrganBaseline:
        """Read what the baseline needs from the data module (its ``train_atlas``)."""
        self.num_organs = int(datamodule.train_atlas.num_organs)
        return self

    def _k(self) -> int:
        if self.num_organs is None:
            raise RuntimeError(f"{type(self).__name__} does not know the atlas's organs yet: call "
                               "fit_statistics(datamodule) (the AtlasModule does before evaluating)")
        return self.num_organs


class RandomOrganBaseline(NaiveOrganBaseline):
    """Random baseline: a random organ (uniform), then a random voxel of it."""

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, _, _ = _inputs(input_ids, attention_mask)
        k = self._k()
        return {"organ_probs": torch.full((input_ids.shape[0], k), 1.0 / k, device=input_ids.device)}


class FrequencyBaseline(NaiveOrganBaseline):
    """Frequency baseline: the organ most frequent in the training split's MeSH ``organ_indices`` (the first on a
    tie), then a random voxel of it. ``counts`` (K,): organ counts, given or read by :meth:`fit_statistics`
    (the data module's ``train_organ_counts()``); a buffer, so they travel in the state dict."""

    def __init__(self, counts: list[float] | None = None, num_organs: int | None = None):
        super().__init__(len(counts) if counts is not None else num_organs)
        values = torch.as_tensor(counts if counts is not None else [], dtype=torch.float64)
        self.register_buffer("counts", values)

    @property
    def fitted(self) -> bool:
        return self.counts.numel() > 0 and float(self.counts.sum()) > 0

    def fit_statistics(self, datamodule) -> FrequencyBaseline:
        counts = torch.as_tensor(datamodule.train_organ_counts(), dtype=torch.float64)
        self.counts = counts.to(self.counts.device)
        self.num_organs = int(counts.numel())
        return self

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, _, _ = _inputs(input_ids, attention_mask)
        if not self.fitted:
            raise RuntimeError("frequency baseline has no training counts: call fit_statistics(datamodule) (the "
                               "AtlasModule does before evaluating) or give counts=[...]")
        best = int(torch.argmax(self.counts))  # first maximum on a tie
        probs = torch.zeros(input_ids.shape[0], self.counts.numel(), device=input_ids.device)
        probs[:, best] = 1.0
        return {"organ_probs": probs}


class OccurrenceRandomBaseline(NaiveOrganBaseline):
    """Self-supervised Random baseline: a random organ among those whose names occur in the text
    (``occ_organ_indices``), or the atlas centre when none does. ``organs`` (B, M) long, -1 padded: each document's
    occurrence organs (the batch's ``organs`` under ``targets="occ"``)."""

    needs_occurrences = True

    def forward(self, input_ids, attention_mask=None, organs=None):
        input_ids, _, organs = _inputs(input_ids, attention_mask, organs)
        if organs is None:
            raise ValueError("occurrence_random needs each document's occurrence organs (organs=..., the batch's "
                             "`organs` with the data module's targets='occ')")
        k = self._k()
        real = organs >= 0
        hot = torch.zeros(organs.shape[0], k + 1, device=organs.device)
        hot.scatter_(1, torch.where(real, organs, k).long(), 1.0)  # padding lands in the spare column k
        hot = hot[:, :k]
        return {"organ_probs": hot / hot.sum(1, keepdim=True).clamp(min=1)}


# -- registry ----------------------------------------------------------------------------------------------------
def example_batch(batch_size: int = 2, text_len: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small ragged batch (the registry's example input): ``input_ids``/``attention_mask`` with document ``b``
    ``text_len - b`` tokens long ([CLS] … [SEP]), and ``organs`` (-1 padded organ indices < 4)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.clamp(text_len - torch.arange(batch_size), min=2)
    positions = torch.arange(text_len)
    ids = torch.randint(1000, 30000, (batch_size, text_len), generator=g)
    ids[:, 0] = 101
    ids = torch.where(positions == (lengths - 1)[:, None], 102, ids)
    mask = positions < lengths[:, None]
    organs = torch.full((batch_size, 2), -1, dtype=torch.long)
    organs[:, 0] = torch.arange(batch_size) % 4
    organs[0, 1] = 3
    return {"index": torch.arange(batch_size), "input_ids": ids * mask, "attention_mask": mask, "organs": organs}


_ATLAS = {"task": "atlas", "inputs": "atlas", "example": example_batch}
_TINY = {"bert_config": TINY_BERT}


@register_model("sod_regressor", tiny=_TINY, **_ATLAS)
def sod_regressor(bert: str = DEFAULT_BERT, bert_config: dict | None = None, layers: int | None = None) -> SODRegressor:
    """BERT [CLS] → Linear(H, 3) → tanh: a normalised atlas point (SOD or MSE training)."""
    return SODRegressor(bert, bert_config, layers)


@register_model("organ_classifier", tiny={**_TINY, "num_organs": 5}, **_ATLAS)
def organ_classifier(num_organs: int, bert: str = DEFAULT_BERT, bert_config: dict | None = None,
                     layers: int | None = None) -> OrganClassifier:
    """BERT [CLS] → Linear(H, K) organ logits (BCE on multi-hot organ sets)."""
    return OrganClassifier(num_organs, bert, bert_config, layers)


@register_model("siamese", tiny={**_TINY, "dim": 3}, **_ATLAS)
def siamese(dim: int = 768, bert: str = DEFAULT_BERT, bert_config: dict | None = None,
            layers: int | None = None) -> SiameseEncoder:
    """BERT [CLS] → Linear(H, d) → L2-normalise (batch-all triplet training; d = 3 or 768)."""
    return SiameseEncoder(dim, bert, bert_config, layers)


@register_model("pooled_encoder", tiny=_TINY, **_ATLAS)
def pooled_encoder(bert: str = DEFAULT_BERT, bert_config: dict | None = None,
                   layers: int | None = None) -> PooledEncoder:
    """BERT [CLS] ‖ masked max-pool ‖ masked mean-pool, L2-normalised (no training)."""
    return PooledEncoder(bert, bert_config, layers)


@register_model("centre", **_ATLAS)
def centre() -> CentreBaseline:
    """Naive baseline: the atlas centre for every document."""
    return CentreBaseline()


@register_model("random_organ", tiny={"num_organs": 4}, **_ATLAS)
def random_organ(num_organs: int | None = None) -> RandomOrganBaseline:
    """Naive baseline: a random voxel of a random organ."""
    return RandomOrganBaseline(num_organs)


@register_model("frequency", tiny={"counts": [1.0, 5.0, 2.0, 5.0]}, **_ATLAS)
def frequency(counts: list[float] | None = None, num_organs: int | None = None) -> FrequencyBaseline:
    """Naive baseline: a random voxel of the organ most frequent in training."""
    return FrequencyBaseline(counts, num_organs)


@register_model("occurrence_random", tiny={"num_organs": 4}, **_ATLAS)
def occurrence_random(num_organs: int | None = None) -> OccurrenceRandomBaseline:
    """Naive baseline: a random voxel of a random organ named in the text (the centre if none)."""
    return OccurrenceRandomBaseline(num_organs)
