"""The toy tasks' plugin: a world, a dataset check and a verb, declared like a real task's."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin, Verb


def _count_arguments(parser) -> None:
    parser.add_argument("--root", default="world://toy")


PLUGIN = TaskPlugin(
    name="toy",
    doc="throw-away regression and retrieval tasks of the engine tests",
    worlds={"toy": "toy_tasks.world:toy_world"},
    datasets=(DatasetEntry("toy", check="toy_tasks.cli:check_toy"),),
    verbs=(Verb("toy-count", "print the number of rows of the toy world", _count_arguments,
                "toy_tasks.cli:count"),),
)
