"""Multimodal → RGB knowledge distillation (thesis 000 Ch. 7) and language → RGB distillation (LanViKD, 001).

Teachers (each trained alone with CE on one modality: RGB, optical flow, audio spectrograms, or the
narration text through a frozen MiniLM) are combined into a calibrated logit ensemble and distilled
into an RGB-only student with λ·τ²·KL(teacher‖student) + (1−λ)·CE (+ α·smooth-L1 onto the text
embedding for LanViKD)."""
