"""Exceptions that carry enough context (file, row, field) for a user to fix their data."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A problem with user data, pointing at the exact place.

    >>> str(DataError("expected an int", path="a.csv", row=3, field="verb_class"))
    'a.csv: row 3: field verb_class: expected an int'
    """

    def __init__(self, message: str, *, path: str | Path | None = None, row: int | None = None,
                 field: str | None = None):
        self.path, self.row, self.field, self.message = path, row, field, message
        parts = []
        if path is not None:
            parts.append(str(path))
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field}")
        parts.append(message)
        super().__init__(": ".join(parts))


class MediaError(DataError):
    """A video or audio file that cannot be decoded (corrupt, truncated, missing stream)."""


class WeightsNotFoundError(FileNotFoundError):
    """Raised by the weights resolver with instructions on how to provide the weights."""
