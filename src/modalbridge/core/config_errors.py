"""One-line messages for config errors of ``modalbridge fit|validate|test|predict``.

jsonargparse (under LightningCLI) reports a misspelled key, a wrong type or a bad ``class_path`` as nested
union failures ("Does not validate against any of the Union subtypes … Expected a <class 'NoneType'>"). This
module turns them into one line that names the key, where it was given (command line or which config file,
includes followed) and, for an unknown key, the closest valid key and the valid keys of its class or
section. The CLI's parser raises instead of exiting (``exit_on_error=False``) and carries itself on the
error (:func:`remembering_parser`) so the valid keys can be listed.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

UNION_FAILURE = "Does not validate against any of the Union subtypes"
_UNKNOWN_KEY = (re.compile(r"does not accept option '([^']+)'"),
                re.compile(r"[Uu]nrecognized arguments: (--\S+)"),
                re.compile(r"No action for key \"([^\"]+)\""),
                re.compile(r"(?:Option|Key) ['\"]([^'\"]+)['\"] is not (?:accepted|expected)"))
_PARSER_KEY = re.compile(r"Parser key \"([^\"]+)\":?")
_CLASS_PATH = re.compile(r"Problem with given class_path '([^']+)':")
_EXPECTED = re.compile(r"Expected a <class '([^']+)'>")
_GIVEN = re.compile(r"(?:Given|Got) value: (.*)")
#: at most this many valid keys are listed
MAX_KEYS = 60


def is_config_error(exc: BaseException) -> bool:
    """An error of the CLI's config parser (or of instantiating a class it names)."""
    return isinstance(exc, argparse.ArgumentError) or (isinstance(exc, ValueError) and UNION_FAILURE in str(exc))


def remembering_parser(base: type) -> type:
    """A subclass of the jsonargparse parser class ``base`` whose errors carry the parser (``exc.parser``), so
    that :func:`describe_config_error` can list the valid keys and suggest the closest one."""

    class Parser(base):  # type: ignore[misc, valid-type]
        def error(self, message: str, ex: Exception | None = None):
            try:
                super().error(message, ex)
            except argparse.ArgumentError as err:
                err.parser = self  # type: ignore[attr-defined]
                raise

    Parser.__name__ = Parser.__qualname__ = f"Remembering{base.__name__}"
    return Parser


def describe_config_error(exc: BaseException, argv: Sequence[str] = ()) -> str:
    """One line for a config error of ``modalbridge fit|validate|test|predict``: the key, where it was given
    (command line or config file), what was expected and, for an unknown key, the closest valid key and the
    valid keys of its class or section."""
    return _describe(str(exc).strip(), [str(a) for a in argv], getattr(exc, "parser", None))


def _describe(text: str, argv: list[str], parser, prefix: str = "", cls: str | None = None) -> str:
    """:func:`describe_config_error` of a jsonargparse message ``text`` whose keys sit under ``prefix`` (the
    ``init_args`` of class ``cls`` when the message is nested in a ``class_path`` problem)."""
    outer = _PARSER_KEY.match(text)
    key = prefix + outer.group(1) if outer else prefix.rstrip(".")
    body = text[outer.end():].strip() if outer else text
    where = _where(key, argv, last=True) if key else ""
    head = f"config key '{key}'{where}: " if key else ""
    if key == "config" and "does not exist" in body:
        missing = re.search(r"File does not exist: '?([^'\n]+)'?", body)
        return f"config file not found: {missing.group(1) if missing else body}"
    found = _CLASS_PATH.search(body)
    if found and key:
        inner = _item_block(body, found)
        if _PARSER_KEY.match(inner) or any(pattern.search(inner) for pattern in _UNKNOWN_KEY):
            return _describe(inner, argv, parser, f"{key}.init_args.", found.group(1))
        reason = _first_line(inner)
        if any(s in reason for s in ("import", "has no attribute", "No module named")):
            return (f"config key '{key}.class_path'{_where(key + '.class_path', argv, last=True)}: cannot "
                    f"import '{found.group(1)}' ({reason}); give the dotted path of an existing class")
        return f"{head}{found.group(1)}: {reason}"
    for pattern in _UNKNOWN_KEY:
        match = pattern.search(body)
        if match:
            name = match.group(1).lstrip("-").split("=", 1)[0]
            return _unknown_key(prefix + name, argv, cls=cls, parser=parser)
    reasons = _union_reasons(body) if UNION_FAILURE in body else [_first_line(body)]
    reasons = [r for r in reasons if not r.startswith("Expected a <class 'NoneType'>")]
    path = next((r for r in reasons if "dot import path" in r), None)
    if path and key:
        name = path.rsplit(":", 1)[-1].strip()
        return (f"config key '{key}.class_path'{where}: {name!r} is not the dotted import path of a class "
                "(e.g. modalbridge.datasets.datamodules.EpicKitchensDataModule)")
    if reasons and all(_EXPECTED.match(r) for r in reasons):
        expected = [n.rsplit(".", 1)[-1] for n in _EXPECTED.findall(body)]
        expected = list(dict.fromkeys("null" if n == "NoneType" else n for n in expected))
        given = _GIVEN.search(body)
        got = f"got {given.group(1).strip()!r}; " if given else ""
        return f"{head}{got}expected {' or '.join(expected)}"
    if "arguments are required" in body:
        return (f"{_first_line(body)}; give a config, e.g. `modalbridge {argv[0] if argv else 'fit'} --config "
                "configs/actions/world.yaml` (see --help)")
    return head + ("; ".join(r.strip("\"'") for r in reasons) if reasons else _first_line(body))


def _item_block(text: str, match: re.Match) -> str:
    """The lines nested under the list item (``- Problem with given class_path '…':``) that ``match`` found."""
    line_start = text.rfind("\n", 0, match.start()) + 1
    line = text[line_start:match.start()]
    indent = len(line) - len(line.lstrip()) if line.strip() in ("-", "") else match.start() - line_start
    rest = text[match.end():].split("\n")
    block = [rest[0]] if rest[0].strip() else []
    for row in rest[1:]:
        if row.strip() and len(row) - len(row.lstrip()) <= indent:
            break
        block.append(row)
    return textwrap.dedent("\n".join(block)).strip()


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else text


def _union_reasons(text: str) -> list[str]:
    """The ``- reason`` items under ``Errors:`` of a jsonargparse union failure (first line of each)."""
    block = text.split("Errors:", 1)[1] if "Errors:" in text else ""
    block = block.split("Given value type:", 1)[0]
    return [" ".join(item.strip().splitlines()[0].split()) for item in re.split(r"\n\s*- ", "\n" + block)[1:]]


def _unknown_key(key: str, argv: Sequence[str], *, cls: str | None = None, parser=None) -> str:
    """``unknown config key 'a.b.c' (where); did you mean 'a.b.x'? Valid keys of <owner>: …``: the first
    component of ``key`` that is not valid is compared with the keys valid at its level."""
    parts = key.split(".")
    verb = argv[0] if argv else None
    message = f"unknown config key '{key}'{_where(key, argv)}"
    if cls is not None:  # a key under model/data.init_args: the class's own arguments
        levels = [(len(parts) - 1, _class_keys(cls), f"{cls.rsplit('.', 1)[-1]} ({'.'.join(parts[:-1])})")]
    else:
        levels = [(depth, *_valid_keys(".".join(parts[:depth]), parser=parser, verb=verb))
                  for depth in range(len(parts))]
    for depth, valid, owner in levels:
        if not valid or parts[depth] in valid:
            continue
        close = difflib.get_close_matches(parts[depth], valid, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean '{'.'.join([*parts[:depth], close[0]])}'?"
        listed = ", ".join(sorted(valid)[:MAX_KEYS]) + (", …" if len(valid) > MAX_KEYS else "")
        return message + f" Valid keys of {owner}: {listed}"
    return message


def _valid_keys(section: str, *, parser, verb: str | None) -> tuple[list[str], str]:
    """``(keys, owner)``: the keys accepted right under ``section`` (``""``: the top level), from the parser
    (or the Trainer's signature for ``trainer``), and how to name their owner in the message."""
    dests = _parser_dests(parser, verb)
    if dests:
        depth = section.count(".") + 1 if section else 0
        prefix = f"{section}." if section else ""
        keys = sorted({d.split(".")[depth] for d in dests if d.startswith(prefix) and d.count(".") >= depth})
        if keys:
            return keys, section or "the config (top level)"
    if section == "trainer":
        return _class_keys("lightning.pytorch.Trainer"), "Trainer (trainer)"
    return [], ""


def _class_keys(dotted: str) -> list[str]:
    """The init arguments of the class at ``dotted`` as jsonargparse sees them (``**kwargs`` followed)."""
    try:
        from jsonargparse import ArgumentParser

        module, _, name = dotted.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, fail_untyped=False)
        return [d for d in _parser_dests(parser) if "." not in d]
    except Exception:  # the message must still come out
        return []


def _parser_dests(parser, verb: str | None = None) -> list[str]:
    """Every key ``parser`` accepts (for a parser with sub-commands, those of sub-command ``verb``)."""
    subcommands = getattr(parser, "_subcommands_action", None)
    if subcommands is not None:
        parser = subcommands._name_parser_map.get(verb)
    if parser is None:
        return []
    skip = {"help", "config", "print_config"}
    return [a.dest for a in parser._actions
            if a.dest and a.dest not in skip and not a.dest.endswith((".help", "__path__")) and a.dest != "SUPPRESS"]


def _where(key: str, argv: Sequence[str], *, last: bool = False) -> str:
    """`` (on the command line)`` / `` (in a.yaml)`` for the place ``key`` (or a key under it) was given, else
    ``""``. Config files are searched with the files they include (``config: other.yaml``); ``last``: only the
    last file setting it (the one whose value is used)."""
    argv = [str(a) for a in argv]
    if any(a == f"--{key}" or a.startswith((f"--{key}=", f"--{key}.")) for a in argv):
        return " (on the command line)"
    files = [os.path.normpath(f) for p in _config_files(argv) for f in _files_with_key(Path(p), key)]
    files = list(dict.fromkeys(files))[-1:] if last else list(dict.fromkeys(files))
    return f" (in {', '.join(files)})" if files else ""


def _config_files(argv: Sequence[str]) -> list[str]:
    files = []
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def _files_with_key(path: Path, key: str, depth: int = 0) -> list[Path]:
    """``path`` and the files it includes (``config:``) that set ``key`` or a key under it."""
    try:
        import yaml

        node = yaml.safe_load(path.read_text())
    except Exception:
        return []
    if not isinstance(node, dict):
        return []
    found = []
    includes = node.get("config")
    includes = [includes] if isinstance(includes, str) else includes if isinstance(includes, list) else []
    for include in includes if depth < 8 else []:
        if isinstance(include, str):
            found += _files_with_key(path.parent / include, key, depth + 1)
    if any(k == key or k.startswith(f"{key}.") for k in _flat_keys(node)):
        found.append(path)
    return found


def _flat_keys(node: object, prefix: str = "") -> list[str]:
    """Dotted keys of a YAML mapping (nested mappings and dotted keys such as ``data.init_args.x: 1``)."""
    if not isinstance(node, dict):
        return []
    keys = []
    for name, value in node.items():
        full = f"{prefix}{name}"
        keys.append(full)
        keys += _flat_keys(value, f"{full}.")
    return keys
