"""``modalbridge scene "<text>" --ckpt …``: place the clip-arts a description names and draw the scene.

Which clip-arts: ``--cliparts`` names them; else ``--predictor`` runs the clip-art predictor on the text (the
thesis's full text → scene pipeline: objects with p > 0.35 plus one Mike and one Jenny); else the clip-arts the
text names are looked up in the vocabulary's words (:data:`~modalbridge.tasks.scenes.vocab.WORDS`; Mike's and
Jenny's pose and expression from words such as "kicking" or "smiling" in their sentences — ours, a convenience
for trying a model without a predictor). ``--complete`` instead places one group of a dataset scene given the
rest (thesis Table 3.2).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from modalbridge.core.errors import DataError
from modalbridge.tasks.scenes import vocab as V

__all__ = ["cliparts_from_text", "parse_cliparts", "scene_cli", "split_sentences"]

_POSE_WORDS = {"kicking": 2, "kicks": 2, "running": 3, "runs": 3, "sitting": 5, "sits": 5, "waving": 6, "waves": 6,
               "arms up": 1, "legs crossed": 4}
_EXPRESSION_WORDS = {"angry": 0, "mad": 0, "big smile": 1, "laughing": 1, "happy": 1, "smiling": 2, "smiles": 2,
                     "sad": 3, "crying": 3, "scared": 4, "afraid": 4, "surprised": 4}


def split_sentences(text: str) -> list[str]:
    """Sentences of a description, lower-cased, each ending in ``.``/``!``/``?`` (the dataset's normalisation)."""
    parts = [p.strip().lower() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    return [p if p[-1] in '.!?"' else p + "." for p in parts]


def _person(sentences: list[str], word: str, prefix: str) -> str:
    """``hb0_<k>s.png`` / ``hb1_<k>s.png`` with pose and expression from the sentences naming the person."""
    about = " ".join(s for s in sentences if re.search(rf"\b{word}\b", s))
    pose = next((v for w, v in _POSE_WORDS.items() if re.search(rf"\b{w}\b", about)), 0)
    expression = next((v for w, v in _EXPRESSION_WORDS.items() if re.search(rf"\b{w}\b", about)), 2)
    return f"{prefix}_{pose * 5 + expression}s.png"


def cliparts_from_text(text: str) -> list[str]:
    """Clip-art names the text mentions, by the vocabulary's words (longest match first), in group order."""
    sentences = split_sentences(text)
    joined = " ".join(sentences)
    found: list[str] = []
    for person, prefix in (("mike", "hb0"), ("jenny", "hb1")):
        if re.search(rf"\b{person}\b", joined):
            found.append(_person(sentences, person, prefix))
    objects = {w: n for n, w in V.WORDS.items() if not n.startswith("hb")}
    rest = joined
    for word in sorted(objects, key=len, reverse=True):
        pattern = rf"\b{re.escape(word)}s?\b"
        if re.search(pattern, rest):
            found.append(objects[word])
            rest = re.sub(pattern, " ", rest)
    return sorted(found, key=lambda n: (V.GROUPS.index(V.group_of(n)), V.clipart_id(n)))


def parse_cliparts(text: str) -> list[str]:
    """``"hb0_14s, s_3s.png"`` → ``["hb0_14s.png", "s_3s.png"]``; unknown names are an error listing them."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    names = [n if n.endswith(".png") else f"{n}.png" for n in names]
    unknown = [n for n in names if n not in V.CLIPARTS]
    if unknown or not names:
        raise DataError(f"unknown clip-art name(s) {', '.join(unknown) or '(none given)'}; names look like "
                        "hb0_14s (Mike, pose 2, expression 4), s_3s (sun), p_8s (tree) — see docs/scenes.md",
                        field="--cliparts")
    return names


def _scene_batch(sentences: list[str], names: list[str], tokenizer, no_description: bool,
                 positions: list[tuple[float, float, int]] | None = None):
    from modalbridge.tasks.scenes.data import SceneSamples, collate_scenes

    positions = positions or [(0.0, 0.0, 0)] * len(names)
    scene = {"index": 0, "sentences": {"0_file1": sentences},
             "elements": [{"visual_name": n, "x": x, "y": y, "z": 0, "flip": f} for n, (x, y, f) in
                          zip(names, positions)]}
    samples = SceneSamples([scene], tokenizer, train=False, no_description=no_description)
    return collate_scenes([samples[0]])


def _load(ckpt: str):
    from modalbridge.core.engine import load_module_checkpoint, read_checkpoint
    from modalbridge.tasks.scenes.data import load_tokenizer
    from modalbridge.tasks.scenes.module import ClipartPredictorModule, SceneLayoutModule

    kind = read_checkpoint(ckpt).get("modalbridge_class")
    classes = {"SceneLayoutModule": SceneLayoutModule, "ClipartPredictorModule": ClipartPredictorModule}
    if kind not in classes:
        raise DataError(f"not a scenes checkpoint (written by {kind or 'an unknown module'}); give the .ckpt of "
                        "`modalbridge fit --config configs/scenes/…`", path=ckpt)
    module, data = load_module_checkpoint(ckpt, classes[kind])
    hp = data.get("hparams") or {}
    return module, load_tokenizer(hp.get("tokenizer", "minilm-l6")), bool(hp.get("no_description", False))


def _clipart_dir(args) -> Path | None:
    if args.cliparts_dir:
        folder = Path(args.cliparts_dir)
        if not folder.is_dir():
            raise DataError("clip-art folder not found (give Abstract Scenes' Pngs/ folder)", path=folder)
        return folder
    from modalbridge.core.worlds import resolve_root
    from modalbridge.tasks.scenes.abstract_scenes import clipart_folder

    return clipart_folder(resolve_root("world://scenes"))


#: what ``--picture`` may be (Pillow and matplotlib both write these)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _check_picture(picture: str) -> None:
    if Path(picture).suffix.lower() not in PICTURE_SUFFIXES:
        raise DataError(f"--picture {picture!r}: give a file name ending in {', '.join(PICTURE_SUFFIXES)} "
                        "(e.g. scene.png)", field="--picture")


def _strategy(args, module) -> str:
    """``--decoding`` (default: the checkpoint's first test strategy), checked against the model's kind."""
    from modalbridge.tasks.scenes.decoding import STRATEGIES

    strategy = args.decoding or module.strategies[0]
    if strategy not in STRATEGIES:
        raise DataError(f"unknown decoding strategy {strategy!r}; one of {', '.join(STRATEGIES)}", field="--decoding")
    if module.kind == "continuous" and strategy in ("hc", "hc-beam", "le"):
        raise DataError(f"{strategy} needs a discrete model's probabilities; this checkpoint is continuous: "
                        "use ss, ro or ho", field="--decoding")
    return strategy


def scene_cli(args) -> int:
    from modalbridge.core.precision import autocast, describe_precision, resolve_precision
    from modalbridge.tasks.scenes.decoding import decode
    from modalbridge.tasks.scenes.module import ClipartPredictorModule, SceneLayoutModule
    from modalbridge.tasks.scenes.render import render_scene

    _check_picture(args.picture)
    module, tokenizer, no_description = _load(args.ckpt)
    if not isinstance(module, SceneLayoutModule):
        raise DataError("this is a clip-art predictor checkpoint; give it as --predictor and an SR-BERT "
                        "checkpoint as --ckpt", path=args.ckpt)
    precision = resolve_precision(args.precision, "cpu")
    if args.complete:
        return _complete(args, module, tokenizer, no_description, precision)
    strategy = _strategy(args, module)
    sentences = split_sentences(args.text or "")
    if not sentences:
        raise DataError("the description is empty; write a few sentences such as \"mike is left of the tree.\"",
                        field="text")
    if args.cliparts:
        names = parse_cliparts(args.cliparts)
    elif args.predictor:
        predictor, ptok, _ = _load(args.predictor)
        if not isinstance(predictor, ClipartPredictorModule):
            raise DataError("--predictor must be a clip-art predictor checkpoint (configs/scenes/world_cliparts.yaml)",
                            path=args.predictor)
        names = predictor.predict_names(sentences, ptok)
    else:
        names = cliparts_from_text(args.text)
        if not names:
            known = ", ".join(sorted({w for w in V.WORDS.values()})[:12])
            raise DataError(f"the text names no clip-art this model knows (words such as {known} …); name the "
                            "clip-arts with --cliparts or give a clip-art predictor with --predictor", field="text")
    heatmap_slot = _heatmap_slot(args.heatmap, names, module.kind) if args.heatmap else None
    batch = _scene_batch(sentences, names, tokenizer, no_description)
    with torch.inference_mode(), autocast(precision, "cpu"):
        decoded = decode(module.model, batch, strategy, beam=module.hparams.beam,
                         criterion=module.hparams.hc_criterion)
    px = decoded.pixels()[0].float()
    flips = decoded.o[0].tolist()
    order = decoded.order[0].tolist()
    print(f"{len(names)} clip-arts placed by {strategy} ({describe_precision(precision, 'cpu')}):")
    print(f"{'step':>4}  {'clip-art':<14} {'word':<16} {'x':>5} {'y':>5}  flip")
    for i in sorted(range(len(names)), key=lambda i: order[i]):
        print(f"{order[i]:>4}  {names[i]:<14} {V.WORDS[names[i]]:<16} {px[i, 0]:>5.0f} {px[i, 1]:>5.0f}  {flips[i]}")
    image = render_scene(names, px.tolist(), flips, png_dir=_clipart_dir(args))
    Path(args.picture).parent.mkdir(parents=True, exist_ok=True)
    image.save(args.picture)
    print(f"scene drawn in {args.picture}")
    if heatmap_slot is not None:
        _heatmap(args, module, batch, names, image, decoded, heatmap_slot)
    return 0


def _heatmap_slot(wanted: str, names: list[str], kind: str) -> int:
    """Slot of the clip-art ``--heatmap`` names (a PNG name with or without ``.png``, or a word such as "dog")."""
    if kind == "continuous":
        raise DataError("a heat-map needs a discrete model's position probabilities; this checkpoint is continuous",
                        field="--heatmap")
    name = wanted if wanted.endswith(".png") else f"{wanted}.png"
    slot = next((i for i, n in enumerate(names) if n == name or V.WORDS[n] == wanted.lower()), None)
    if slot is None:
        raise DataError(f"--heatmap {wanted!r} is not one of the placed clip-arts "
                        f"({', '.join(V.WORDS[n] for n in names)})", field="--heatmap")
    return slot


def _heatmap(args, module, batch, names: list[str], image, decoded, slot: int) -> None:
    from modalbridge.tasks.scenes.decoding import heatmap
    from modalbridge.tasks.scenes.render import heatmap_figure

    grid = heatmap(module.model, batch, 0, slot, context=decoded)  # the others where they were placed
    path = Path(args.picture).with_name(Path(args.picture).stem + "_heatmap.png")
    heatmap_figure(grid, image, path)
    print(f"where the {V.WORDS[names[slot]]} could go: {path}")


def _complete(args, module, tokenizer, no_description, precision) -> int:
    import json

    from modalbridge.core.precision import autocast
    from modalbridge.tasks.scenes.abstract_scenes import _validate_scene, read_processed
    from modalbridge.tasks.scenes.data import SceneSamples, collate_scenes
    from modalbridge.tasks.scenes.decoding import complete_group
    from modalbridge.tasks.scenes.metrics import scene_scores
    from modalbridge.tasks.scenes.render import render_scene, side_by_side

    if args.group not in V.GROUPS:
        raise DataError(f"unknown group {args.group!r}; one of {', '.join(V.GROUPS)}", field="--group")
    path = Path(args.complete)
    if not path.is_file():
        raise DataError("scene file not found" if not path.exists() else "expected a processed scene JSON file, "
                        "found a folder", path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not a processed scene JSON file ({exc}); give one scene or a split file written by "
                        "`modalbridge data prepare scenes`", path=path) from None
    scenes = [_validate_scene(data, path, 0)] if isinstance(data, dict) else read_processed(path)
    if not 0 <= args.scene < len(scenes):
        raise DataError(f"--scene {args.scene} is out of range: the file has {len(scenes)} scenes", path=path)
    scene = scenes[args.scene]
    names = [e["visual_name"] for e in scene["elements"]]
    members = [i for i, n in enumerate(names) if V.group_of(n) == args.group]
    if not members:
        raise DataError(f"scene {args.scene} has no {args.group} clip-art (it has: "
                        f"{', '.join(sorted({V.group_of(n) for n in names}))})", path=path)
    samples = SceneSamples([scene], tokenizer, train=False, no_description=no_description)
    batch = collate_scenes([samples[0]])
    with torch.inference_mode(), autocast(precision, "cpu"):
        decoded = complete_group(module.model, batch, args.group)
    px, flips = decoded.pixels()[0].float(), decoded.o[0].tolist()
    scores = scene_scores(decoded.pixels().float(), decoded.o, batch)
    print(f"{args.group} of scene {args.scene} placed given the rest:")
    for i in members:
        e = scene["elements"][i]
        print(f"  {names[i]:<14} {V.WORDS[names[i]]:<14} predicted ({px[i, 0]:.0f}, {px[i, 1]:.0f}) flip {flips[i]}"
              f"   truth ({e['x']}, {e['y']}) flip {e['flip']}")
    print("scene S_abs {:.3f}  S_rel {:.3f}".format(float(scores["abs_sim"][0]), float(scores["rel_sim"][0])))
    folder = _clipart_dir(args)
    truth = render_scene(names, [(e["x"], e["y"]) for e in scene["elements"]], [e["flip"] for e in scene["elements"]],
                         png_dir=folder)
    pred = render_scene(names, px.tolist(), flips, png_dir=folder)
    sentences = [s for key in sorted(scene["sentences"]) for s in scene["sentences"][key]]
    side_by_side(truth, pred, sentences, args.picture, title=f"{args.group}: ground truth | completed")
    print(f"scene drawn in {args.picture}")
    return 0
