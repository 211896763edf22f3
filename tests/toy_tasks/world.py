"""The toy world: two small seeded ``.npz`` files written on first use (``world://toy``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modalbridge.core.paths import worlds_dir

N_TRAIN, N_VAL, DIM = 48, 32, 24
CLASSES, SEEN = 6, 4


def toy_world(seed: int = 0) -> Path:
    root = worlds_dir() / f"toy-{seed}"
    if (root / "retrieval.npz").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=DIM)
    x = rng.normal(size=(N_TRAIN + N_VAL, DIM)).astype(np.float32)
    y = (x @ w + rng.normal(scale=2.0, size=len(x))).astype(np.float32)  # noisy: a wide model over-fits
    np.savez(root / "regression.npz", x_train=x[:N_TRAIN], y_train=y[:N_TRAIN], x_val=x[N_TRAIN:], y_val=y[N_TRAIN:])
    protos = rng.normal(size=(CLASSES, DIM)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=200)
    queries = (protos[labels] + rng.normal(scale=2.5, size=(200, DIM))).astype(np.float32)
    np.savez(root / "retrieval.npz", protos=protos, queries=queries, labels=labels)
    return root
