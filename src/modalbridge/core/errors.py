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


class CheckpointError(DataError):
    """A checkpoint that is missing, unreadable, or not one ``modalbridge fit`` wrote."""


#: exceptions the CLI reports as one message (no traceback unless --debug / MODALBRIDGE_DEBUG=1)
USER_ERRORS: tuple[type[BaseException], ...] = (DataError, WeightsNotFoundError, FileNotFoundError)


def describe_user_error(exc: BaseException) -> str | None:
    """The one-line message the CLI prints for an expected failure (bad data, media, checkpoint, weights,
    a missing file or an unknown name), or ``None`` for a bug (the CLI then shows the traceback)."""
    if isinstance(exc, USER_ERRORS):
        if isinstance(exc, FileNotFoundError) and not isinstance(exc, WeightsNotFoundError) and exc.filename:
            return f"{exc.filename}: {exc.strerror or 'not found'}"
        return str(exc)
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) and exc.args[0].startswith("unknown "):
        return exc.args[0]  # registry look-ups: "unknown model 'x'; known: …"
    return None
