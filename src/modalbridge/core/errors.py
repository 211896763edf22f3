"""Exceptions that carry enough context (file, row, field) for a user to fix their data."""

from __future__ import annotations

from collections.abc import Sequence
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


def describe_user_error(exc: BaseException, argv: Sequence[str] | None = None) -> str | None:
    """The one-line message the CLI prints for an expected failure (bad data, media, checkpoint, weights,
    a missing file, an unknown name, a bad config key or value), or ``None`` for a bug (the CLI then shows
    the traceback). ``argv``: the command line, to say where a bad config key was given."""
    if isinstance(exc, USER_ERRORS):
        if isinstance(exc, FileNotFoundError) and not isinstance(exc, WeightsNotFoundError) and exc.filename:
            return f"{exc.filename}: {exc.strerror or 'not found'}"
        if isinstance(exc, DataError):
            return str(exc) + _missing_folder_hint(exc.path)
        return str(exc)
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) and exc.args[0].startswith("unknown "):
        return exc.args[0]  # registry look-ups: "unknown model 'x'; known: …"
    from modalbridge.core.config_errors import describe_config_error, is_config_error

    if is_config_error(exc):
        return describe_config_error(exc, argv or ())
    return None


def _missing_folder_hint(path: str | Path | None) -> str:
    """`` (the folder X does not exist)`` when the file named by an error sits under a folder that is missing
    (a mistyped dataset root), else ``""``."""
    if path is None:
        return ""
    path = Path(path)
    if path.exists() or path.parent.exists():
        return ""
    top = path.parent
    while not top.parent.exists():
        top = top.parent
    return f" (the folder {top} does not exist)"
