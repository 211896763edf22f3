"""``modalbridge`` command line.

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) go through LightningCLI with YAML configs
(several ``--config`` files compose, later ones override) and dotted overrides; the other verbs are plain
sub-commands, and every task plugin (:mod:`modalbridge.core.plugins`) adds its own::

    modalbridge fit --config configs/actions/world.yaml [--trainer.max_epochs 3]
    modalbridge demo [TASK]               # the main job on the embedded world (default: distill)
    modalbridge world actions             # build/locate an embedded world
    modalbridge tasks                     # the installed tasks and what they declare
    modalbridge data check epic-kitchens-100 /data/EPIC-KITCHENS
    modalbridge data prepare something-else /data/something-else --out /data/layouts
    modalbridge recognize clip.mp4 --ckpt runs/actions/world/checkpoints/last.ckpt
    modalbridge models [--task layouts]   # registered models
    modalbridge bench all [--quick]

Expected failures (data, media, checkpoints, weights, config keys) print one message naming the file,
row or key; ``--debug`` (or ``MODALBRIDGE_DEBUG=1``) shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

LIGHTNING_VERBS = ("fit", "validate", "test", "predict")
DEFAULT_DEMO_TASK = "distill"


def _check_init_from(cfg) -> None:
    """Fail before building anything, with the weights resolver's message, when a checkpoint named by
    ``model.init_args.init_from`` (a path or ``{branch: path}``) cannot be found."""
    from modalbridge.core.weights import resolve_weights

    init = getattr(getattr(cfg.model, "init_args", None), "init_from", None)
    if init is None or isinstance(init, str):
        paths = [init]
    else:  # {branch: path}, a dict or a jsonargparse Namespace
        paths = list((init if isinstance(init, dict) else vars(init)).values())
    for path in filter(None, paths):
        resolve_weights(path)


def run_identity(config_paths: list[str]) -> tuple[str | None, str | None]:
    """``(task, run name)`` derived from the last config file: ``configs/<task>/<name>.yaml``."""
    if not config_paths:
        return None, None
    path = Path(str(config_paths[-1]))
    return (path.parent.name or None), path.stem


def lightning_cli(argv: list[str], *, run: bool = True, parse_only: bool = False):
    """The LightningCLI behind ``modalbridge fit|validate|test|predict``. ``run=False``: parse and build the
    model, data module and trainer without running a verb (``argv`` then holds no verb); with ``parse_only``
    too, stop after parsing (``cli.config`` is the validated config; nothing is built or read)."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from modalbridge.core.config_errors import remembering_parser
    from modalbridge.core.engine import metric_mode
    from modalbridge.core.paths import runs_dir
    from modalbridge.core.runs import KillAtEpoch, RunDirCallback
    from modalbridge.core.trainer import Trainer

    class ModalbridgeCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.add_argument("--task", default=None,
                                help="task folder of the run (runs/<task>/<name>); default: the config's folder")
            parser.add_argument("--run_name", default=None,
                                help="run name (runs/<task>/<name>); default: the config file's name")
            parser.add_argument("--monitor", default=None,
                                help="metric selecting the best checkpoint (default: the model's own)")
            parser.add_argument("--monitor_mode", default=None, choices=("min", "max", None),
                                help="min|max for --monitor (default: the model's direction for it)")

        def before_instantiate_classes(self) -> None:
            cfg = self.config[self.subcommand] if self.subcommand else self.config
            task, name = run_identity([str(c) for c in (cfg.get("config") or [])])
            cfg.task = cfg.task or task or "runs"
            cfg.run_name = cfg.run_name or name or "default"
            if cfg.trainer.default_root_dir in (None, "", "."):
                cfg.trainer.default_root_dir = str(runs_dir() / cfg.task / cfg.run_name)
            self._monitor = (cfg.monitor, cfg.monitor_mode)
            if not parse_only:
                _check_init_from(cfg)

        def instantiate_classes(self) -> None:
            if parse_only:
                return
            # LightningCLI.instantiate_classes on a copy whose model heads are linked: self.config stays the
            # plain, serialisable config that the run folder's config.yaml is written from
            linked = self.config.clone()
            heads = link_heads(linked[self.subcommand] if self.subcommand else linked)
            if heads is not None:  # recorded in the plain config too: config.yaml and the checkpoint's hparams
                (self.config[self.subcommand] if self.subcommand else self.config).model.init_args.heads = heads
            self.config_init = self.parser.instantiate_classes(linked)
            self.datamodule = self._get(self.config_init, "data")
            self.model = self._get(self.config_init, "model")
            self._add_configure_optimizers_method_to_model(self.subcommand)
            self.trainer = self.instantiate_trainer()

        def instantiate_trainer(self, **kwargs):
            monitor, mode = self._monitor
            model = self.model
            monitor = monitor or getattr(model, "monitor", None)
            if monitor and mode is None:  # the module's direction for its metrics, else the name's
                mode = (model.metric_mode if hasattr(model, "metric_mode") else metric_mode)(monitor)
            kwargs.setdefault("callbacks", [])
            # saved at train-epoch end (after validation): a checkpoint written at validation end holds a
            # half-finished epoch whose resume replays the previous epoch's sampler order
            # Two callbacks: since Lightning 2.x ``save_last=True`` next to a monitor only refreshes last.ckpt when a
            # new best is saved (last.ckpt = the best epoch, resume restarts from it); the second one writes
            # last.ckpt after every epoch.
            best = [ModelCheckpoint(monitor=monitor, mode=mode, filename="best-{epoch}",
                                    save_on_train_epoch_end=True)] if monitor else []
            kwargs["callbacks"] = list(kwargs["callbacks"]) + best + [
                ModelCheckpoint(monitor=None, save_top_k=1, filename="last", enable_version_counter=False,
                                save_on_train_epoch_end=True)]
            return super().instantiate_trainer(**kwargs)

    # main() passes the verb's arguments explicitly; Lightning warns whenever sys.argv is not empty too
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    callbacks = [RunDirCallback()]
    if os.environ.get("MODALBRIDGE_KILL_AT_EPOCH"):
        callbacks.append(KillAtEpoch(int(os.environ["MODALBRIDGE_KILL_AT_EPOCH"])))
    return ModalbridgeCLI(
        args=argv,
        run=run,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        # metrics.jsonl is written by a Lightning logger: `--trainer.logger+=lightning.pytorch.loggers.CSVLogger`
        # (TensorBoard, MLflow, W&B …) adds another beside it
        trainer_defaults={"logger": {"class_path": "modalbridge.core.runs.MetricsLogger"},
                          "reload_dataloaders_every_n_epochs": 1,
                          "callbacks": callbacks, "enable_progress_bar": not os.environ.get("CI")},
        # config errors raise (main() prints one line naming the key), carrying the parser for the valid keys;
        # no abbreviations: --trainer.max_epoch must not silently mean --trainer.max_epochs
        parser_class=remembering_parser(LightningArgumentParser),
        parser_kwargs={"prog": f"modalbridge {argv[0] if argv and run else ''}".strip(), "exit_on_error": False,
                       "allow_abbrev": False},
    )


def link_heads(cfg) -> dict[str, int] | None:
    """A classifier's ``heads`` come from its data module: when the model takes ``heads`` and the config leaves
    it unset, the data module is built first and its ``heads`` (``{head: num_classes}``) fill the model's
    argument (the built data module is the one the run uses). Modules of other tasks are left alone."""
    from jsonargparse import Namespace

    from modalbridge.core.plugins import load_target

    model_args = getattr(cfg.model, "init_args", None)
    if model_args is None or "heads" not in model_args or model_args.get("heads") is not None:
        return None
    if not isinstance(cfg.data, Namespace) or not cfg.data.get("class_path"):
        return None
    module, _, name = cfg.data.class_path.rpartition(".")
    args = cfg.data.get("init_args") or Namespace()
    data = load_target(f"{module}:{name}")(**args.as_dict())
    heads = getattr(data, "heads", None)
    if heads is not None:
        model_args.heads = dict(heads)
    cfg.data = data
    return model_args.heads


def _lightning(argv: list[str]) -> int:
    lightning_cli(argv)
    return 0


# -- plain verbs ----------------------------------------------------------------------------------------
def _world(args) -> int:
    from modalbridge.core.plugins import task_plugins
    from modalbridge.core.worlds import world_builder

    plugin = task_plugins().get(args.task)
    name = (plugin.world if plugin is not None else None) or args.task
    print(world_builder(name)())
    return 0


def _tasks(args) -> int:
    from modalbridge.core.plugins import task_plugins

    for name, p in sorted(task_plugins().items()):
        print(f"{name:12s} {p.doc}")
        details = [("worlds", ", ".join(p.worlds)), ("datasets", ", ".join(d.name for d in p.datasets)),
                   ("verbs", ", ".join(" ".join(filter(None, (v.group, v.name))) for v in p.verbs)),
                   ("benchmarks", ", ".join(p.benchmarks)), ("demo", "yes" if p.demo else "")]
        for label, value in details:
            if value:
                print(f"{'':12s}   {label}: {value}")
    return 0


def _dataset_entry(name: str, what: str):
    from modalbridge.core.plugins import all_datasets

    entries = {n: e for n, e in all_datasets().items() if getattr(e, what)}
    if name not in entries:
        raise SystemExit(f"modalbridge data {what}: unknown dataset {name!r}; known: {', '.join(sorted(entries))}")
    return entries[name]


def _data_check(args) -> int:
    from modalbridge.datasets.check import check_dataset, format_report

    _dataset_entry(args.dataset, "check")  # an unknown name: one line listing the known ones
    report = check_dataset(args.dataset, args.root, summary=True)
    print(format_report(report.problems, report.summary))
    return 1 if report.problems else 0


def _add_prepare_parsers(parser: argparse.ArgumentParser) -> None:
    """``modalbridge data prepare <dataset> <root> [--out DIR] [options]``: one sub-parser per dataset with a
    prepare step, carrying the common options and the dataset's own (``DatasetEntry.prepare_arguments``)."""
    from modalbridge.core.plugins import all_datasets

    entries = {n: e for n, e in sorted(all_datasets().items()) if e.prepare}
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET",
                                help=f"one of: {', '.join(entries)}")
    for name, entry in entries.items():
        c = sub.add_parser(name, help=entry.doc or None, description=entry.doc or None)
        c.add_argument("root", help="dataset folder (Something-Else: split lists + box parts + videoid2size.json)")
        c.add_argument("--out", help="output folder (default: root, or the dataset's own default)")
        c.add_argument("--variant", default=None, help="split lists (Something-Else)")
        c.add_argument("--allow-pickle", action="store_true",
                       help="Action Genome ships pickles: read them (restricted unpickler) only with this flag")
        if entry.prepare_arguments is not None:
            entry.prepare_arguments(c)
        c.set_defaults(func=_data_prepare)


def _data_prepare(args) -> int:
    from modalbridge.core.plugins import load_target
    from modalbridge.core.worlds import resolve_root

    entry = _dataset_entry(args.dataset, "prepare")
    written = load_target(entry.prepare)(resolve_root(args.root), Path(args.out) if args.out else None, args)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _models(args) -> int:
    from modalbridge.core.plugins import task_plugin
    from modalbridge.core.registry import list_models, model_entry

    if args.task is not None:
        task_plugin(args.task)  # an unknown task: one line listing the known ones
    for name in list_models(args.task):
        e = model_entry(name)
        print(f"{name:24s} {e.task:10s} {e.doc}")
    return 0


def _bench(args) -> int:
    import json

    from modalbridge.core.plugins import all_benchmarks, load_target

    benchmarks = all_benchmarks()
    names = list(benchmarks) if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in benchmarks]
    if unknown:
        raise SystemExit(f"modalbridge bench: unknown benchmark {unknown[0]!r}; known: all, "
                         f"{', '.join(sorted(benchmarks))}")
    results = {}
    for name in names:
        print(f"== benchmark {name} ==", flush=True)
        results[name] = load_target(benchmarks[name])(quick=args.quick)
    print(json.dumps(results, indent=1, default=str))
    return 0


def _demo(args) -> int:
    from modalbridge.core.plugins import load_target, task_plugins

    plugins = {n: p for n, p in task_plugins().items() if p.demo}
    if args.task not in plugins:
        raise SystemExit(f"modalbridge demo: no demo for task {args.task!r}; tasks with a demo: "
                         f"{', '.join(sorted(plugins))}")
    if args.quick and args.long:
        raise SystemExit("modalbridge demo: --quick and --long exclude each other")
    if args.seeds is not None and args.seeds < 1:
        raise SystemExit(f"modalbridge demo: --seeds must be at least 1, got {args.seeds}")
    seeds = None  # the demo's own default (3 seeds; 1 with --quick) unless --seed/--seeds say otherwise
    if args.seed is not None or args.seeds is not None:
        first = 0 if args.seed is None else args.seed
        seeds = list(range(first, first + (args.seeds or (1 if args.seed is not None else 3))))
    report = load_target(plugins[args.task].demo)(quick=args.quick, out=args.out, seeds=seeds, long=args.long)
    print(f"report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from modalbridge.core.plugins import all_verbs

    p = argparse.ArgumentParser(prog="modalbridge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show Python tracebacks of expected errors")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for verb in LIGHTNING_VERBS:
        sub.add_parser(verb, help=f"Lightning {verb} from YAML configs (see `modalbridge {verb} --help`)",
                       add_help=False)
    s = sub.add_parser("demo", help="the main job of a task on its embedded world (default: distill)")
    s.add_argument("task", nargs="?", default=DEFAULT_DEMO_TASK)
    s.add_argument("--quick", action="store_true", help="smaller settings (smoke test)")
    s.add_argument("--out", help="output folder (default runs/demo)")
    s.add_argument("--seed", type=int, default=None, help="first seed (alone: run this one seed)")
    s.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="number of seeds: --seed, --seed+1, … (default: the demo's, 3 for distill)")
    s.add_argument("--long", action="store_true", help="the longer recipe that shows every claim (docs state its time)")
    s.set_defaults(func=_demo)
    s = sub.add_parser("world", help="build (first use) and print the folder of a task's embedded world")
    s.add_argument("task", help="task or world name (see `modalbridge tasks`)")
    s.set_defaults(func=_world)
    s = sub.add_parser("tasks", help="list the installed tasks and what each declares")
    s.set_defaults(func=_tasks)
    s = sub.add_parser("data", help="dataset utilities")
    dsub = s.add_subparsers(dest="data_verb", required=True, metavar="DATA_VERB")
    c = dsub.add_parser("check", help="validate a dataset folder and list every problem (exit 1 if any)")
    c.add_argument("dataset", help="a dataset name (see `modalbridge tasks`)")
    c.add_argument("root")
    c.set_defaults(func=_data_check)
    c = dsub.add_parser("prepare", help="convert a dataset's release into the format the data modules read")
    _add_prepare_parsers(c)
    s = sub.add_parser("models", help="list registered models")
    s.add_argument("--task", default=None)
    s.set_defaults(func=_models)
    s = sub.add_parser("bench", help="benchmarks printing ratios measured in one run")
    s.add_argument("name", nargs="?", default="all", help="all or one benchmark name (see `modalbridge tasks`)")
    s.add_argument("--quick", action="store_true")
    s.set_defaults(func=_bench)
    groups = {"data": dsub}
    for _task, verb in all_verbs():
        parent = groups[verb.group] if verb.group else sub
        v = parent.add_parser(verb.name, help=verb.help)
        verb.add_arguments(v)
        v.set_defaults(func=_plugin_verb(verb.run))
    return p


def _plugin_verb(target: str):
    def run(args) -> int:
        from modalbridge.core.plugins import load_target

        return int(load_target(target)(args) or 0)

    return run


def _debugging(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("MODALBRIDGE_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    debug = _debugging(argv)
    if debug and "--debug" in argv:
        argv.remove("--debug")
    try:
        if argv and argv[0] in LIGHTNING_VERBS:
            return _lightning(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("modalbridge: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse's own exits (int codes) pass; a verb's message becomes one error line
        if not isinstance(exc.code, str) or debug:
            raise
        message = exc.code.removeprefix("modalbridge ")
    except Exception as exc:
        from modalbridge.core.errors import describe_user_error

        message = describe_user_error(exc, argv)
        if message is None or debug:
            raise
    print(f"modalbridge: error: {message}", file=sys.stderr)
    print("(run with --debug or MODALBRIDGE_DEBUG=1 for the Python traceback)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
