"""Medical text → 3-D points in a human atlas: the Soft Organ Distance regressor and its baselines (thesis 000
Ch. 4, Text2Atlas; ``spec/text2atlas.md``).

Modules (one job each):

* :mod:`.glossary` — the SIO glossary rules (drops, merges, renames, hand aliases) and the IGR functional groups.
* :mod:`.atlas` — :class:`~.atlas.Atlas`: a label volume with named organs, exact nearest-organ distances (boundary
  KD-trees), point sampling, deep-inside centres; readers for the SIO TIFF stack, labelled NIfTI volumes and our
  ``atlas.npz``.
* :mod:`.bioasq` — BioASQ allMeSH articles streamed from their published formats, the corpus rules (MeSH organ
  targets, animal filter, caps, keywords, occurrence targets and their patches), processed records, keyword masking.
* :mod:`.prepare` — ``modalbridge data prepare atlas`` (atlas + BioASQ → processed folder) and ``data check atlas``.
* :mod:`.world` — the embedded torso world (SIO layout + BioASQ ndjson) and the real-atlas brain world (MNI152 and
  named ROIs from the nilearn wheel).
* :mod:`.data` — processed records → samples (tokenised text, organ points drawn per epoch), collation into an
  :ref:`atlas batch <atlas-batch>`, the LightningDataModule with the within-organ and held-out protocols.
* :mod:`.losses` — SOD, the MSE baseline's loss, batch-all triplet loss.
* :mod:`.models` — the SOD regressor, organ classifier, Siamese and pooled-encoder baselines, naive baselines.
* :mod:`.metrics` — IOR, NVD, NVD-O, per-organ rows, IGR, Recall@K, Wilcoxon.
* :mod:`.module` — the LightningModule; :mod:`.infer` — ``modalbridge ground``; :mod:`.render` — slices and the
  3-D view; :mod:`.demo`; :mod:`.bench`.

Coordinates: voxel indices ``labels[x, y, z]``; ``center = shape / 2``; centred mm ``p = (idx − center) · spacing``;
the models' normalised space ``u = p / (center · spacing)`` ∈ [−1, 1]³ (anisotropic, as the reference).

.. _atlas-batch:

**Atlas batch** (B documents, T tokens, M loss-target organs, N points per organ, K organs):

================  ================  =========================================================================
key               shape/dtype       meaning
================  ================  =========================================================================
``index``         (B,) long         record ordinal in its split (after the protocol's selection)
``input_ids``     (B, T) long       WordPiece ids ``[CLS] … [SEP]``, 0-padded
``attention_mask`` (B, T) bool      real tokens
``points``        (B, M, N, 3) f32  normalised points drawn per (seed, epoch, record) from each target organ
``organ_mask``    (B, M) bool       real (not padded) target organs
``organs``        (B, M) long       loss-target organ indices (MeSH or occurrence), −1 padded
``eval_organs``   (B, M') long      MeSH organ indices (evaluation targets), −1 padded
``multi_hot``     (B, K) f32        loss-target organs as multi-hot (the classifier's target)
================  ================  =========================================================================

**Model outputs** (``model(input_ids, attention_mask)``): regressors ``{"point": (B, 3)}`` in normalised space,
the classifier ``{"logits": (B, K)}``, retrieval baselines ``{"embedding": (B, d)}``, naive baselines
``{"organ_probs": (B, K)}``.
"""
