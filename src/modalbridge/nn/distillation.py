"""Knowledge-distillation losses and ensemble weighting (thesis Ch. 7, LanViKD).

* :func:`kd_loss` — τ²·KL(teacher‖student) on temperature-softened distributions, batch mean.
* :func:`distillation_objective` — λ·KD + (1−λ)·CE (+ α·smooth-L1 for LanViKD's regression head).
* :func:`calibration_weights` — ensemble weights ``softmax(−e/γ)`` from held-out CEs ``e``.
* :func:`per_sample_weights` — the reference's per-sample option: ``softmax_m(−CE_m(x, y)/γ)`` per clip.
* :class:`LogitEnsemble` — weighted sum of teacher logits, per head (fixed or per-sample weights).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``τ² · mean_i Σ_c p_t (log p_t − log p_s)`` with ``p = softmax(z/τ)``; inputs ``(B, C)``.

    Golden: teacher [2, 0, 0] vs student [0, 0, 0] → 0.43304 (τ=1), 0.49314 (τ=2), 0.48952 (τ=3).
    """
    log_ps = F.log_softmax(student_logits.float() / tau, dim=-1)  # fp32 under bf16 autocast
    log_pt = F.log_softmax(teacher_logits.detach().float() / tau, dim=-1)
    return tau**2 * F.kl_div(log_ps, log_pt, log_target=True, reduction="batchmean")


def distillation_objective(student: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                           teacher: Mapping[str, torch.Tensor] | None, *, lam: float, tau: float
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``λ·KD + (1−λ)·CE`` averaged over the heads that have targets (EK: verb and noun).

    ``teacher`` may be ``None`` (or λ=0), which gives plain CE. Returns ``(loss, parts)``.
    """
    heads = [h for h in student if h in targets]
    ce = torch.stack([F.cross_entropy(student[h].float(), targets[h]) for h in heads]).mean()
    parts = {"ce": ce.detach()}
    if teacher is None or lam == 0:
        return ce, parts
    kd = torch.stack([kd_loss(student[h], teacher[h], tau) for h in heads]).mean()
    parts["kd"] = kd.detach()
    return lam * kd + (1 - lam) * ce, parts


def calibration_weights(errors: torch.Tensor, gamma: float) -> torch.Tensor:
    """Ensemble weights ``w_m = softmax_m(−e_m/γ)`` from each teacher's mean held-out CE ``e_m``.

    γ→∞ gives the plain mean, γ→0 the single best teacher. Golden: e=[0.5, 2.0], γ=1 → [0.81757, 0.18243].
    """
    errors = torch.as_tensor(errors, dtype=torch.float64)
    return torch.softmax(-errors / gamma, dim=0).float()


def per_sample_weights(teacher_logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-clip weights ``w_{m,b} = softmax_m(−CE(z_{m,b}, y_b)/γ)`` from logits ``(M, B, C)`` and labels ``(B,)``
    → ``(M, B)``, columns summing to 1.

    The reference's online "per-sample" scheme (the thesis discusses it, evaluates the held-out one): each
    clip's target leans on the teachers that are right about *that* clip. It needs the label, so it exists
    only while training. Golden: logits [[2, 0], [0, 1]] of two teachers on one clip of class 0, γ=1 →
    CEs [0.12693, 1.31326] → weights [0.76608, 0.23392].
    """
    m, b, c = teacher_logits.shape
    ce = F.cross_entropy(teacher_logits.reshape(m * b, c).float(), targets.repeat(m), reduction="none")
    return torch.softmax(-ce.reshape(m, b) / gamma, dim=0)


class LogitEnsemble(nn.Module):
    """``z_h = Σ_m w_{m,h} · z_{m,h}``: a weighted sum of teacher LOGITS per head.

    ``weights``: ``{head: (M,)}`` (rows sum to 1), teachers in a fixed order.
    ``forward(teacher_logits: list[{head: (B, C)}], targets=None) -> {head: (B, C)}``. With ``per_sample_gamma``
    set, ``forward`` needs ``targets`` ``{head: (B,)}`` and weighs each clip by :func:`per_sample_weights`
    instead (the fixed weights are then only used where no label is given, e.g. for evaluation).
    """

    def __init__(self, names: list[str], weights: Mapping[str, torch.Tensor], per_sample_gamma: float | None = None):
        super().__init__()
        self.names, self.per_sample_gamma = list(names), per_sample_gamma
        for h, w in weights.items():
            w = torch.as_tensor(w, dtype=torch.float32)
            if w.shape != (len(self.names),):
                raise ValueError(f"head {h}: expected {len(self.names)} weights, got shape {tuple(w.shape)}")
            self.register_buffer(f"w_{h}", w)
        self.heads = list(weights)

    def weight(self, head: str) -> torch.Tensor:
        return getattr(self, f"w_{head}")

    def forward(self, teacher_logits: list[Mapping[str, torch.Tensor]],
                targets: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        out = {}
        for h in self.heads:
            stacked = torch.stack([t[h].float() for t in teacher_logits])  # (M, B, C), fp32 under bf16 autocast
            if not torch.isfinite(stacked).all():
                bad = [self.names[m] for m in range(len(self.names)) if not torch.isfinite(stacked[m]).all()]
                raise FloatingPointError(f"non-finite logits from teacher(s) {bad} on head {h!r}")
            if self.per_sample_gamma is not None and targets is not None:
                w = per_sample_weights(stacked, targets[h], self.per_sample_gamma)
                out[h] = (w.float()[:, :, None] * stacked).sum(0)
            else:
                # element-wise, not einsum: autocast would run einsum's bmm in bf16
                out[h] = (self.weight(h)[:, None, None] * stacked).sum(0)
        return out
