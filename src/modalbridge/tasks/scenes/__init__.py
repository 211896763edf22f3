"""Text → 2D clip-art scenes: SR-BERT and its baselines on Abstract Scenes v1.1 (thesis 000 Ch. 3,
``spec/sr_bert.md``).

Modules (one job each):

* :mod:`.vocab` — the 126 clip-arts, groups, poses/expressions, words, canvas and 20-px bins (shared by all).
* :mod:`.abstract_scenes` — the real raw release (``Scenes_10020.txt``, ``SimpleSentences*``, tuples,
  ``Pngs/``): reader, ``data prepare scenes`` (processed JSON + splits), ``data check scenes``.
* :mod:`.world` — the embedded world, written in the raw layout and prepared.
* :mod:`.data` — processed JSON → training/evaluation samples (tokenised text, masking, augmentation),
  collation into a :ref:`scene batch <scene-batch>`, the LightningDataModule.
* :mod:`.models` — SR-BERT discrete / continuous, the clip-art predictor, attention baselines, naive baselines.
* :mod:`.decoding` — batched decoding strategies (SS, RO, HO, HC greedy and beam, LE), scene completion,
  leave-one-out, heat-maps.
* :mod:`.metrics` — absolute/relative similarity, flip accuracy, completion and Text2Scene protocols.
* :mod:`.relations` — our automatic stand-in for the user study (sentences' explicit relations checked
  geometrically).
* :mod:`.render` — scenes drawn with the real clip-art PNGs or the world's; side-by-side and heat-map figures.
* :mod:`.module` — LightningModules; :mod:`.infer` — ``modalbridge scene``; :mod:`.demo`; :mod:`.bench`.

.. _scene-batch:

**Scene batch** (what :mod:`.data` collates, what models, decoders and metrics take; B scenes, T text
tokens, N clip-art slots):

================  ============  ==============================================================================
key               shape/dtype   meaning
================  ============  ==============================================================================
``index``         (B,) long     scene ordinal in its split file (the engine's sample id)
``input_ids``     (B, T) long   WordPiece ids ``[CLS] sentences… [SEP]``, 0-padded
``text_mask``     (B, T) bool   True on real text tokens
``cliparts``      (B, N) long   1-based clip-art ids (:data:`.vocab.CLIPARTS`), 0 = padding slot
``x``, ``y``      (B, N) long   input position bins; ``X_MASK``/``Y_MASK`` where hidden, ``X_PAD``/``Y_PAD`` on padding
``o``             (B, N) long   input flip (0/1); ``O_MASK`` where hidden, ``O_PAD`` on padding
``x_label`` …     (B, N) long   ``x_label``, ``y_label``, ``o_label``: target bins, ``IGNORE`` (-100) where no loss
``x_px``, ``y_px`` (B, N) float ground-truth pixels clamped to the 500×400 canvas (0 on padding)
``o_gt``          (B, N) long   ground-truth flip (0 on padding)
================  ============  ==============================================================================

**Model outputs** (``model(input_ids, text_mask, cliparts, x, y, o)``): discrete models return
``{"x": (B, N, 28), "y": (B, N, 23), "o": (B, N, 4)}`` log-probabilities over the full vocabularies;
continuous models ``{"xy": (B, N, 2) real-valued bins in [0, 25] × [0, 20], "o": (B, N, 4) log-probs}``.
"""
