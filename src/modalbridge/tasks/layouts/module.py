"""LightningModule of the layouts task: any registered layout / appearance / fusion model
(:mod:`modalbridge.tasks.layouts.models`) trained on the batch contract of :mod:`modalbridge.tasks.layouts`.

Losses (spec ``layout_fusion.md`` §4):

* single-label (SSv2 / Something-Else): cross-entropy on ``action``;
* multi-label (Action Genome on Charades, targets ``(B, 157)`` multi-hot): binary cross-entropy with logits,
  averaged over batch and classes; evaluation reports Charades mAP;
* models with auxiliary heads (CACNF: ``action_layout``, ``action_appearance``, ``action_fusion``, and
  ``action`` = the mean of the three): ``loss_mode="thesis"`` (default) sums the three auxiliary losses;
  ``loss_mode="reference"`` averages all four outputs, ensemble included, as the authors' code does.

Few-shot protocol (Something-Else 5/10-shot): ``init_from`` loads every non-head weight of a checkpoint trained on
the base classes, ``freeze_backbone`` freezes everything but the heads and keeps the frozen part in eval mode.
Fusion models can start from trained unimodal models, one checkpoint per branch: ``init_from={"layout":
"stlt.ckpt", "appearance": "r3d.ckpt"}`` (what the reference's ``from_pretrained`` call meant to do; the thesis's
R3D branch starts from Kinetics-pretrained weights, and its Fig. 6.3 compares the branches with the unimodal runs).
Metrics: top-1/top-5 of every output (``action`` and the auxiliary heads), or mAP for multi-label data.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from modalbridge.core.classifier import ClassifierModule
from modalbridge.core.registry import create_model
from modalbridge.core.weights import load_state_dict, strip_prefixes
from modalbridge.metrics import charades_map
from modalbridge.tasks.layouts.convert import convert_reference_state_dict, is_reference_state_dict

log = logging.getLogger(__name__)

AUX_SUFFIXES = ("_layout", "_appearance", "_fusion")


def is_head_module(name: str) -> bool:
    """Heads are the modules whose path has a component containing ``head`` (``head``, ``fusion_head`` …)."""
    return any("head" in part for part in name.split("."))


def is_head_parameter(name: str) -> bool:
    return is_head_module(name.rpartition(".")[0])


class LayoutModule(ClassifierModule):
    """Args:
        model: registered model name (``stlt``, ``stlt_joint``, ``r3d``, ``r3d_transformer``, ``pff``, ``pbf``,
            ``ef``, ``vatf``, ``lcf``, ``caf``, ``cacnf``).
        heads: ``{"action": num_classes}`` (linked from the data module by the CLI).
        model_kwargs: builder arguments (sizes, ``preset: tiny``, ``backbone``, ``reference_compat``…).
        weights: optional appearance-trunk checkpoint (torchvision or Hara R3D key names).
        multilabel: BCE + mAP (Action Genome) instead of CE + top-k.
        loss_mode: ``thesis`` | ``reference`` for models with auxiliary heads (see module docstring).
        init_from: checkpoint (``.ckpt`` / ``.safetensors``) whose non-head weights initialise the model, or
            ``{submodule: checkpoint}`` to initialise branches of a fusion model from unimodal runs.
        freeze_backbone: train the heads only (few-shot fine-tuning).
        init_heads: ``init_from`` also copies the classifier tensors (same classes), e.g. to evaluate a released
            checkpoint of the reference code (its key names are converted, see :mod:`.convert`).
        lr, weight_decay, warmup_epochs: AdamW 5e-5, 1e-3, 2 warm-up epochs of 20 in the paper.
    """

    def __init__(self, model: str = "stlt", heads: dict[str, int] | None = None, *,
                 model_kwargs: dict[str, Any] | None = None, weights: str | None = None, multilabel: bool = False,
                 loss_mode: str = "thesis", init_from: str | dict[str, str] | None = None,
                 freeze_backbone: bool = False, init_heads: bool = False,
                 lr: float = 5e-5, weight_decay: float = 1e-3, warmup_epochs: float = 2.0, ece_bins: int = 15,
                 optimizer: str = "adamw", schedule: str = "linear", warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins,
                         optimizer=optimizer, schedule=schedule, warmup_steps=warmup_steps)
        if loss_mode not in ("thesis", "reference"):
            raise ValueError(f"loss_mode must be thesis|reference, got {loss_mode!r}")
        self.save_hyperparameters()
        self.heads = dict(heads or {"action": 174})
        kwargs = dict(model_kwargs or {})
        if weights:
            kwargs["weights"] = weights
        self.model = create_model(model, heads=self.heads, **kwargs)
        self.multilabel, self.loss_mode, self.freeze_backbone = multilabel, loss_mode, freeze_backbone
        self.init_heads = init_heads
        if isinstance(init_from, dict):
            for prefix, path in init_from.items():
                self.load_backbone(path, prefix=prefix)
        elif init_from:
            self.load_backbone(init_from)
        if freeze_backbone:
            for name, p in self.model.named_parameters():
                p.requires_grad_(is_head_parameter(name))

    # ------------------------------------------------------------------ set-up
    def load_backbone(self, path: str, prefix: str = "") -> None:
        """Copy every non-head tensor of ``path`` whose name and shape match (few-shot: base → novel classes);
        with ``prefix`` the checkpoint's tensors go to that submodule (``"layout"`` → ``layout.<name>``)."""
        state = strip_prefixes(load_state_dict(path), prefixes=("model.",))
        if is_reference_state_dict(state):  # a released checkpoint of the reference code
            state = convert_reference_state_dict(state, head=next(iter(self.heads)))
        if prefix:
            state = {f"{prefix}.{k}": v for k, v in state.items()}
        own = self.model.state_dict()
        wanted = [k for k in state if k in own and (self.init_heads or not is_head_parameter(k))]
        keep = {k: state[k] for k in wanted if state[k].shape == own[k].shape}
        for k in sorted(set(wanted) - set(keep)):
            log.warning("%s: %s has shape %s, the model %s — not loaded", path, k, tuple(state[k].shape),
                        tuple(own[k].shape))
        if not keep:
            raise ValueError(f"{path}: no backbone tensor matches model {self.hparams.model!r} "
                             f"(checkpoint keys e.g. {list(state)[:3]})")
        missing = [k for k in own if k not in keep and not is_head_parameter(k) and k.startswith(prefix)]
        self.model.load_state_dict(keep, strict=False)
        log.info("initialised %d tensors from %s (%d backbone tensors not in it)", len(keep), path, len(missing))
        if missing:
            log.warning("backbone tensors left at their initial values: %s", missing[:5])

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_backbone:  # the frozen backbone stays in eval mode (dropout off)
            for name, module in self.model.named_modules():
                if name and not is_head_module(name):
                    module.eval()
        return self

    # ------------------------------------------------------------------ steps
    def label_heads(self) -> list[str]:
        return list(self.heads)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.model(batch)

    def _head_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # fp32 losses under bf16 autocast
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, target.float())
        return F.cross_entropy(logits, target)

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        logs, total = {}, []
        for h in self.label_heads():
            aux = [h + s for s in AUX_SUFFIXES if h + s in outputs]
            terms = aux if aux and self.loss_mode == "thesis" else [h, *aux]
            losses = {k: self._head_loss(outputs[k], batch[h]) for k in terms}
            logs.update({f"loss_{k}": v.detach() for k, v in losses.items()})
            stacked = torch.stack(list(losses.values()))
            total.append(stacked.sum() if aux and self.loss_mode == "thesis" else stacked.mean())
        return torch.stack(total).mean(), logs

    def eval_logits(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v for h in self.label_heads() for k, v in outputs.items() if k == h or k.startswith(h + "_")}

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return "val/action_map" if self.multilabel else super().monitor

    def compute_metrics(self, ev: dict[str, torch.Tensor], loader: str = "") -> dict[str, float]:
        if not self.multilabel:  # top-1/5 (and ECE) of every output, auxiliary heads included
            return super().compute_metrics(ev, loader)
        out = {"num_clips": float(len(ev["index"]))}
        for key in ev:
            if key.startswith("logits/"):
                name = key.partition("/")[2]
                head = name if name in self.heads else next(h for h in self.heads if name.startswith(h + "_"))
                try:
                    out[f"{name}_map"] = charades_map(ev[key].sigmoid(), ev[f"target/{head}"])
                except ValueError as exc:  # e.g. a sanity-check subset whose videos have no actions
                    log.warning("%s: %s; logging NaN", name, exc)
                    out[f"{name}_map"] = float("nan")
        return out

    def predict_step(self, batch, batch_idx):
        outputs = self(batch)
        probs = {h: (o.float().sigmoid() if self.multilabel else o.float().softmax(-1)) for h, o in outputs.items()}
        return {"index": batch["index"], **probs}
