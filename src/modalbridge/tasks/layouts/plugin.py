"""The ``layouts`` task declared to the trunk: spatio-temporal layout transformers and their fusion with
video (Something-Else, SSv2, Action Genome)."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin

PLUGIN = TaskPlugin(
    name="layouts",
    doc="object-layout transformers (STLT …) and layout + video fusion (CACNF …) for action recognition",
    models=("modalbridge.tasks.layouts.models",),
    worlds={"kitchen-layouts": "modalbridge.worlds.kitchen:layouts_kitchen_world",
            "action-genome": "modalbridge.worlds.action_genome:action_genome_world"},
    datasets=(
        DatasetEntry("something-else", check="modalbridge.datasets.check:check_something_else",
                     prepare="modalbridge.datasets.cli:prepare_something_else"),
        DatasetEntry("action-genome", prepare="modalbridge.datasets.cli:prepare_action_genome",
                     doc="Action Genome pickles + Charades CSVs (prepare: unified layout JSON; --allow-pickle)"),
    ),
    benchmarks={"layouts": "modalbridge.tasks.layouts.bench:run",
                "precision": "modalbridge.tasks.layouts.bench_precision:run"},
    recognizers={"LayoutModule": "modalbridge.tasks.layouts.infer:recognize_layouts"},
)
