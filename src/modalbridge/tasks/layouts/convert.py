"""Released checkpoints of the reference code (``revisiting-spatial-temporal-layouts``) → our key names.

The reference saves ``state_dict()`` of its whole model: ``Stlt`` (``backbone.*`` + ``prediction_head.*``),
``StltBackbone`` alone (the few-shot backbones), ``TransformerResnet`` (R3D-Transformer) and the fusions
(LCF: ``layout_branch.*`` + ``appearance_branch.*`` + ``classifier.*``; CAF: the same under
``caf_backbone.`` plus ``mm_fusion.*``; CACNF: under ``backbone.``, with ``layout_/appearance_/fusion_classifier``;
spec card §5). The modules are the same as ours (post-LN ``nn.TransformerEncoderLayer`` stacks, GELU heads), only the names differ:

=====================================================================  ===============================
reference (prefix of an STLT body)                                      ours
=====================================================================  ===============================
``frames_embeddings.layout_embedding.category_box_embeddings.``        ``objects.`` (``category_embeddings``
                                                                       → ``category``, ``box_embedding`` →
                                                                       ``box``, ``score_embeddings`` →
                                                                       ``score``, ``layer_norm`` → ``norm``)
``frames_embeddings.layout_embedding.transformer.``                    ``spatial.``
``frames_embeddings.position_embeddings.``                             ``positions.``
``frames_embeddings.frame_type_embedding.``                            ``frame_types.``
``frames_embeddings.layer_norm.``                                      ``frame_norm.``
``transformer.``                                                       ``temporal.``
``prediction_head.`` / fusion ``classifier.`` (``fc1``, ``layer_norm``,  ``heads.action.`` (``dense``, ``norm``,
``fc2``)                                                               ``out``)
``resnet.resnet.{0,1,4,5,6,7}.`` (Hara's conv1, bn1, layer1-4)         ``trunk.backbone.trunk.`` (torchvision)
``projector.`` / ``cls_token`` / ``pos_embed (N+1, 1, H)``              ``proj.`` / ``cls`` / ``positions (1, N+1, H)``
``transformer.`` (appearance)                                          ``encoder.``
=====================================================================  ===============================

Dropped: the reference's spare ``encoder_layer.*`` copy (a template layer it registers next to its
``TransformerEncoder``) and the ``position_ids`` buffer. CAF/CACNF fusion layers (``mm_fusion.<i>``) need our
``reference_compat=True`` build (one cross-attention for both directions, a self-attention as stream b's
"feed-forward"): ``cross_attn`` → ``cross_a`` and ``cross_b`` (its LayerNorm, shared in the reference, is copied
to both of ours), ``layout_attn``/``appearance_attn`` → ``self_a``/``self_b``, ``layout_ffn`` (``linear1``,
``linear2``) → ``ffn_a`` (``sublayer.0``, ``sublayer.3``), ``appearance_ffn`` → ``ffn_b``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from modalbridge.nn.video_backbones import convert_hara_r3d_state_dict

_STLT_RENAMES = (  # (reference prefix, ours), first match wins
    ("frames_embeddings.layout_embedding.category_box_embeddings.category_embeddings.", "objects.category."),
    ("frames_embeddings.layout_embedding.category_box_embeddings.box_embedding.", "objects.box."),
    ("frames_embeddings.layout_embedding.category_box_embeddings.score_embeddings.", "objects.score."),
    ("frames_embeddings.layout_embedding.category_box_embeddings.layer_norm.", "objects.norm."),
    ("frames_embeddings.layout_embedding.transformer.", "spatial."),
    ("frames_embeddings.layout_embedding.encoder_layer.", None),
    ("frames_embeddings.position_ids", None),
    ("frames_embeddings.position_embeddings.", "positions."),
    ("frames_embeddings.frame_type_embedding.", "frame_types."),
    ("frames_embeddings.layer_norm.", "frame_norm."),
    ("transformer.", "temporal."),
)
_HEAD_RENAMES = (("fc1.", "dense."), ("layer_norm.", "norm."), ("fc2.", "out."))
_APPEARANCE_RENAMES = (("projector.", "proj."), ("transformer.", "encoder."))
_HARA_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def is_reference_state_dict(sd: Mapping[str, object]) -> bool:
    """True for a state dict saved by the reference code (any of its STLT / R3D-Transformer / fusion models)."""
    return any(k.startswith(("backbone.frames_embeddings.", "frames_embeddings.", "layout_branch.",
                             "appearance_branch.", "resnet.resnet.", "backbone.layout_branch.",
                             "caf_backbone.layout_branch.")) for k in sd)


def _rename(key: str, table) -> str | None:
    for old, new in table:
        if key.startswith(old) or key == old.rstrip("."):
            return None if new is None else new + key[len(old):]
    return key


def _stlt(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        new = _rename(key, _STLT_RENAMES)
        if new is not None:
            out[new] = value
    return out


def _head(sd: Mapping[str, torch.Tensor], head: str, heads: str = "heads") -> dict[str, torch.Tensor]:
    return {f"{heads}.{head}.{_rename(k, _HEAD_RENAMES)}": v for k, v in sd.items()}


def _appearance(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, hara = {}, {}
    for key, value in sd.items():
        if key.startswith("resnet.resnet."):
            child, _, rest = key[len("resnet.resnet."):].partition(".")
            if child in _HARA_CHILDREN:
                hara[f"{_HARA_CHILDREN[child]}.{rest}"] = value
        elif key == "cls_token":
            out["cls"] = value
        elif key == "pos_embed":
            out["positions"] = value.transpose(0, 1)  # (N+1, 1, H) sequence-first -> (1, N+1, H)
        elif not key.startswith("resnet."):  # (the wrapped Resnet3D's own classifier is dropped)
            out[_rename(key, _APPEARANCE_RENAMES)] = value  # the classifier stays: left for the caller
    out.update({f"trunk.backbone.trunk.{k}": v for k, v in convert_hara_r3d_state_dict(hara).items()})
    return out


_FUSION_RENAMES = (  # one reference CrossModalModule -> our CrossModalLayer (a = layout stream, b = appearance)
    ("cross_attn.attn.", ("cross_a.sublayer.", "cross_b.sublayer.")),  # one module for both directions
    ("cross_attn.ln.", ("cross_a.norm.", "cross_b.norm.")),  # its LayerNorm too: copied to both of ours
    ("layout_attn.attn.", ("self_a.sublayer.",)), ("layout_attn.ln.", ("self_a.norm.",)),
    ("appearance_attn.attn.", ("self_b.sublayer.",)), ("appearance_attn.ln.", ("self_b.norm.",)),
    ("layout_ffn.linear1.", ("ffn_a.sublayer.0.",)), ("layout_ffn.linear2.", ("ffn_a.sublayer.3.",)),
    ("layout_ffn.ln.", ("ffn_a.norm.",)),
    ("appearance_ffn.attn.", ("ffn_b.sublayer.",)), ("appearance_ffn.ln.", ("ffn_b.norm.",)),  # the SA slip
)


def _fusion_layers(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():  # "<i>.<reference name>"
        index, _, rest = key.partition(".")
        for old, news in _FUSION_RENAMES:
            if rest.startswith(old):
                out.update({f"fusion.layers.{index}.{new}{rest[len(old):]}": value for new in news})
                break
        else:
            out[f"mm_fusion.{key}"] = value  # unknown: left as it is (reported as unexpected)
    return out


def _split(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def convert_reference_state_dict(sd: Mapping[str, torch.Tensor], head: str = "action") -> dict[str, torch.Tensor]:
    """Rename a reference checkpoint's tensors to the keys of our ``stlt`` / ``r3d_transformer`` / ``lcf``
    models (the class head goes to ``heads.<head>``; R3D-Transformer's classifier to ``head.heads.<head>``).

    >>> sd = {"backbone.transformer.layers.0.linear1.bias": 0, "prediction_head.fc2.weight": 1,
    ...       "backbone.frames_embeddings.layout_embedding.encoder_layer.linear1.bias": 2}
    >>> sorted(convert_reference_state_dict(sd))
    ['heads.action.out.weight', 'temporal.layers.0.linear1.bias']
    """
    sd = dict(sd)
    for outer in ("caf_backbone.", "backbone."):  # CAF / CACNF: the two branches and the fusion layers
        if any(k.startswith(outer + "layout_branch.") for k in sd):
            inner = _split(sd, outer)
            out = {f"layout.{k}": v for k, v in _stlt(_split(inner, "layout_branch.")).items()}
            out.update({f"appearance.{k}": v for k, v in _appearance(_split(inner, "appearance_branch.")).items()})
            out.update(_fusion_layers(_split(inner, "mm_fusion.")))
            out.update(_head(_split(sd, "classifier."), head))  # CAF
            out.update(_head(_split(sd, "fusion_classifier."), head))  # CACNF
            for ours, theirs in (("layout_heads", "layout_classifier."), ("appearance_heads", "appearance_classifier.")):
                out.update(_head(_split(sd, theirs), head, heads=ours))
            return out
    if any(k.startswith(("layout_branch.", "appearance_branch.")) for k in sd):  # LCF
        out = {f"layout.{k}": v for k, v in _stlt(_split(sd, "layout_branch.")).items()}
        out.update({f"appearance.{k}": v for k, v in _appearance(_split(sd, "appearance_branch.")).items()})
        out.update(_head(_split(sd, "classifier."), head))
        out.update({k: v for k, v in sd.items()
                    if not k.startswith(("layout_branch.", "appearance_branch.", "classifier."))})
        return out
    if any(k.startswith("backbone.frames_embeddings.") for k in sd):  # Stlt
        out = {k: v for k, v in sd.items() if not k.startswith(("backbone.", "prediction_head."))}
        out.update(_stlt(_split(sd, "backbone.")))
        out.update(_head(_split(sd, "prediction_head."), head))
        return out
    if any(k.startswith("frames_embeddings.") for k in sd):  # StltBackbone (few-shot backbone file)
        return _stlt(sd)
    out = _appearance(sd)  # TransformerResnet
    return {(f"head.heads.{head}.{k[len('classifier.'):]}" if k.startswith("classifier.") else k): v
            for k, v in out.items()}


__all__ = ["convert_reference_state_dict", "is_reference_state_dict"]
