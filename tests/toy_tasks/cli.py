"""The toy task's verb and dataset check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root


def count(args) -> int:
    z = np.load(resolve_root(args.root) / "regression.npz")
    print(f"toy rows: {len(z['x_train'])} train, {len(z['x_val'])} validation")
    return 0


def check_toy(root: Path):
    path = Path(root) / "regression.npz"
    if not path.is_file():
        return [DataError("missing (the toy world writes it)", path=path)], {}
    z = np.load(path)
    return [], {"rows": len(z["x_train"]) + len(z["x_val"])}
