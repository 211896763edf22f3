"""The YAML recipes under configs/ through the real CLI entry point (``lightning_cli(..., run=False,
parse_only=True)``: parsed and validated the way ``modalbridge fit`` reads them, nothing built or read).

Layout (configs/README.md): ``configs/<task>/<name>.yaml`` are the recipes, each run with ONE command written
in its header (``# Run: modalbridge fit --config configs/<task>/<name>.yaml``); ``configs/_base/*.yaml`` hold
what a family of recipes shares and are not run alone: a recipe pulls its base in with a first key
``config: ../_base/<base>.yaml`` (jsonargparse applies a ``config`` key found inside a config file; the keys
after it override the base), then overrides single values with dotted keys (``data.init_args.holdout: 0``) or
replaces the whole ``model``/``data`` with a block that names its ``class_path``.
"""

from __future__ import annotations

import importlib
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from modalbridge.cli import lightning_cli, run_identity

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name != "_base")
BASES = sorted((CONFIGS / "_base").glob("*.yaml"))
# Files not parsed on their own, with the reason: each base is parsed inside every recipe that includes it
# (test_base_is_parsed_through_the_recipes_that_include_it).
NOT_RUN_ALONE = {p.relative_to(REPO).as_posix(): "base of a recipe family: no run of its own (some: no model)"
                 for p in BASES}
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VERBS = ("fit", "validate", "test", "predict")
VERB_ONLY_OPTIONS = {"--ckpt_path"}  # options of the verb sub-commands, absent from the verb-less parser
PLACEHOLDERS = {"N", "M", "...", "…"}


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _included_base(path: Path) -> Path | None:
    raw = _raw(path)
    return (path.parent / raw["config"]).resolve() if "config" in raw else None


# -- documented commands ---------------------------------------------------------------------------------
_COMMAND = re.compile(r"modalbridge(?:\.cli)? (" + "|".join(VERBS) + r") (--config configs/.*)")


def _commands(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """``(verb, argv)`` of every ``modalbridge <verb> --config configs/…`` command written in a file (in a
    config: its comments), continuation lines (``\\``) joined, trailing comments and backquotes dropped."""
    lines = path.read_text().splitlines()
    if path.suffix == ".yaml":
        lines = [line.lstrip("#").strip() if line.startswith("#") else "" for line in lines]
    found = []
    for i, line in enumerate(lines):
        m = _COMMAND.search(line)
        if not m:
            continue
        text = m.group(2)
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        text = re.split(r"`|\s#|\s\(", text)[0]
        found.append((m.group(1), tuple(shlex.split(text))))
    return found


def _documented() -> dict[tuple[str, ...], list[str]]:
    """argv (verb-less) of every documented command -> where it is written."""
    out: dict[tuple[str, ...], list[str]] = {}
    for path in [*RECIPES, *BASES, *DOCS]:
        for verb, argv in _commands(path):
            out.setdefault(argv, []).append(f"{_rel(path)} ({verb})")
    return out


DOCUMENTED = _documented()


def _literal(argv: tuple[str, ...]) -> bool:
    return not any(a in PLACEHOLDERS or a.startswith("<") or "$" in a for a in argv)


@cache
def parse(*argv: str):
    """The validated config of ``modalbridge fit <argv>`` (config paths relative to the repository)."""
    args, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a in VERB_ONLY_OPTIONS:
            skip = True
        else:
            args.append(str(REPO / a) if i and argv[i - 1] == "--config" else a)
    return lightning_cli(args, run=False, parse_only=True).config


def _recipe(path: Path):
    return parse("--config", _rel(path))


@pytest.mark.parametrize("argv", [a if _literal(a) else pytest.param(a, marks=pytest.mark.skip(
    reason=f"placeholder in the command written in {DOCUMENTED[a]}")) for a in DOCUMENTED], ids=" ".join)
def test_documented_command_parses(argv):
    cfg = parse(*argv)
    assert cfg.model.class_path and cfg.data.class_path


def test_every_recipe_documents_its_one_command():
    for path in RECIPES:
        run = f"# Run: modalbridge fit --config {_rel(path)}"
        assert ("--config", _rel(path)) in DOCUMENTED, f"{_rel(path)}: its header lacks '{run}'"
        # `test` for a recipe with nothing to train (a naive baseline)
        assert {f"{_rel(path)} (fit)", f"{_rel(path)} (test)"} & set(DOCUMENTED[("--config", _rel(path))])


@pytest.mark.parametrize("base", sorted(NOT_RUN_ALONE))
def test_base_is_parsed_through_the_recipes_that_include_it(base):
    """Not parsed alone (the reason in NOT_RUN_ALONE); every recipe including it parses with it."""
    users = [p for p in RECIPES if _included_base(p) == (REPO / base).resolve()]
    assert users, f"{base} is included by no recipe, so it is never parsed"
    for path in users:
        assert Path(_recipe(path).config[0].absolute).resolve() == (REPO / base).resolve()


@pytest.mark.parametrize("path", RECIPES, ids=_rel)
def test_recipe_layout_and_composition(path):
    """A recipe's base comes first and is a configs/_base file; its block keys replace whole subclass specs
    (a nested ``trainer:`` after ``config:`` would drop the base's trainer); every value it sets and every
    base value it does not override is what the CLI parses; no key repeats what the CLI derives."""
    raw = _raw(path)
    cfg = _recipe(path).as_dict()
    base = _included_base(path)
    own = _flatten(raw)
    if base is not None:
        assert next(iter(raw)) == "config", f"{_rel(path)}: 'config:' must be the first key"
        assert base.parent == CONFIGS / "_base" and base.is_file(), base
        for key, value in raw.items():
            if isinstance(value, dict) and "." not in key:
                assert key in ("model", "data") and "class_path" in value, \
                    f"{_rel(path)}: a block '{key}:' replaces the base's whole '{key}'; use dotted keys"
                assert not any(k.startswith(key + ".") for k in raw), f"{_rel(path)}: '{key}' block + dotted"
        replaced = [k for k, v in raw.items() if isinstance(v, dict) and "." not in k]
        inherited = {k: v for k, v in _flatten(_raw(base)).items()
                     if k not in own and not any(k.startswith(r + ".") for r in replaced)}
        assert inherited, f"{_rel(path)} inherits nothing from {base.name}"
        own = {**inherited, **own}
    for key, value in own.items():
        if key == "config":
            continue
        parsed = _get(cfg, key)
        assert _norm(parsed) == _norm(value), f"{_rel(path)}: {key} parsed as {parsed!r}, not {value!r}"
    task, name = path.parent.name, path.stem
    assert raw.get("task") != task and raw.get("run_name") != name, f"{_rel(path)}: task/run_name as derived"
    default_monitor = "val/action_map" if cfg["model"]["init_args"].get("multilabel") else "val/action_top1"
    assert raw.get("monitor") != default_monitor, f"{_rel(path)}: monitor = the model's own"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        full = prefix + key
        if isinstance(value, dict) and not key.endswith(("kwargs", "init_from")):
            out.update(_flatten(value, full + "."))
        else:
            out[full] = value
    return out


def _get(cfg: dict, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def _norm(value):
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def test_the_fit_subcommand_reads_a_composed_recipe(capsys):
    """``modalbridge fit --config <recipe>`` (the sub-command parser) merges the base like the test parser."""
    from modalbridge.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(CONFIGS / "distill" / "world_teacher_flow.yaml"), "--print_config"])
    assert exit_.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    model, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    assert model["modality"] == "flow" and data["modalities"] == ["flow"]
    assert cfg["trainer"]["max_epochs"] == 6 and cfg["trainer"]["log_every_n_steps"] == 10  # from the base
    assert data["holdout"] == 60 and model["model"] == "r3d_tiny"


def test_run_identity_comes_from_the_last_config():
    assert run_identity([]) == (None, None)
    assert run_identity(["configs/actions/world.yaml"]) == ("actions", "world")
    assert run_identity(["../_base/world_ek100.yaml", "configs/distill/world_teacher_flow.yaml"]) == \
        ("distill", "world_teacher_flow")
    expected = {"actions/world.yaml": ("actions", "world"),
                "distill/world_teacher_flow.yaml": ("distill", "world_teacher_flow"),
                "layouts/world_stlt.yaml": ("layouts", "world_stlt"),
                "layouts/world_action_genome.yaml": ("layouts", "world_action_genome"),
                "distill/ek100_teacher.yaml": ("distill", "ek100_teacher_rgb"),  # run_name set in the file
                "distill/language_ek100_real.yaml": ("distill", "ek100_language_real_valsplit")}
    for rel, (task, name) in expected.items():
        cfg = _recipe(CONFIGS / rel)
        assert (cfg.task, cfg.run_name) == (task, name), rel
        assert Path(cfg.trainer.default_root_dir).parts[-2:] == (task, name), rel
        # the included base comes first in cfg.config, the file itself last
        assert Path(cfg.config[-1].absolute).resolve() == (CONFIGS / rel).resolve(), cfg.config
    composed = parse("--config", "configs/layouts/world_stlt.yaml",
                     "--config", "configs/layouts/world_r3d.yaml")
    assert (composed.task, composed.run_name) == ("layouts", "world_r3d")


def test_one_class_path_per_class_the_defining_module():
    """No class is configured under two class_paths (e.g. a re-export next to the defining module)."""
    by_class: dict[type, set[str]] = {}
    for path in [*RECIPES, *BASES]:
        for key, value in _flatten(_raw(path)).items():
            if key == "class_path" or key.endswith(".class_path"):
                module, _, name = value.rpartition(".")
                cls = getattr(importlib.import_module(module), name)
                by_class.setdefault(cls, set()).add(value)
    assert len(by_class) >= 10
    for cls, paths in by_class.items():
        assert paths == {f"{cls.__module__}.{cls.__qualname__}"}, (cls, paths)


def test_ssv2_flow_recipes_read_flow():
    """The SSv2 / Something-Else optical-flow recipes (thesis Tables 7.3 / 7.5) carry flow in batches."""
    teacher = _recipe(CONFIGS / "distill" / "ssv2_teacher_flow.yaml")
    assert teacher.model.init_args.modality == "flow" and list(teacher.data.init_args.modalities) == ["flow"]
    for name in ("ssv2_rgb_of.yaml", "sthelse_rgb_of_obj.yaml"):
        cfg = _recipe(CONFIGS / "distill" / name)
        assert "flow" in cfg.data.init_args.modalities and cfg.data.init_args.holdout == 1000
        args = cfg.model.init_args
        assert (args.lam, args.gamma, args.tau, args.lr, args.weight_decay, args.warmup_epochs) == \
            (1.0, 30.0, 1.0, 1e-4, 0.02, 3)
