"""modalbridge — reference implementations of multimodal alignment, translation, fusion and
knowledge-transference systems (see ``docs/index.md``)."""

__version__ = "0.1.0"
