"""JSON files of a dataset read with errors a user can act on (file, line, what was expected).

* :func:`read_json_file` — a small JSON file, parsed whole.
* :func:`iter_json_array` — the items of a top-level JSON array (or of the array under one key of a top-level
  object, e.g. BioASQ's ``{"articles": [...]}``), streamed: memory stays bounded by the read chunk and the
  largest single item, so a multi-GB file (FaLB's 2.3 GB ``train_full.json``) is never loaded whole.
* :func:`iter_json_object` — the ``(key, value)`` pairs of a top-level JSON object, streamed (a 600 MB KG
  JSON ``{"Q41421": {...}, ...}``).
* :func:`iter_json_lines` — JSON Lines (one value per line), streamed.

The streaming readers decode with :class:`json.JSONDecoder` ``raw_decode`` over a sliding text window
(:class:`JsonWindow`) read in chunks of ``chunk_size`` characters; ``.gz`` and ``.bz2`` files are decompressed
on the fly (:func:`open_text`). Text is UTF-8 (a BOM is skipped, undecodable bytes are replaced) and raw control
characters inside strings (tabs) are accepted. Malformed or truncated JSON is a
:class:`~modalbridge.core.errors.DataError` naming the file, the 1-based line (``row``) and the 0-based item
number; :func:`iter_json_array` and :func:`iter_json_lines` can instead hand bad items to an ``on_bad`` callback
and go on (a counted skip for a user of a multi-GB file).
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from modalbridge.core.errors import DataError

__all__ = ["CHUNK_SIZE", "MAX_ITEM", "MAX_LOGGED", "JsonWindow", "SkipCounter", "create_text", "iter_json_array",
           "iter_json_lines", "iter_json_object", "open_text", "read_json_file"]

log = logging.getLogger(__name__)

#: streaming readers read this many characters at a time
CHUNK_SIZE = 1 << 20
#: a single item longer than this (characters) is treated as malformed instead of read on forever
MAX_ITEM = 64 << 20

#: skips logged one by one per kind (:class:`SkipCounter`); later ones are only counted
MAX_LOGGED = 20

#: ``on_bad(ordinal, line, error)``: a bad item (``error`` = the JSON error message) or, with ``error=None``,
#: an array that ends without ``]`` (a truncated file)
OnBad = Callable[[int, int, "str | None"], None]


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


class SkipCounter:
    """Counted, logged skips of a reader: ``skip(kind, path, line, message, field=None)`` adds one to
    ``counts[kind]``, logs the first :data:`MAX_LOGGED` of each kind as a warning with ``file:line`` (on
    ``logger``), and also collects each as a :class:`DataError` in ``errors`` when given (``data check``)."""

    def __init__(self, counts: dict | None = None, errors: list[DataError] | None = None,
                 logger: logging.Logger | None = None):
        self.counts = {} if counts is None else counts
        self.errors, self.log = errors, logger or log

    def __call__(self, kind: str, path: Path | str | None, line: int | None, message: str,
                 field: str | None = None) -> None:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        where = f"{path}:{line}" if line is not None else str(path)
        if n <= MAX_LOGGED:
            self.log.warning("%s: skipped (%s): %s", where, kind, message)
        if n == MAX_LOGGED:
            self.log.warning("further '%s' skips are only counted", kind)
        if self.errors is not None:
            self.errors.append(DataError(f"skipped ({kind}): {message}", path=path, row=line, field=field))


def open_text(path: str | Path, what: str = "the JSON file") -> IO[str]:
    """``path`` opened for reading text (UTF-8, BOM skipped, bad bytes replaced), through gzip / bz2 for
    ``.gz`` / ``.bz2``. A missing file or a folder is a :class:`DataError`."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"is a folder (expected {what})", path=path)
    if not path.is_file():
        raise DataError(f"not found (expected {what})", path=path)
    kwargs = {"encoding": "utf-8-sig", "errors": "replace"}
    if path.suffix == ".gz":
        return gzip.open(path, "rt", **kwargs)
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", **kwargs)
    return open(path, **kwargs)  # noqa: SIM115 (closed by the caller's with)


def create_text(path: str | Path) -> IO[str]:
    """``path`` opened for writing UTF-8 text (parent folders made), through gzip / bz2 for ``.gz`` /
    ``.bz2``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8")
    if path.suffix == ".bz2":
        return bz2.open(path, "wt", encoding="utf-8")
    return open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by the caller's with)


class JsonWindow:
    """A sliding text window over a file: ``buf[pos:]`` is unread, ``line`` is the 1-based line at ``pos``;
    :meth:`value` decodes the JSON value at ``pos``, reading more chunks while the value is cut by the
    window's end. What was consumed is dropped at each read, so memory is bounded by one chunk plus the
    largest value."""

    _SPACE = re.compile(r"\s*")

    def __init__(self, fh: IO[str], chunk_size: int = CHUNK_SIZE, max_item: int = MAX_ITEM):
        self.fh, self.chunk_size, self.max_item = fh, max(1, int(chunk_size)), max_item
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def more(self) -> bool:
        """Read the next chunk (dropping what was consumed); False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(self.chunk_size)
        if not data:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + data, 0
        return True

    def advance(self, end: int) -> None:
        """Consume the window up to ``end`` (counting lines)."""
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def peek(self) -> str:
        """The next non-space character ("" at the end of the file), not consumed."""
        if self.pos < len(self.buf) and self.buf[self.pos] not in " \t\r\n":  # the common case, no regex
            return self.buf[self.pos]
        while True:
            self.advance(self._SPACE.match(self.buf, self.pos).end())
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def take(self, char: str) -> bool:
        """Consume ``char`` when it is the next non-space character."""
        if self.peek() == char:
            self.advance(self.pos + 1)
            return True
        return False

    def value(self, decoder: json.JSONDecoder):
        """Decode the JSON value at ``pos`` (reading more as needed); JSONDecodeError when malformed or cut at
        the end of the file."""
        self.peek()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # a value cut by the window's end fails near that end (or inside an unterminated string);
                # an error earlier in the window is malformed JSON, whatever follows
                cut = exc.pos >= len(self.buf) - 16 or exc.msg.startswith("Unterminated")
                if not cut or len(self.buf) - self.pos > self.max_item or not self.more():
                    raise
                continue
            # a number cut after its "." / "e" / "e+" decodes short: with ≤ 2 characters left, read on
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or len(self.buf) - end > 2 or self.eof or not self.more():
                self.advance(end)
                return value

    def resync(self) -> None:
        """Skip to the start of the next line."""
        while True:
            newline = self.buf.find("\n", self.pos)
            if newline >= 0:
                self.advance(newline + 1)
                return
            self.advance(len(self.buf))
            if not self.more():
                return

    def snippet(self, n: int = 40) -> str:
        """The next ``n`` unread characters (for messages)."""
        while len(self.buf) - self.pos < n and self.more():
            pass
        return self.buf[self.pos:self.pos + n]

    def at_end(self, exc: json.JSONDecodeError) -> bool:
        """Whether a decode error is the end of the file cutting a value (a truncated file)."""
        return self.eof and (exc.pos >= len(self.buf.rstrip()) or exc.msg.startswith("Unterminated"))


def _decoder() -> json.JSONDecoder:
    return json.JSONDecoder(strict=False)


def iter_json_array(path: str | Path, *, key: str | None = None, chunk_size: int = CHUNK_SIZE,
                    on_bad: OnBad | None = None, lines: bool = False, what: str = "the JSON file",
                    noun: str = "item") -> Iterator[tuple]:
    """Stream the items of a top-level JSON array: yields ``(ordinal, item)`` (``ordinal``: the 0-based
    position in the array), or ``(ordinal, line, item)`` with ``lines=True`` (``line``: the 1-based line the
    item starts on).

    ``key``: read the array under this key of a top-level object instead (the other top-level keys before it
    are decoded and dropped; a top-level array is then read as the items too). What follows the array is not
    read. ``what`` names the file in messages, ``noun`` an item ("record", "article").

    Errors: a file that is not such an array / object, a top-level object without ``key`` and malformed JSON
    outside the array are :class:`DataError`. Inside the array, without ``on_bad`` a malformed or truncated
    item or a missing separator is a DataError naming the file, the line (``row``) and the item number. With
    ``on_bad``, ``on_bad(ordinal, line, error)`` is called instead and reading resumes at the next line (the
    layout of files written one item per line), separators are read leniently, and an array cut at the end of
    the file is reported once as ``on_bad(ordinal, line, None)`` (unless its last item was just reported).
    """
    path = Path(path)
    decoder = _decoder()
    with open_text(path, what) as fh:
        window = JsonWindow(fh, chunk_size)
        first = window.peek()
        if first == "{" and key is not None:
            _seek_key(window, decoder, key, path, what)
        elif first != "[":
            shape = "a JSON array" if key is None else f"a JSON array or an object with {key!r}"
            got = repr(window.snippet()) if first else "an empty file"
            raise DataError(f"expected {what} ({shape}), got {got}", path=path, row=window.line)
        window.advance(window.pos + 1)
        items = _lenient_items(window, decoder, on_bad) if on_bad is not None else \
            _strict_items(window, decoder, path, noun)
        for ordinal, line, item in items:
            yield (ordinal, line, item) if lines else (ordinal, item)


def _seek_key(window: JsonWindow, decoder: json.JSONDecoder, key: str, path: Path, what: str) -> None:
    """Move the window from a top-level ``{`` to the ``[`` of the array under ``key``."""
    window.advance(window.pos + 1)
    while True:
        c = window.peek()
        if c in ("}", ""):
            break
        if c == ",":
            window.advance(window.pos + 1)
            continue
        try:
            name = window.value(decoder)
            if not isinstance(name, str) or not window.take(":"):
                raise json.JSONDecodeError("expected a key and ':'", window.buf, window.pos)
            if name == key:
                if window.peek() != "[":
                    raise DataError(f"{key!r} is not a JSON array (expected {what})", path=path, row=window.line)
                return
            window.value(decoder)  # another top-level key: decoded and dropped
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON at the top level ({exc.msg})", path=path, row=window.line) from None
    raise DataError(f"no {key!r} array at the top level (expected {what})", path=path)


def _strict_items(window: JsonWindow, decoder: json.JSONDecoder, path: Path,
                  noun: str) -> Iterator[tuple[int, int, Any]]:
    """Items after ``[`` with strict separators; any error is a DataError."""
    ordinal = 0
    if window.take("]"):
        return
    while True:
        window.peek()
        line = window.line
        try:
            item = window.value(decoder)
        except json.JSONDecodeError as exc:
            cut = " (the file ends inside it: truncated?)" if window.at_end(exc) else ""
            raise DataError(f"{noun} {ordinal}: not valid JSON ({exc.msg}){cut}", path=path, row=line) from None
        yield ordinal, line, item
        ordinal += 1
        c = window.peek()
        if c == ",":
            window.advance(window.pos + 1)
        elif c == "]":
            return
        elif c == "":
            raise DataError(f"the array ends without ']' after {noun} {ordinal - 1} (truncated file?)",
                            path=path, row=window.line)
        else:
            raise DataError(f"expected ',' or ']' after {noun} {ordinal - 1}, got {window.snippet(20)!r}",
                            path=path, row=window.line)


def _lenient_items(window: JsonWindow, decoder: json.JSONDecoder, on_bad: OnBad) -> Iterator[tuple[int, int, Any]]:
    """Items after ``[``; bad ones go to ``on_bad`` and reading resumes at the next line."""
    ordinal = 0
    reported = False  # the last item was reported bad (a file cut inside it is then not reported again)
    while True:
        c = window.peek()
        if c == "]":
            return
        if c == "":
            if not reported:
                on_bad(ordinal, window.line, None)
            return
        if c == ",":
            window.advance(window.pos + 1)
            continue
        line = window.line
        try:
            item = window.value(decoder)
        except json.JSONDecodeError as exc:
            on_bad(ordinal, line, exc.msg)
            ordinal += 1
            window.resync()
            reported = True
            continue
        reported = False
        yield ordinal, line, item
        ordinal += 1


def iter_json_object(path: str | Path, *, chunk_size: int = CHUNK_SIZE, what: str = "the JSON file",
                     noun: str = "entry") -> Iterator[tuple[str, Any]]:
    """Stream the ``(key, value)`` pairs of a top-level JSON object, in file order (a repeated key is yielded
    again). Anything malformed or truncated is a :class:`DataError` naming the file, the line (``row``), the
    entry number (0-based) and the last key read."""
    path = Path(path)
    decoder = _decoder()
    with open_text(path, what) as fh:
        window = JsonWindow(fh, chunk_size)
        first = window.peek()
        if first != "{":
            got = repr(window.snippet()) if first else "an empty file"
            raise DataError(f"expected {what} (a JSON object), got {got}", path=path, row=window.line)
        window.advance(window.pos + 1)
        if window.take("}"):
            return
        ordinal, last = 0, None

        def fail(message: str, exc: json.JSONDecodeError | None = None) -> DataError:
            after = f" (after key {last!r})" if last is not None else ""
            cut = window.at_end(exc) if exc is not None else window.peek() == ""
            return DataError(f"{noun} {ordinal}{after}: {message}{'; the file ends here (truncated?)' * cut}",
                             path=path, row=window.line)

        while True:
            try:
                name = window.value(decoder)
            except json.JSONDecodeError as exc:
                raise fail(f"not valid JSON ({exc.msg}), expected a key", exc) from None
            if not isinstance(name, str):
                raise fail(f"expected a string key, got {name!r}")
            if not window.take(":"):
                raise fail(f"expected ':' after key {name!r}")
            try:
                value = window.value(decoder)
            except json.JSONDecodeError as exc:
                raise fail(f"the value of {name!r} is not valid JSON ({exc.msg})", exc) from None
            yield name, value
            ordinal, last = ordinal + 1, name
            c = window.peek()
            if c == ",":
                window.advance(window.pos + 1)
            elif c == "}":
                return
            else:
                raise fail("the object ends without '}'" if c == "" else
                           f"expected ',' or '}}', got {window.snippet(20)!r}")


def iter_json_lines(path: str | Path, *, on_bad: OnBad | None = None, what: str = "the JSON Lines file",
                    noun: str = "item") -> Iterator[tuple[int, int, Any]]:
    """Stream a JSON Lines file: yields ``(ordinal, line, value)`` per non-blank line (``ordinal`` 0-based
    over the non-blank lines, ``line`` 1-based). A line that is not valid JSON (a truncated last line
    included) is a :class:`DataError` naming the file and line, or is handed to ``on_bad(ordinal, line,
    error)`` and skipped."""
    path = Path(path)
    ordinal = 0
    with open_text(path, what) as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text, strict=False)
            except json.JSONDecodeError as exc:
                if on_bad is None:
                    raise DataError(f"{noun} {ordinal}: not valid JSON ({exc.msg} at column {exc.colno})",
                                    path=path, row=number) from None
                on_bad(ordinal, number, exc.msg)
            else:
                yield ordinal, number, value
            ordinal += 1
