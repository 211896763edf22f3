"""Tasks are plugins: each ``tasks/<task>/plugin.py`` declares what the task brings, once, in a
:class:`TaskPlugin` named ``PLUGIN``; the CLI, the model registry, the world registry, ``data check``,
``bench`` and ``demo`` discover them here. Adding a task touches no file outside its folder, its
configs, docs and tests.

Everything heavy is named lazily as ``"package.module:attribute"`` strings, so discovering every task
(``modalbridge --help``) imports no model code. Discovery order:

1. every sub-package of :mod:`modalbridge.tasks` that has a ``plugin`` module;
2. modules named in ``$MODALBRIDGE_PLUGINS`` (comma-separated; each exports ``PLUGIN``) — a user's task
   outside the package, or a test's throw-away task;
3. the ``modalbridge.tasks`` entry-point group of installed distributions (value: ``module:PLUGIN``).

A minimal ``plugin.py``::

    from modalbridge.core.plugins import TaskPlugin

    PLUGIN = TaskPlugin(
        name="atlas",
        doc="medical text -> 3D atlas points (SOD loss)",
        models="modalbridge.tasks.atlas.models",            # imported to register the task's models
        worlds={"atlas": "modalbridge.tasks.atlas.world:atlas_world"},
        datasets=(DatasetEntry("sio-atlas", check="modalbridge.tasks.atlas.data:check_atlas"),),
        benchmarks={"atlas": "modalbridge.tasks.atlas.bench:run"},
        demo="modalbridge.tasks.atlas.demo:run_demo",
        verbs=(Verb("ground", "…", add_arguments=…, run="modalbridge.tasks.atlas.infer:ground_cli"),),
    )
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PLUGINS_ENV = "MODALBRIDGE_PLUGINS"
ENTRY_POINT_GROUP = "modalbridge.tasks"


def load_target(target: str) -> Any:
    """``"package.module:attribute"`` → the attribute (``"package.module"`` → the module)."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def shard_arg(text: str) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n``: the argparse type of every ``--shard i/n`` option
    (feature extraction, caches and index building fan out over any launcher this way)."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n such as 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n, got {text!r}")
    return index, count


#: what the inference verbs' ``--precision`` takes
PRECISIONS = ("auto", "bf16-mixed", "32-true")


def add_precision_argument(parser: argparse.ArgumentParser, *, choices: tuple[str, ...] | None = PRECISIONS) -> None:
    """The ``--precision`` option every inference verb shares (``auto``: bf16 where the hardware computes it)."""
    parser.add_argument("--precision", default="auto", choices=choices,
                        help="auto (bf16 where the hardware computes it natively) | bf16-mixed | 32-true")


@dataclass(frozen=True)
class Verb:
    """A CLI verb a task adds: ``modalbridge <name> …`` (or ``modalbridge <group> <name> …``).

    Args:
        name: the verb. help: one line for ``modalbridge --help``.
        add_arguments: fills the verb's ``argparse`` parser (runs at every CLI start: keep it import-free).
        run: ``"module:function"`` called with the parsed ``argparse.Namespace``; returns the exit code.
        group: ``"data"`` makes it ``modalbridge data <name>``; ``None`` a top-level verb.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: str
    group: str | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset a task reads, for ``modalbridge data check|prepare <name> <root>``.

    Args:
        check: ``"module:function"`` taking the root folder and returning ``list[DataError]`` or
            ``(problems, summary)`` with ``summary`` a ``{what: count}`` dict (videos, rows, classes …).
        prepare: optional ``"module:function"`` taking ``(root: Path, out: Path | None, args: Namespace)``
            (``args.variant``, ``args.allow_pickle`` and the dataset's own options) and returning
            ``{name: written path}``.
        prepare_arguments: adds the dataset's own options to its ``modalbridge data prepare <name>`` parser
            (runs at every CLI start: keep it import-free).
    """

    name: str
    check: str | None = None
    prepare: str | None = None
    doc: str = ""
    prepare_arguments: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass(frozen=True)
class TaskPlugin:
    """What one task declares (see the module docstring). Every field but ``name`` is optional.

    Args:
        name: the task's name (``tasks/<name>/``, ``runs/<name>/``, ``configs/<name>/``).
        doc: one line shown by ``modalbridge tasks``.
        models: modules whose import registers the task's models (``@register_model``).
        worlds: ``{world name: "module:function"}`` (the function builds the world and returns its root).
        default_world: the world ``modalbridge world <task>`` builds (default: the first of ``worlds``).
        datasets: what ``modalbridge data check|prepare`` can do with the task's datasets.
        benchmarks: ``{name: "module:function"}``; the function takes ``quick: bool`` and returns a dict.
        demo: ``"module:function"`` for ``modalbridge demo <task>`` (takes ``quick``, ``out``, ``seed``;
            returns the report's path).
        verbs: extra CLI verbs.
        recognizers: ``{LightningModule class name: "module:function"}`` — how a checkpoint of one of the
            task's modules answers ``modalbridge recognize`` (video inference verbs shared by tasks).
    """

    name: str
    doc: str = ""
    models: tuple[str, ...] = ()
    worlds: dict[str, str] = field(default_factory=dict)
    default_world: str | None = None
    datasets: tuple[DatasetEntry, ...] = ()
    benchmarks: dict[str, str] = field(default_factory=dict)
    demo: str | None = None
    verbs: tuple[Verb, ...] = ()
    recognizers: dict[str, str] = field(default_factory=dict)

    @property
    def world(self) -> str | None:
        return self.default_world or next(iter(self.worlds), None)


_PLUGINS: dict[str, TaskPlugin] | None = None


def _from_module(module_name: str) -> TaskPlugin:
    plugin = getattr(importlib.import_module(module_name), "PLUGIN", None)
    if not isinstance(plugin, TaskPlugin):
        raise TypeError(f"{module_name} must define PLUGIN = TaskPlugin(...)")
    return plugin


def _discover() -> dict[str, TaskPlugin]:
    import modalbridge.tasks as tasks_pkg

    found: list[TaskPlugin] = []
    for info in sorted(pkgutil.iter_modules(tasks_pkg.__path__), key=lambda i: i.name):
        if info.ispkg and importlib.util.find_spec(f"modalbridge.tasks.{info.name}.plugin") is not None:
            found.append(_from_module(f"modalbridge.tasks.{info.name}.plugin"))
    for name in filter(None, (x.strip() for x in os.environ.get(PLUGINS_ENV, "").split(","))):
        found.append(_from_module(name))
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found.append(ep.load())
    except Exception as exc:  # a broken third-party plugin must not break the CLI
        log.warning("could not load %s entry points: %s", ENTRY_POINT_GROUP, exc)
    plugins: dict[str, TaskPlugin] = {}
    for plugin in found:
        if plugin.name in plugins and plugins[plugin.name] is not plugin:
            raise ValueError(f"two plugins declare the task {plugin.name!r}")
        plugins[plugin.name] = plugin
    return plugins


def task_plugins() -> dict[str, TaskPlugin]:
    """Every discovered task, by name (discovered once per process; :func:`reset_plugins` forgets)."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = _discover()
    return _PLUGINS


def register_task(plugin: TaskPlugin) -> None:
    """Add a task at run time (tests, notebooks)."""
    task_plugins()[plugin.name] = plugin


def reset_plugins() -> None:
    global _PLUGINS
    _PLUGINS = None


def task_plugin(name: str) -> TaskPlugin:
    plugins = task_plugins()
    if name not in plugins:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(plugins))}")
    return plugins[name]


def all_worlds() -> dict[str, str]:
    """``{world name: "module:function"}`` over every task (a world shared by tasks is declared by each)."""
    out: dict[str, str] = {}
    for plugin in task_plugins().values():
        for name, target in plugin.worlds.items():
            if out.setdefault(name, target) != target:
                raise ValueError(f"world {name!r} is declared with two builders: {out[name]} and {target}")
    return out


def all_datasets() -> dict[str, DatasetEntry]:
    """``{dataset name: entry}`` over every task (a dataset several tasks read is declared by each; the
    first declaration that has a check/prepare function provides it)."""
    out: dict[str, DatasetEntry] = {}
    for plugin in task_plugins().values():
        for entry in plugin.datasets:
            have = out.get(entry.name)
            if have is None:
                out[entry.name] = entry
            else:
                out[entry.name] = DatasetEntry(entry.name, have.check or entry.check, have.prepare or entry.prepare,
                                               have.doc or entry.doc)
    return out


def all_verbs() -> list[tuple[str, Verb]]:
    """``(task, verb)`` for every task's verbs; two tasks may not declare the same verb."""
    seen: dict[tuple[str | None, str], str] = {}
    out = []
    for plugin in task_plugins().values():
        for verb in plugin.verbs:
            key = (verb.group, verb.name)
            if key in seen:
                raise ValueError(f"verb {' '.join(filter(None, key))!r} is declared by tasks {seen[key]!r} and "
                                 f"{plugin.name!r}")
            seen[key] = plugin.name
            out.append((plugin.name, verb))
    return out


def all_benchmarks() -> dict[str, str]:
    return {name: target for p in task_plugins().values() for name, target in p.benchmarks.items()}


def all_recognizers() -> dict[str, str]:
    return {cls: target for p in task_plugins().values() for cls, target in p.recognizers.items()}


def import_models() -> None:
    """Import every task's model modules (populates :mod:`modalbridge.core.registry`)."""
    for plugin in task_plugins().values():
        for module in plugin.models:
            importlib.import_module(module)
