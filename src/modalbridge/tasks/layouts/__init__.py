"""Compositional action recognition from spatio-temporal object layouts and their fusion with video
frames (thesis 000 Ch. 6; ``spec/layout_fusion.md``): STLT, S&TLT, R3D / R3D-Transformer and the fusion
schemes PFF, PBF, EF, VATF, LCF, CAF, CACNF.

Batch contract shared by the data modules (:mod:`modalbridge.datasets.layouts`) and every model here — all
models take the batch dict and return ``{"action": logits, …}``:

========================  ====================  ==============================================================
key                       shape / dtype         meaning
========================  ====================  ==============================================================
``categories``            (B, T, M) int64       per frame slot: 0 = pad, slot 0 is the frame's class object
``boxes``                 (B, T, M, 4) float    normalised ``x1, y1, x2, y2`` in [0, 1]
``scores``                (B, T, M) float       detector scores (fed to a score embedding only for AG)
``frame_types``           (B, T) int64          0 = pad; SSv2 start 1 / regular 2 / empty 3 / extract 4
``lengths``               (B,) int64            real frames incl. the final "extract" frame (n + 1)
``rgb``                   (B, 3, Ta, S, S)      appearance clip (32 frames stride 2 in the paper)
``flow``                  (B, 3, Ta, S, S)      optional: the appearance clip's optical flow (u, v, 0), same crop
                                                (for a distillation flow teacher; no layout model reads it)
``frames``                (B, T, 3, S, S)       RGB at the layout frame indices (PFF/PBF; zeros at extract/pad)
``action``                (B,) int64 | (B, C)   class index (SSv2) or multi-hot float (Action Genome)
``index``                 (B,) int64            clip index in the split (metrics, DDP de-duplication)
========================  ====================  ==============================================================
"""
