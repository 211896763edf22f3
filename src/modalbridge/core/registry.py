"""Model registry shared by every task.

Tasks register builders with :func:`register_model`; users and other tasks create models by name
with :func:`create_model` (this is how a distillation teacher that is an STLT is obtained without
importing another task's package).

Input kinds (``register_model(..., inputs=...)``, what the model's ``forward`` takes):

================  ===========================================================================
``video``         a clip tensor ``(B, 3, T, H, W)`` (the default)
``text``          ``list[str]``
``layout``        a layout batch dict: ``categories (B, T, M)``, ``boxes (B, T, M, 4)``,
                  ``scores (B, T, M)``, ``frame_types (B, T)``, ``lengths (B,)``
                  (contract in :mod:`modalbridge.tasks.layouts`)
``video_batch``   a batch dict holding the clip as ``rgb (B, 3, T, H, W)`` (layout-task R3D models)
``video+layout``  a layout batch dict that also holds ``rgb (B, 3, T, H, W)`` and/or
                  ``frames (B, T, 3, H, W)`` (layout-task fusion models)
================  ===========================================================================

>>> @register_model("doc_example_linear", task="doc")
... def _linear(in_features: int = 4, out_features: int = 2):
...     import torch
...     return torch.nn.Linear(in_features, out_features)
>>> create_model("doc_example_linear", out_features=3).out_features
3
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str
    builder: Callable[..., Any]
    doc: str
    inputs: str = "video"  # what forward() takes: one of the input kinds of the module docstring
    example: Callable[[], Any] | None = None  # a small input for forward() (tests walk the registry with it)
    tiny: dict[str, Any] | None = None  # builder arguments for a CPU-sized instance (tests, smoke runs)

    def example_input(self) -> Any:
        """A small input ``forward`` accepts: the entry's own ``example``, else its input kind's."""
        if self.example is not None:
            return self.example()
        if self.inputs not in _KIND_EXAMPLES:
            raise KeyError(f"model {self.name!r}: no example input for input kind {self.inputs!r}; register the "
                           "model with example=...")
        return _KIND_EXAMPLES[self.inputs]()


def _video_example() -> Any:
    import torch

    return torch.randn(1, 3, 4, 32, 32)


#: example inputs of the generic input kinds (task-specific kinds come with each model's ``example``)
_KIND_EXAMPLES: dict[str, Callable[[], Any]] = {"video": _video_example, "text": lambda: ["cut the onion"]}


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(name: str, *, task: str, inputs: str = "video", example: Callable[[], Any] | None = None,
                   tiny: dict[str, Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``builder(**kwargs) -> nn.Module`` under ``name``; ``inputs`` says what the
    model's ``forward`` takes (one of the input kinds listed in this module's docstring), ``example`` makes
    a small such input and ``tiny`` are builder arguments for a CPU-sized instance (the registry test walks
    every model with them)."""

    def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ValueError(f"model name {name!r} is already registered by task {_REGISTRY[name].task!r}")
        doc = (builder.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = ModelEntry(name, task, builder, doc, inputs, example, dict(tiny or {}))
        return builder

    return deco


def _load_all() -> None:
    global _loaded
    if not _loaded:
        from modalbridge.core.plugins import import_models

        import_models()  # every task plugin's ``models`` modules register theirs on import
        _loaded = True


def list_models(task: str | None = None) -> list[str]:
    """Sorted names of registered models, optionally only those of one task."""
    _load_all()
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def model_entry(name: str) -> ModelEntry:
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **overrides: Any) -> Any:
    """Build a registered model; ``overrides`` go to its builder."""
    return model_entry(name).builder(**overrides)
