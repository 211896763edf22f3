"""Decoding strategies for scene models (spec §5), batched over scenes and over beam hypotheses.

A decoder starts with every clip-art's x, y, o at their MASK ids and fills them in, one *step* (= one forward
pass over text + clip-arts; the text cannot be cached, attention being bidirectional) at a time:

=============  =====================================================================  =======================
name           what each step places                                                  passes per scene (N)
=============  =====================================================================  =======================
``ss``         every clip-art, in one pass                                            1
``ro``         the next clip-art of a random permutation (``generator``)              N
``ho``         the next clip-art in human order: sky, large, people, animals,         N
               clothing, food, toys (stable: ties keep the slot order)
``hc``         the clip-art the model is most confident about (discrete only;         N
               ``criterion="joint"`` = max log p_x + log p_y + log p_o, or
               ``"reference"`` = max of their *product*, the reference code's rule)
``hc-beam``    beam search (``beam=3``) over which clip-art to place next; score =    1 + beam·(N − 1)
               product of the placed clip-arts' p_x·p_y·p_o (discrete only)           (N ≥ beam)
``le``         the clip-art with the lowest H(x) + H(y) + H(o) in bits (discrete)     N
=============  =====================================================================  =======================

A placed clip-art gets its argmax bins (restricted to real bins, so no MASK/PAD id is ever output) and
stays fixed; the continuous model's x̂, ŷ are fed back as ⌈x̂⌉, ⌈ŷ⌉ (clamped to valid bins) while its final
pixels come from the real values (``bin_centre(x̂)``).

Batching: every strategy keeps per-scene ``placed`` masks and runs each step only on the rows (scenes, or
scene × hypothesis for the beam) that still have clip-arts to place, so a ragged batch needs max-N forward
calls, not ΣN, a padded slot is never selected and a placed clip-art is never overwritten (the reference's
batched HC/LE re-selected slot 0 once a shorter scene was exhausted). Every scene decodes exactly as it does
alone (the model is padding-invariant); :func:`decode_one_at_a_time` is that one-scene-at-a-time decoder,
the benchmark's baseline.

Also here: :func:`complete_group` (scene completion, Table 3.2), :func:`leave_one_out` (model selection on
val) and :func:`heatmap`. All run under ``torch.inference_mode()`` with the model in eval mode (its previous
mode is restored).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from modalbridge.tasks.scenes.vocab import (
    GROUP_OF_ID,
    GROUPS,
    O_MASK,
    O_PAD,
    X_BINS,
    X_MASK,
    X_PAD,
    Y_BINS,
    Y_MASK,
    Y_PAD,
    bin_centre,
    x_bin,
    y_bin,
)

__all__ = [
    "STRATEGIES",
    "Decoded",
    "complete_group",
    "decode",
    "decode_one_at_a_time",
    "heatmap",
    "highest_confidence",
    "highest_confidence_beam",
    "human_order",
    "leave_one_out",
    "lowest_entropy",
    "random_order",
    "single_step",
]

Batch = Mapping[str, torch.Tensor]
#: scores of candidates that exist are clamped above this, so they always rank before non-candidates (-inf)
_FLOOR = -1e30


@dataclass
class Decoded:
    """A decoded batch (B scenes, N slots). Padding slots hold 0 everywhere (and ``order`` −1).

    Attributes:
        x, y, o: (B, N) long — position bins (x 0–25, y 0–20) and flip (0/1); for clip-arts the decoder did not
            predict (completion, leave-one-out) the ground truth's.
        x_px, y_px: (B, N) float — pixels: ``bin_centre`` of the bins, or of the continuous model's real values.
        order: (B, N) long — the step at which each clip-art was placed (0 = first pass); −1 for padding and
            for given (not predicted) clip-arts.
        predicted: (B, N) bool — the slots the decoder predicted.
        passes: int — model forward calls run for the whole batch (a batched call counts once).
        scene_passes: (B,) long — forward passes per scene (one per row the scene occupied in a call; each beam
            hypothesis is a row): SS 1, RO/HO/HC/LE N, HC-beam 1 + beam·(N − 1) for N ≥ beam.
    """

    x: torch.Tensor
    y: torch.Tensor
    o: torch.Tensor
    x_px: torch.Tensor
    y_px: torch.Tensor
    order: torch.Tensor
    predicted: torch.Tensor
    passes: int
    scene_passes: torch.Tensor

    def pixels(self) -> torch.Tensor:
        """(B, N, 2) float pixels ``(x_px, y_px)``."""
        return torch.stack([self.x_px, self.y_px], dim=-1)


# -- shared machinery -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _eval(model: nn.Module):
    """Eval mode (no dropout) for the duration, then the model's previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _kind(model: nn.Module, strategy: str) -> str:
    kind = getattr(model, "kind", None)
    if kind not in ("discrete", "continuous"):
        raise ValueError(f"decoding needs a scene model with kind 'discrete' or 'continuous', got {kind!r}")
    if kind == "continuous" and strategy in ("hc", "hc-beam", "le", "heatmap"):
        raise ValueError(f"strategy {strategy!r} needs per-bin probabilities: it works with discrete models "
                         "only; decode continuous models with 'ss', 'ro' or 'ho'")
    return kind


@dataclass
class _Prediction:
    """What one forward pass says about every slot of R rows (all (R, N))."""

    x: torch.Tensor  # argmax bin (long), ⌈x̂⌉ for the continuous model
    y: torch.Tensor
    o: torch.Tensor
    x_real: torch.Tensor  # float: the bin itself, or x̂
    y_real: torch.Tensor
    log_p: torch.Tensor | None = None  # (R, N, 3) log p of the chosen x, y, o (discrete)
    entropy: torch.Tensor | None = None  # (R, N) H(x) + H(y) + H(o) in bits (discrete)


def _entropy_bits(log_probs: torch.Tensor) -> torch.Tensor:
    """(…, V) log-probs → (…,) entropy in bits (0·log 0 = 0, so ``-inf`` classes are fine)."""
    return torch.special.entr(log_probs.exp()).sum(dim=-1) / math.log(2)


def _read(kind: str, out: Mapping[str, torch.Tensor]) -> _Prediction:
    """Model outputs → the choice for every slot (argmax over real bins only)."""
    o_lp, o = out["o"][..., :2].float().max(dim=-1)
    if kind == "continuous":
        x_real, y_real = out["xy"].float().unbind(dim=-1)
        x = torch.ceil(x_real).long().clamp(0, X_BINS - 1)
        y = torch.ceil(y_real).long().clamp(0, Y_BINS - 1)
        return _Prediction(x, y, o, x_real, y_real)
    x_lp, x = out["x"][..., :X_BINS].float().max(dim=-1)
    y_lp, y = out["y"][..., :Y_BINS].float().max(dim=-1)
    entropy = sum(_entropy_bits(out[k].float()) for k in ("x", "y", "o"))
    return _Prediction(x, y, o, x.float(), y.float(), torch.stack([x_lp, y_lp, o_lp], dim=-1), entropy)


def _used_width(mask: torch.Tensor) -> int:
    """Columns up to the last True of any row of a (R, L) bool mask (at least 1)."""
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return max(int((mask * positions).max()), 1) if mask.numel() else 1


def _pad_slots(t: torch.Tensor, n: int, value: float) -> torch.Tensor:
    """(R, m, …) → (R, n, …) filled with ``value``."""
    if t.shape[1] == n:
        return t
    pad = t.new_full((t.shape[0], n - t.shape[1], *t.shape[2:]), value)
    return torch.cat([t, pad], dim=1)


def _forward(model: nn.Module, batch: Batch, rows: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             o: torch.Tensor, kind: str) -> _Prediction:
    """One forward call on scene rows ``rows`` (R,) (repeats allowed) with inputs x, y, o (R, N).

    The call is cut to the rows' own text length and clip-art slots (the models are padding-invariant, so
    this changes nothing but the cost: late steps run only the scenes with the most clip-arts); the
    prediction is padded back to N slots (padding slots are never open, so never chosen)."""
    text_mask, cliparts = batch["text_mask"][rows], batch["cliparts"][rows]
    t, m = _used_width(text_mask), _used_width(cliparts != 0)
    out = model(batch["input_ids"][rows, :t], text_mask[:, :t], cliparts[:, :m], x[:, :m], y[:, :m], o[:, :m])
    pred = _read(kind, out)
    n = x.shape[1]
    for name in ("x", "y", "o", "x_real", "y_real"):
        setattr(pred, name, _pad_slots(getattr(pred, name), n, 0))
    if pred.log_p is not None:
        pred.log_p, pred.entropy = _pad_slots(pred.log_p, n, -math.inf), _pad_slots(pred.entropy, n, math.inf)
    return pred


class _State:
    """Inputs and placements of B rows: x, y, o (B, N) long model inputs (MASK where unplaced, PAD on
    padding), x_real, y_real (B, N) float, placed (B, N) bool, order (B, N) long."""

    def __init__(self, cliparts: torch.Tensor):
        self.valid = cliparts != 0
        self.x = torch.where(self.valid, X_MASK, X_PAD)
        self.y = torch.where(self.valid, Y_MASK, Y_PAD)
        self.o = torch.where(self.valid, O_MASK, O_PAD)
        self.x_real = torch.zeros(cliparts.shape, device=cliparts.device)
        self.y_real = torch.zeros_like(self.x_real)
        self.placed = torch.zeros_like(self.valid)
        self.order = torch.full_like(cliparts, -1)

    def open(self) -> torch.Tensor:
        """(B, N) bool: real clip-arts not yet placed."""
        return self.valid & ~self.placed

    def place(self, rows: torch.Tensor, pick: torch.Tensor, pred: _Prediction, step: int) -> None:
        """Fix the picked slots (R, N) bool of rows (R,) at the prediction's values."""
        for name in ("x", "y", "o", "x_real", "y_real"):
            current = getattr(self, name)
            current[rows] = torch.where(pick, getattr(pred, name), current[rows])
        self.placed[rows] |= pick
        self.order[rows] = torch.where(pick, step, self.order[rows])


def _result(kind: str, valid: torch.Tensor, x, y, o, x_real, y_real, order, predicted, passes: int,
            scene_passes: torch.Tensor) -> Decoded:
    """Assemble a :class:`Decoded`, zeroing padding slots."""
    zero = torch.zeros_like(x)
    x, y, o = (torch.where(valid, v, zero) for v in (x, y, o))
    if kind == "discrete":
        x_real, y_real = x.float(), y.float()
    x_px = torch.where(valid, bin_centre(x_real.float()), 0.0)
    y_px = torch.where(valid, bin_centre(y_real.float()), 0.0)
    return Decoded(x, y, o, x_px, y_px, torch.where(valid, order, -1), predicted & valid, passes, scene_passes)


def _one_hot(index: torch.Tensor, n: int) -> torch.Tensor:
    """(R,) slot index → (R, n) bool."""
    return nn.functional.one_hot(index, n).bool()


# -- sequential strategies --------------------------------------------------------------------------------------
#: chooser(prediction, open (R, N) bool, rows (R,)) → picked slots (R, N) bool
Chooser = Callable[[_Prediction, torch.Tensor, torch.Tensor], torch.Tensor]


def _sequential(model: nn.Module, batch: Batch, choose: Chooser, kind: str) -> Decoded:
    """The loop shared by SS/RO/HO/HC/LE: each step, one forward call on the scenes with clip-arts left, and
    ``choose`` says which of their open slots to fix now."""
    state = _State(batch["cliparts"])
    b, n = state.valid.shape
    scene_passes = torch.zeros(b, dtype=torch.long, device=state.valid.device)
    passes = 0
    for step in range(n):
        live = state.open().any(dim=1)
        if not live.any():
            break
        rows = live.nonzero().squeeze(1)
        pred = _forward(model, batch, rows, state.x[rows], state.y[rows], state.o[rows], kind)
        state.place(rows, choose(pred, state.open()[rows], rows), pred, step)
        passes += 1
        scene_passes[rows] += 1
    return _result(kind, state.valid, state.x, state.y, state.o, state.x_real, state.y_real, state.order,
                   state.valid, passes, scene_passes)


def _by_priority(priority: torch.Tensor) -> Chooser:
    """Chooser placing, per row, the open slot with the lowest ``priority`` (B, N)."""

    def choose(pred: _Prediction, open_: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        key = torch.where(open_, priority[rows], math.inf)
        return _one_hot(key.argmin(dim=1), open_.shape[1]) & open_

    return choose


def _by_score(score: Callable[[_Prediction], torch.Tensor]) -> Chooser:
    """Chooser placing, per row, the open slot with the highest ``score(pred)`` (R, N)."""

    def choose(pred: _Prediction, open_: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        key = torch.where(open_, score(pred).clamp(min=_FLOOR), -math.inf)
        return _one_hot(key.argmax(dim=1), open_.shape[1]) & open_

    return choose


@torch.inference_mode()
def single_step(model: nn.Module, batch: Batch) -> Decoded:
    """SS: one pass on the all-masked scenes places every clip-art."""
    kind = _kind(model, "ss")
    with _eval(model):
        return _sequential(model, batch, lambda pred, open_, rows: open_, kind)


@torch.inference_mode()
def random_order(model: nn.Module, batch: Batch, generator: torch.Generator | None = None) -> Decoded:
    """RO: clip-arts placed one per pass in a random order (one permutation per scene, drawn on the CPU from
    ``generator``: a seeded generator makes it reproducible)."""
    kind = _kind(model, "ro")
    cliparts = batch["cliparts"]
    priority = torch.rand(cliparts.shape, generator=generator).to(cliparts.device)
    with _eval(model):
        return _sequential(model, batch, _by_priority(priority), kind)


def human_priority(cliparts: torch.Tensor) -> torch.Tensor:
    """(B, N) placement rank of each slot in human order: group (sky, large, people, animals, clothing,
    food, toys), then slot order (a stable sort by group)."""
    group = torch.as_tensor(GROUP_OF_ID, device=cliparts.device)[cliparts]
    slot = torch.arange(cliparts.shape[1], device=cliparts.device)
    return (group * cliparts.shape[1] + slot).float()


@torch.inference_mode()
def human_order(model: nn.Module, batch: Batch) -> Decoded:
    """HO: clip-arts placed one per pass in human (group) order."""
    kind = _kind(model, "ho")
    with _eval(model):
        return _sequential(model, batch, _by_priority(human_priority(batch["cliparts"])), kind)


CRITERIA = ("joint", "reference")


@torch.inference_mode()
def highest_confidence(model: nn.Module, batch: Batch, criterion: str = "joint") -> Decoded:
    """HC (greedy, discrete only): each pass places the open clip-art with the highest confidence —
    ``"joint"``: log p_x + log p_y + log p_o of its argmax bins (the joint probability); ``"reference"``: the
    *product* of those three log-probabilities, the reference code's rule (spec §5)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    kind = _kind(model, "hc")
    if criterion == "joint":
        score = lambda pred: pred.log_p.sum(dim=-1)  # noqa: E731
    else:
        score = lambda pred: pred.log_p.prod(dim=-1)  # noqa: E731
    with _eval(model):
        return _sequential(model, batch, _by_score(score), kind)


@torch.inference_mode()
def lowest_entropy(model: nn.Module, batch: Batch) -> Decoded:
    """LE (greedy, discrete only): each pass places the open clip-art with the lowest H(x) + H(y) + H(o),
    entropies in bits of the model's full distributions."""
    kind = _kind(model, "le")
    with _eval(model):
        return _sequential(model, batch, _by_score(lambda pred: -pred.entropy), kind)


# -- beam search ------------------------------------------------------------------------------------------------
@dataclass
class _Beam:
    """K hypotheses per scene: inputs ``x``, ``y``, ``o`` and ``order`` (B, K, N) long, ``score`` (B, K) = sum of
    the placed clip-arts' log-confidences (``-inf`` for dead hypotheses), ``alive`` (B, K) bool."""

    x: torch.Tensor
    y: torch.Tensor
    o: torch.Tensor
    order: torch.Tensor
    score: torch.Tensor
    alive: torch.Tensor

    @classmethod
    def start(cls, state: _State, k: int) -> _Beam:
        """K copies of the all-masked scenes; only the first alive, with score 0."""
        copies = [v[:, None].repeat(1, k, 1) for v in (state.x, state.y, state.o, state.order)]
        b = state.x.shape[0]
        score = torch.full((b, k), -math.inf, device=state.x.device)
        score[:, 0] = 0.0
        return cls(*copies, score, score == 0)

    def rows(self, name: str, flat: torch.Tensor) -> torch.Tensor:
        """Hypotheses ``flat`` (indices into B·K) of field ``name``: (R, N)."""
        return getattr(self, name).flatten(0, 1)[flat]

    def grow(self, parent: torch.Tensor, slot: torch.Tensor, picks: torch.Tensor, score: torch.Tensor,
             alive: torch.Tensor, step: int) -> _Beam:
        """New hypotheses (B, K): copies of hypothesis ``parent`` with clip-art ``slot`` placed at
        ``picks[b, parent, slot]`` ((B, K, N, 3) argmax bins); dead ones (``~alive``) place nothing."""
        k, n = self.x.shape[1:]
        fields = [t.gather(1, parent[..., None].expand(-1, -1, n)) for t in (self.x, self.y, self.o, self.order)]
        parent_picks = picks.gather(1, parent[..., None, None].expand(-1, -1, n, 3))  # (B, K, N, 3)
        chosen = parent_picks.gather(2, slot[..., None, None].expand(-1, -1, 1, 3))  # (B, K, 1, 3)
        put = _one_hot(slot, n) & alive[..., None]
        x, y, o = (torch.where(put, chosen[..., i], t) for i, t in enumerate(fields[:3]))
        order = torch.where(put, step, fields[3])
        return _Beam(x, y, o, order, torch.where(alive, score, -math.inf), alive)

    def keep_where(self, finished: torch.Tensor, old: _Beam) -> _Beam:
        """This beam, except scenes ``finished`` (B,) bool, which keep ``old``'s hypotheses."""
        f3, f2 = finished[:, None, None], finished[:, None]
        return _Beam(*(torch.where(f3, a, b) for a, b in zip((old.x, old.y, old.o, old.order),
                                                             (self.x, self.y, self.o, self.order))),
                     torch.where(f2, old.score, self.score), torch.where(f2, old.alive, self.alive))


def _top(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` (sorted) along dim 1, padded with ``-inf`` / index 0 when there are fewer than ``k``."""
    values, index = scores.topk(min(k, scores.shape[1]), dim=1)
    if values.shape[1] < k:
        pad = k - values.shape[1]
        values = torch.cat([values, values.new_full((values.shape[0], pad), -math.inf)], dim=1)
        index = torch.cat([index, index.new_zeros(index.shape[0], pad)], dim=1)
    return values, index


def _beam_step(hyps: _Beam, flat: torch.Tensor, pred: _Prediction, n_children: torch.Tensor, step: int) -> _Beam:
    """Expand the run hypotheses ``flat`` (R,) with their prediction: every open clip-art is a child scored
    parent + log p_x + log p_y + log p_o; the K best children of each scene (``n_children`` (B,) exist) form
    the new beam."""
    b, k, n = hyps.x.shape
    open_ = hyps.rows("x", flat) == X_MASK  # unplaced real clip-arts (placed ones hold real bins)
    child = torch.full((b * k, n), -math.inf, device=flat.device)
    own = pred.log_p.sum(dim=-1).clamp(min=_FLOOR)
    child[flat] = torch.where(open_, hyps.score.flatten()[flat, None] + own, -math.inf)
    picks = torch.zeros(b * k, n, 3, dtype=torch.long, device=flat.device)
    picks[flat] = torch.stack([pred.x, pred.y, pred.o], dim=-1)
    score, best = _top(child.view(b, k * n), k)
    alive = torch.arange(k, device=flat.device) < n_children.clamp(max=k)[:, None]
    return hyps.grow(best // n, best % n, picks.view(b, k, n, 3), score, alive, step)


@torch.inference_mode()
def highest_confidence_beam(model: nn.Module, batch: Batch, beam: int = 3) -> Decoded:
    """HC with a beam over which clip-art to place next (spec §5; discrete only).

    Step 0: one pass on the all-masked scene; each clip-art placed at its argmax is a candidate scored
    log p_x + log p_y + log p_o; the ``beam`` best are the hypotheses. Each later step: one pass per
    hypothesis (all hypotheses of all scenes in one forward call, (B·beam) rows at most); every open clip-art
    of every hypothesis is a child scored parent + its own log-confidence; the ``beam`` best children of the
    scene survive (duplicates reached in a different order are not merged, as in the reference). After N − 1
    steps the best hypothesis is returned. Scenes with fewer clip-arts than ``beam`` keep fewer hypotheses;
    N = 1, 2 work.
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    kind = _kind(model, "hc-beam")
    state = _State(batch["cliparts"])
    b, n = state.valid.shape
    count = state.valid.sum(dim=1)  # (B,) clip-arts per scene
    scene_passes = torch.zeros(b, dtype=torch.long, device=count.device)
    hyps, passes = _Beam.start(state, beam), 0
    with _eval(model):
        for step in range(n):
            live = count > step  # scenes with an open clip-art
            active = hyps.alive & live[:, None]  # (B, K) hypotheses to run
            if not active.any():
                break
            flat = active.flatten().nonzero().squeeze(1)  # indices into B·K
            pred = _forward(model, batch, flat // beam, hyps.rows("x", flat), hyps.rows("y", flat),
                            hyps.rows("o", flat), kind)
            n_children = active.sum(dim=1) * (count - step)  # each run hypothesis has count − step open slots
            hyps = _beam_step(hyps, flat, pred, n_children, step).keep_where(~live, hyps)
            passes += 1
            scene_passes += active.sum(dim=1)
    best = [t[:, 0] for t in (hyps.x, hyps.y, hyps.o, hyps.order)]  # hypotheses are sorted: 0 is the best
    return _result(kind, state.valid, *best[:3], best[0].float(), best[1].float(), best[3], state.valid, passes,
                   scene_passes)


# -- entry points -----------------------------------------------------------------------------------------------
STRATEGIES: dict[str, Callable[..., Decoded]] = {
    "ss": single_step,
    "ro": random_order,
    "ho": human_order,
    "hc": highest_confidence,
    "hc-beam": highest_confidence_beam,
    "le": lowest_entropy,
}


def decode(model: nn.Module, batch: Batch, strategy: str, *, generator: torch.Generator | None = None,
           criterion: str = "joint", beam: int = 3) -> Decoded:
    """Decode a scene batch with one of :data:`STRATEGIES` (``"ss"``, ``"ro"``, ``"ho"``, ``"hc"``,
    ``"hc-beam"``, ``"le"``). Each option is used by the strategy it belongs to and ignored by the others:
    ``generator`` by RO, ``criterion`` by greedy HC, ``beam`` by HC-beam."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown decoding strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    options = {"ro": {"generator": generator}, "hc": {"criterion": criterion}, "hc-beam": {"beam": beam}}
    return STRATEGIES[strategy](model, batch, **options.get(strategy, {}))


_TEXT_KEYS = ("input_ids", "text_mask")
_SLOT_KEYS = ("cliparts", "x", "y", "o", "x_label", "y_label", "o_label", "x_px", "y_px", "o_gt")


def _scene(batch: Batch, i: int) -> dict[str, torch.Tensor]:
    """Scene ``i`` as a batch of one, cut to its own text length and clip-art count."""
    t = int(batch["text_mask"][i].sum())
    n = int((batch["cliparts"][i] != 0).sum())
    out = {k: batch[k][i:i + 1, :t] for k in _TEXT_KEYS}
    out.update({k: batch[k][i:i + 1, :n] for k in _SLOT_KEYS if k in batch})
    return out


def decode_one_at_a_time(model: nn.Module, batch: Batch, strategy: str, **options) -> Decoded:
    """The unbatched reference decoder: each scene decoded alone (batch of one, no padding), as the reference
    code does; same result as :func:`decode` (RO aside: its random draws differ). For benchmarks and tests."""
    cliparts = batch["cliparts"]
    b, n = cliparts.shape
    fields = {k: torch.zeros(b, n, dtype=dtype, device=cliparts.device)
              for k, dtype in (("x", torch.long), ("y", torch.long), ("o", torch.long), ("x_px", torch.float),
                               ("y_px", torch.float), ("predicted", torch.bool))}
    fields["order"] = torch.full((b, n), -1, dtype=torch.long, device=cliparts.device)
    scene_passes = torch.zeros(b, dtype=torch.long, device=cliparts.device)
    passes = 0
    for i in range(b):  # deliberately one scene at a time
        one = decode(model, _scene(batch, i), strategy, **options)
        m = one.x.shape[1]
        for key, value in fields.items():
            value[i, :m] = getattr(one, key)[0]
        scene_passes[i] = one.scene_passes[0]
        passes += one.passes
    return Decoded(passes=passes, scene_passes=scene_passes, **fields)


# -- conditional prediction: completion, leave-one-out, heat-map ------------------------------------------------
def ground_truth_inputs(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N) ground-truth x, y, o ids from ``x_px``, ``y_px``, ``o_gt`` (PAD on padding slots)."""
    valid = batch["cliparts"] != 0
    return (torch.where(valid, x_bin(batch["x_px"]), X_PAD), torch.where(valid, y_bin(batch["y_px"]), Y_PAD),
            torch.where(valid, batch["o_gt"].long(), O_PAD))


def _predict_each(model: nn.Module, batch: Batch, targets: torch.Tensor, kind: str, max_rows: int) -> Decoded:
    """Predict every target slot (B, N) bool on its own row: that slot masked, every other clip-art at its
    ground truth. Rows are run ``max_rows`` at a time."""
    gx, gy, go = ground_truth_inputs(batch)
    valid = batch["cliparts"] != 0
    targets = targets & valid
    scene, slot = targets.nonzero(as_tuple=True)  # (R,), (R,)
    x, y, o = gx.clone(), gy.clone(), go.clone()
    x_real, y_real = gx.float(), gy.float()
    passes = 0
    with _eval(model):
        for start in range(0, scene.numel(), max_rows):
            s, j = scene[start:start + max_rows], slot[start:start + max_rows]
            r = torch.arange(s.numel(), device=s.device)
            rx, ry, ro = gx[s], gy[s], go[s]
            rx[r, j], ry[r, j], ro[r, j] = X_MASK, Y_MASK, O_MASK
            pred = _forward(model, batch, s, rx, ry, ro, kind)
            x[s, j], y[s, j], o[s, j] = pred.x[r, j], pred.y[r, j], pred.o[r, j]
            x_real[s, j], y_real[s, j] = pred.x_real[r, j], pred.y_real[r, j]
            passes += 1
    order = torch.where(targets, 0, -1)
    return _result(kind, valid, x, y, o, x_real, y_real, order, targets, passes, targets.sum(dim=1))


@torch.inference_mode()
def complete_group(model: nn.Module, batch: Batch, group: str, max_rows: int = 1024) -> Decoded:
    """Scene completion (Table 3.2): every clip-art of ``group`` (one of :data:`~.vocab.GROUPS`) is predicted
    on its own row — only it masked, all other clip-arts (its group included) at their ground truth from
    ``x_px``, ``y_px``, ``o_gt``. Non-members keep their ground truth; ``predicted`` marks the members."""
    if group not in GROUPS:
        raise ValueError(f"unknown clip-art group {group!r}; known: {', '.join(GROUPS)}")
    kind = _kind(model, "completion")
    members = torch.as_tensor(GROUP_OF_ID, device=batch["cliparts"].device)[batch["cliparts"]] == GROUPS.index(group)
    return _predict_each(model, batch, members, kind, max_rows)


@torch.inference_mode()
def leave_one_out(model: nn.Module, batch: Batch, max_rows: int = 1024) -> Decoded:
    """Every clip-art predicted on its own row with all the others at their ground truth (the reference's
    validation decoding for model selection)."""
    kind = _kind(model, "leave-one-out")
    return _predict_each(model, batch, batch["cliparts"] != 0, kind, max_rows)


@torch.inference_mode()
def heatmap(model: nn.Module, batch: Batch, scene: int, slot: int, context: Decoded | None = None) -> torch.Tensor:
    """p(y) ⊗ p(x) for clip-art ``slot`` of scene ``scene`` with only that clip-art masked: a (21, 26) grid over
    all real bins (rows y 0–20, columns x 0–25; bins 25 and 20 lie off the canvas), renormalised over the real
    bins so it sums to 1. The other clip-arts sit at the ``context`` layout's bins (e.g. the decoded scene of a
    user's text) or, without one, at the batch's ground truth. Discrete models only."""
    _kind(model, "heatmap")
    if not 0 <= scene < batch["cliparts"].shape[0] or not 0 <= slot < batch["cliparts"].shape[1] \
            or int(batch["cliparts"][scene, slot]) == 0:
        raise ValueError(f"heatmap: scene {scene}, slot {slot} is not a clip-art of this batch")
    if context is None:
        gx, gy, go = ground_truth_inputs(batch)
    else:
        valid = batch["cliparts"] != 0
        gx, gy, go = (torch.where(valid, v, pad) for v, pad in
                      ((context.x, X_PAD), (context.y, Y_PAD), (context.o, O_PAD)))
    rows = torch.tensor([scene], device=gx.device)
    x, y, o = gx[rows], gy[rows], go[rows]
    x[0, slot], y[0, slot], o[0, slot] = X_MASK, Y_MASK, O_MASK
    with _eval(model):
        out = model(batch["input_ids"][rows], batch["text_mask"][rows], batch["cliparts"][rows], x, y, o)
    px = torch.softmax(out["x"][0, slot, :X_BINS].float(), dim=-1)
    py = torch.softmax(out["y"][0, slot, :Y_BINS].float(), dim=-1)
    return py[:, None] * px[None, :]
