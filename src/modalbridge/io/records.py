"""JSON files of a dataset read with errors a user can act on (file, line, what was expected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modalbridge.core.errors import DataError

__all__ = ["read_json_file"]


def read_json_file(path: str | Path, what: str = "JSON file") -> Any:
    """The parsed content of ``path``; a missing file or invalid JSON is a :class:`DataError` naming the file (and
    the line of the syntax error) — ``what`` says which file the user was expected to give."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise DataError(f"is a folder, expected the {what}", path=path) from None
    except UnicodeDecodeError:
        raise DataError(f"not UTF-8 text, expected the {what}", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, row=exc.lineno) from None
