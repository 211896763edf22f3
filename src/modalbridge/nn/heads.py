"""Classification heads shared by tasks."""

from __future__ import annotations

import torch
from torch import nn


class MultiHead(nn.Module):
    """One linear classifier per named head.

    ``forward(features: (B, D)) -> {head: (B, C_head)}``; e.g. ``{"verb": 97, "noun": 300}`` for
    EPIC-KITCHENS-100 or ``{"action": 174}`` for Something-Something.
    """

    def __init__(self, in_dim: int, heads: dict[str, int], dropout: float = 0.0):
        super().__init__()
        if not heads:
            raise ValueError("at least one head is required, e.g. {'action': 174}")
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(in_dim, n) for name, n in heads.items()})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.dropout(features)
        return {name: head(x) for name, head in self.heads.items()}
