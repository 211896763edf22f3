"""Abstract Scenes v1.1 as released (Zitnick & Parikh 2013): reader, ``modalbridge data prepare scenes`` and
``modalbridge data check scenes`` (spec ``sr_bert.md`` §2).

**Raw release** (the folder ``AbstractScenes_v1.1/``, or its parent — both are accepted):

* ``Scenes_10020.txt`` — line 1: the number of scenes. Per scene a header ``<set_idx> <n_objects>`` and
  ``n_objects`` lines ``<png_name> <type_idx> <obj_idx> <x> <y> <z> <flip>`` (TAB or space separated; x, y:
  integer pixel centre, may lie off the 500×400 canvas; z ∈ {0, 1, 2}; flip ∈ {0, 1}). A scene's ordinal (its
  0-based position in the file) is the ``scene_idx`` of the sentence files.
* ``SimpleSentences/SimpleSentences{1,2}_10020.txt`` — ``<scene_idx>\\t<sent_idx>\\t<sentence>``; a blank line
  ends each scene's block. Blank lines and lines whose first field is not a number are skipped.
* ``SimpleSentences/tuples/TuplesText{1,2}_10020.txt`` — ``<scene_idx>\\t<sent_idx>\\t<field>\\t<field>…``
  (subject, relation, object) for the sentence with the same key.
* ``Pngs/`` — the 126 clip-arts of :data:`~modalbridge.tasks.scenes.vocab.CLIPARTS`, ``background.png`` and
  4 interface images; only the renderer needs them.

**What the reader rejects** (:class:`~modalbridge.core.errors.DataError` naming file, line and field): a count
line or scene header that is not integers; an object line without exactly 7 fields; an unknown clip-art name;
non-integer type/object ids or coordinates; z outside 0–2; flip other than 0/1; a header whose object count
disagrees with the object lines that follow; a first-line count that disagrees with the scenes found; a
sentence or tuple line without its three fields, with a non-integer ``sent_idx`` or a ``scene_idx`` outside
the scenes file; a sentence file with **no** blank separator line at all (it is then not a SimpleSentences
file as released — re-exported or the wrong file — so the reader refuses it at the first scene change).
A file that has separators but misses one at some scene change is read (grouping uses ``scene_idx``, nothing
is lost) and the missed separators are counted (``missing separators`` in the check summary). Scenes with
``n_objects = 0`` are dropped and counted, as the reference drops them; so are scenes without sentences.

**Processed JSON** (what :mod:`.data` reads; the reference's format): each split file is a list of scenes
``{"index": set_idx, "scene_idx": ordinal, "elements": [{"visual_name", "x", "y", "z", "flip"}, …],
"sentences": {"<sent_idx>_file<k>": ["lower-cased sentence."]}, "relations": {"<same key>": ["mike=is
kicking=ball"]}}``. ``scene_idx`` is ours (the ordinal in ``Scenes_10020.txt``: the Text2Scene split and
tracing a scene back to the raw files need it); readers ignore it. Sentences are lower-cased, right-stripped
and end in ``. ! ? "`` (a "." is added otherwise); relation fields are lower-cased, right-stripped and joined
with "="; elements keep file order. :func:`prepare_abstract_scenes` writes into ``out`` (default
``<root>/processed``):

* ``{train,val,test}_dataset.json`` — per set (consecutive scenes sharing ``set_idx``) the last kept scene →
  test, the second-to-last → val, the rest → train (7,989 / 1,002 / 1,002 on the release);
* ``test_ood_default.json`` — test scenes with ≥ 2 relation strings (the "="-joined list of one sentence key)
  never seen in train; ``test_ood_ood.json`` / ``test_ood_id.json`` — the same scenes keeping only the
  sentences whose relation is unseen / seen (a sentence without a tuple stays in both, as in the reference);
  ``train_filtered.json`` / ``val_filtered.json`` — train and val without every sentence whose relation
  occurs in the Default scenes (scenes left without sentences are dropped);
* ``test_explicit_{0-25,25-50,50-75,75-100}.json`` — test scenes binned by their share of explicit sentences
  (:func:`~modalbridge.tasks.scenes.vocab.is_explicit`; bins [0, .25], (.25, .5], (.5, .75], (.75, 1]);
* ``tan/{train,val,test}_dataset.json`` — the Text2Scene split (Tan et al. 2019) over kept scenes by ordinal:
  test = ordinals 8000–8999, train = the first 8,500 of the others, val = the rest. For a release of n scenes
  the bounds scale with n: test = ordinals in [⌊8000·n/10020⌋, ⌊9000·n/10020⌋), train = the first
  round(8500·n/10020) others (exactly the paper's split for n = 10,020);
* ``visual_dicts/visual2index.json`` (1-based, :data:`~modalbridge.tasks.scenes.vocab.CLIPARTS`),
  ``index2pose_hb{0,1}.json`` and ``index2expression_hb{0,1}.json`` (keys: 0-based index in the same order, as
  strings) — note the reference's in-code copies of the last four follow the *lexicographic* order of the
  names (hb0_10s before hb0_1s) while its visual2index is natural-sorted; ours are consistent with
  visual2index;
* ``prepare_summary.json`` — the counts of :class:`PrepareSummary`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modalbridge.core.errors import DataError
from modalbridge.datasets.check import MAX_LISTED, CheckReport
from modalbridge.io.records import read_json_file
from modalbridge.tasks.scenes import vocab as V

__all__ = ["PrepareSummary", "PreparedFiles", "RawElement", "RawRelease", "RawScene", "check_scenes",
           "clipart_folder", "explicit_bins", "explicit_ratio", "find_release", "normalise_sentence",
           "ood_subsets", "prepare_abstract_scenes", "prepare_scenes", "processed_scenes", "read_processed",
           "read_release", "read_scenes", "read_sentences", "read_tuples", "split_scenes", "tan_split",
           "visual_dicts"]

RELEASE_DIR = "AbstractScenes_v1.1"
SCENES_FILE = "Scenes_10020.txt"
SENTENCE_FILES = ("SimpleSentences/SimpleSentences1_10020.txt", "SimpleSentences/SimpleSentences2_10020.txt")
TUPLE_FILES = ("SimpleSentences/tuples/TuplesText1_10020.txt", "SimpleSentences/tuples/TuplesText2_10020.txt")
PNGS_DIR = "Pngs"
OBJECT_FIELDS = ("png_name", "type_idx", "obj_idx", "x", "y", "z", "flip")
SPLITS = ("train", "val", "test")
#: explicit-ratio bins of the test set: (name, lower bound exclusive except the first, upper bound inclusive)
EXPLICIT_BINS = (("0-25", 0.0, 0.25), ("25-50", 0.25, 0.5), ("50-75", 0.5, 0.75), ("75-100", 0.75, 1.0))
#: the Text2Scene split on the full release: scenes, test ordinals [8000, 9000), first 8500 others → train
TAN_SCENES, TAN_TEST, TAN_TRAIN = 10020, (8000, 9000), 8500
SENTENCE_ENDINGS = (".", "!", "?", '"')


# ============================================================================================ raw release
@dataclass(frozen=True)
class RawElement:
    """One object line of ``Scenes_10020.txt``."""

    name: str
    type_idx: int
    obj_idx: int
    x: int
    y: int
    z: int
    flip: int

    def as_json(self) -> dict:
        return {"visual_name": self.name, "x": self.x, "y": self.y, "z": self.z, "flip": self.flip}


@dataclass
class RawScene:
    """One scene of ``Scenes_10020.txt``: ``ordinal`` = 0-based position in the file (the sentence files'
    ``scene_idx``), ``line`` = 1-based line of its header."""

    ordinal: int
    set_idx: int
    line: int
    elements: list[RawElement] = field(default_factory=list)


@dataclass
class RawRelease:
    """Everything read from a raw release folder (see :func:`read_release`)."""

    root: Path
    declared: int | None
    scenes: list[RawScene]
    sentences: dict[int, dict[str, list[str]]]
    relations: dict[int, dict[str, list[str]]]
    counts: dict[str, int]


def _record(errors: list[DataError] | None, error: DataError) -> None:
    """Raise ``error``, or append it to ``errors`` when collecting every problem (``data check``)."""
    if errors is None:
        raise error
    errors.append(error)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        what = "expected a file, found a folder" if path.exists() else "file not found"
        raise DataError(what, path=path)
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def find_release(root: str | Path) -> Path:
    """The folder that holds ``Scenes_10020.txt``: ``root`` itself or ``root/AbstractScenes_v1.1``."""
    root = Path(root)
    for candidate in (root, root / RELEASE_DIR):
        if (candidate / SCENES_FILE).is_file():
            return candidate
    raise DataError(f"no {SCENES_FILE} here nor in {RELEASE_DIR}/ (give the Abstract Scenes v1.1 folder or "
                    "its parent)", path=root)


def _int(text: str, path: Path, line: int, name: str, what: str = "an integer") -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"expected {what}, got {text!r}", path=path, row=line, field=name) from None


def _parse_object(tokens: list[str], path: Path, line: int) -> RawElement:
    """One object line (7 fields) → :class:`RawElement`; DataError naming the first bad field."""
    if len(tokens) != len(OBJECT_FIELDS):
        expected = f"{len(OBJECT_FIELDS)} fields <{'> <'.join(OBJECT_FIELDS)}>"
        raise DataError(f"expected {expected}, got {len(tokens)}", path=path, row=line, field="object")
    name = tokens[0]
    if name not in V.CLIPARTS:
        raise DataError(f"unknown clip-art {name!r} (expected one of the 126 Pngs names such as hb0_14s.png)",
                        path=path, row=line, field="png_name")
    type_idx, obj_idx = (_int(t, path, line, f) for t, f in zip(tokens[1:3], OBJECT_FIELDS[1:3]))
    x, y = (_int(t, path, line, f, "an integer pixel coordinate") for t, f in zip(tokens[3:5], ("x", "y")))
    z = _int(tokens[5], path, line, "z", "a depth 0, 1 or 2")
    if z not in (0, 1, 2):
        raise DataError(f"expected a depth 0, 1 or 2, got {z}", path=path, row=line, field="z")
    flip = _int(tokens[6], path, line, "flip", "0 or 1")
    if flip not in (0, 1):
        raise DataError(f"expected 0 or 1, got {flip}", path=path, row=line, field="flip")
    return RawElement(name, type_idx, obj_idx, x, y, z, flip)


def read_scenes(path: str | Path, *,
                errors: list[DataError] | None = None) -> tuple[int | None, list[RawScene]]:
    """``Scenes_10020.txt`` → (declared count, scenes in file order, empty ones included).

    Lines are classified by their field count (2 = scene header, otherwise an object line), so after a bad
    line reading goes on at the next one; with ``errors`` every problem is appended there (and the bad object
    skipped) instead of raised.
    """
    path = Path(path)
    lines = _read_lines(path)
    declared = None
    first = lines[0].split() if lines else []
    if len(first) != 1:
        _record(errors, DataError(f"expected the number of scenes alone on the first line, got {lines[0]!r}"
                                  if lines else "empty file; expected the number of scenes on line 1",
                                  path=path, row=1, field="count"))
    else:
        try:
            declared = _int(first[0], path, 1, "count")
        except DataError as exc:
            _record(errors, exc)
    scenes: list[RawScene] = []
    expected = seen = 0  # object lines the current header announced / found so far

    def close() -> None:
        if scenes and seen != expected:
            scene = scenes[-1]
            message = (f"scene {scene.ordinal} (set {scene.set_idx}) declares {expected} objects but {seen} "
                       "object lines follow")
            _record(errors, DataError(message, path=path, row=scene.line, field="n_objects"))

    for number, text in enumerate(lines[1:], start=2):
        tokens = text.split()
        if not tokens:
            continue
        if len(tokens) == 2:
            close()
            try:
                set_idx = _int(tokens[0], path, number, "set_idx")
                expected = _int(tokens[1], path, number, "n_objects")
            except DataError as exc:
                _record(errors, exc)
                set_idx, expected = -1, 0
            seen = 0
            scenes.append(RawScene(len(scenes), set_idx, number))
            continue
        if not scenes:
            _record(errors, DataError("object line before any scene header <set_idx> <n_objects>", path=path,
                                      row=number))
            continue
        seen += 1
        try:
            scenes[-1].elements.append(_parse_object(tokens, path, number))
        except DataError as exc:
            _record(errors, exc)
    close()
    if declared is not None and declared != len(scenes):
        _record(errors, DataError(f"line 1 says {declared} scenes but the file holds {len(scenes)}",
                                  path=path, row=1, field="count"))
    return declared, scenes


def normalise_sentence(text: str) -> str:
    """The reference's sentence normalisation: lower-case, right-strip, add "." unless it ends in . ! ? \"."""
    text = text.rstrip().lower()
    return text if text.endswith(SENTENCE_ENDINGS) else text + "."


def _keyed_lines(path: Path, num_scenes: int | None, errors: list[DataError] | None, counts: dict[str, int],
                 *, tabs_only: bool) -> Iterable[tuple[int, int, int, list[str]]]:
    """Yield ``(line, scene_idx, sent_idx, rest fields)`` of a sentence/tuple file; blank and non-numeric
    lines are skipped; scene changes without a blank line in between are counted (``missing separators``) and,
    when the file has no blank line at all, reported as one problem."""
    lines = _read_lines(path)
    blank_seen, previous, unseparated = False, None, []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            blank_seen = True
            continue
        head = raw.split(None, 1)[0]
        if not head.lstrip("-").isdigit():
            counts["skipped lines"] = counts.get("skipped lines", 0) + 1
            continue
        parts = raw.split("\t")
        if len(parts) < 3 and not tabs_only:  # a sentence line separated by spaces
            parts = raw.split(None, 2)
        if len(parts) < 3:
            what = "TAB-separated <scene_idx> <sent_idx> <field> <field>…" if tabs_only else \
                "<scene_idx>\\t<sent_idx>\\t<sentence>"
            _record(errors, DataError(f"expected {what}, got {len(parts)} field(s)", path=path, row=number))
            continue
        scene = int(head)
        if num_scenes is not None and not 0 <= scene < num_scenes:
            message = (f"scene index {scene} out of range: {SCENES_FILE} has {num_scenes} scenes "
                       f"(0..{num_scenes - 1})")
            _record(errors, DataError(message, path=path, row=number, field="scene_idx"))
            continue
        try:
            sent = _int(parts[1].strip(), path, number, "sent_idx")
        except DataError as exc:
            _record(errors, exc)
            continue
        if previous is not None and scene != previous and not blank_seen:
            unseparated.append((number, previous, scene))
        blank_seen, previous = False, scene
        yield number, scene, sent, parts[2:]
    if unseparated and not any(not raw.strip() for raw in lines):
        number, before, after = unseparated[0]
        message = (f"no blank line separates scene {before} from scene {after}: this file has no separator "
                   "lines at all, but SimpleSentences files end every scene's block with one (re-exported or "
                   "the wrong file?)")
        _record(errors, DataError(message, path=path, row=number, field="separator"))
    elif unseparated:
        counts["missing separators"] = counts.get("missing separators", 0) + len(unseparated)


def read_sentences(path: str | Path, file_no: int, num_scenes: int | None = None, *,
                   into: dict[int, dict[str, list[str]]] | None = None, errors: list[DataError] | None = None,
                   counts: dict[str, int] | None = None) -> dict[int, dict[str, list[str]]]:
    """A ``SimpleSentences<file_no>_10020.txt`` → ``{scene_idx: {"<sent_idx>_file<file_no>": [sentence, …]}}``
    (normalised by :func:`normalise_sentence`; added to ``into`` when given). Empty sentences are skipped and
    counted in ``counts["empty sentences"]``."""
    out = {} if into is None else into
    counts = {} if counts is None else counts
    path = Path(path)
    for _, scene, sent, rest in _keyed_lines(path, num_scenes, errors, counts, tabs_only=False):
        text = "\t".join(rest)
        if not text.strip():
            counts["empty sentences"] = counts.get("empty sentences", 0) + 1
            continue
        out.setdefault(scene, {}).setdefault(f"{sent}_file{file_no}", []).append(normalise_sentence(text))
    return out


def read_tuples(path: str | Path, file_no: int, num_scenes: int | None = None, *,
                into: dict[int, dict[str, list[str]]] | None = None, errors: list[DataError] | None = None,
                counts: dict[str, int] | None = None) -> dict[int, dict[str, list[str]]]:
    """A ``TuplesText<file_no>_10020.txt`` → ``{scene_idx: {"<sent_idx>_file<file_no>": ["s=r=o", …]}}``
    (fields lower-cased, right-stripped, joined with "=")."""
    out = {} if into is None else into
    counts = {} if counts is None else counts
    for _, scene, sent, rest in _keyed_lines(Path(path), num_scenes, errors, counts, tabs_only=True):
        relation = "=".join(f.rstrip().lower() for f in rest)
        out.setdefault(scene, {}).setdefault(f"{sent}_file{file_no}", []).append(relation)
    return out


def read_release(root: str | Path, *, errors: list[DataError] | None = None) -> RawRelease:
    """Read a raw release (``root`` = ``AbstractScenes_v1.1/`` or its parent). With ``errors``, every problem
    is collected there (missing files included) and reading goes on with what is readable."""
    release = find_release(root)
    counts: dict[str, int] = {}
    declared, scenes = read_scenes(release / SCENES_FILE, errors=errors)
    sentences: dict[int, dict[str, list[str]]] = {}
    relations: dict[int, dict[str, list[str]]] = {}
    for k, (sentence_file, tuple_file) in enumerate(zip(SENTENCE_FILES, TUPLE_FILES), start=1):
        for name, reader, into in ((sentence_file, read_sentences, sentences),
                                   (tuple_file, read_tuples, relations)):
            try:
                reader(release / name, k, len(scenes), into=into, errors=errors, counts=counts)
            except DataError as exc:  # a missing file
                _record(errors, exc)
    return RawRelease(release, declared, scenes, sentences, relations, counts)


# ============================================================================================ prepare
@dataclass
class PrepareSummary:
    """What :func:`prepare_abstract_scenes` read, kept and wrote (``str()`` is the CLI's one-line summary)."""

    scenes_read: int = 0
    kept: int = 0
    dropped_empty: int = 0
    dropped_without_sentences: int = 0
    sentences: int = 0
    splits: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        splits = ", ".join(f"{name} {count}" for name, count in self.splits.items())
        return (f"read {self.scenes_read} scenes: kept {self.kept}, dropped {self.dropped_empty} empty and "
                f"{self.dropped_without_sentences} without sentences; {self.sentences} sentences; {splits}")


class PreparedFiles(dict):
    """``{name: written path}`` (what ``data prepare`` prints); ``.summary``: the :class:`PrepareSummary`."""

    summary: PrepareSummary


def processed_scenes(release: RawRelease, summary: PrepareSummary | None = None) -> list[dict]:
    """Raw scenes → processed scene dicts (module docstring), keeping those with ≥ 1 object and sentences."""
    summary = PrepareSummary() if summary is None else summary
    summary.scenes_read = len(release.scenes)
    kept = []
    for scene in release.scenes:
        if not scene.elements:
            summary.dropped_empty += 1
            continue
        sentences = release.sentences.get(scene.ordinal)
        if not sentences:
            summary.dropped_without_sentences += 1
            continue
        kept.append({"index": scene.set_idx, "scene_idx": scene.ordinal,
                     "elements": [e.as_json() for e in scene.elements], "sentences": sentences,
                     "relations": release.relations.get(scene.ordinal, {})})
    summary.kept = len(kept)
    summary.sentences = sum(len(v) for s in kept for v in s["sentences"].values())
    return kept


def split_scenes(scenes: list[dict]) -> dict[str, list[dict]]:
    """Per set (consecutive scenes with the same ``index``): last → test, second-to-last → val, rest → train.
    A set with a single kept scene gives it to test."""
    out: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for _, group in itertools.groupby(scenes, key=lambda s: s["index"]):
        group = list(group)
        out["test"].append(group[-1])
        if len(group) > 1:
            out["val"].append(group[-2])
        out["train"] += group[:-2]
    return out


def _relation_strings(scene: dict) -> dict[str, str]:
    """``{sentence key: "="-joined relation list}`` of a scene (the reference's unit for seen/unseen)."""
    return {key: "=".join(values) for key, values in scene.get("relations", {}).items()}


def _keep_sentences(scene: dict, keep) -> dict:
    """A copy of ``scene`` keeping the sentence keys for which ``keep(key)`` is true (relations likewise)."""
    out = dict(scene)
    out["sentences"] = {k: v for k, v in scene["sentences"].items() if keep(k)}
    out["relations"] = {k: v for k, v in scene.get("relations", {}).items() if keep(k)}
    return out


def ood_subsets(train: list[dict], val: list[dict], test: list[dict]) -> dict[str, list[dict]]:
    """The Table 3.3 subsets (module docstring): ``test_ood_default``, ``test_ood_ood``, ``test_ood_id``,
    ``train_filtered``, ``val_filtered``."""
    seen = {relation for scene in train for relation in _relation_strings(scene).values()}
    default = [s for s in test if sum(r not in seen for r in _relation_strings(s).values()) >= 2]
    ood, in_dist = [], []
    for scene in default:
        relations = _relation_strings(scene)
        ood.append(_keep_sentences(scene, lambda k, r=relations: r.get(k) is None or r[k] not in seen))
        in_dist.append(_keep_sentences(scene, lambda k, r=relations: r.get(k) is None or r[k] in seen))
    banned = {relation for scene in default for relation in _relation_strings(scene).values()}

    def filtered(scenes: list[dict]) -> list[dict]:
        out = []
        for scene in scenes:
            relations = _relation_strings(scene)
            kept = _keep_sentences(scene, lambda k, r=relations: r.get(k) not in banned)
            if kept["sentences"]:
                out.append(kept)
        return out

    return {"test_ood_default": default, "test_ood_ood": ood, "test_ood_id": in_dist,
            "train_filtered": filtered(train), "val_filtered": filtered(val)}


def explicit_ratio(scene: dict) -> float:
    """Share of a scene's sentences that name a spatial relation (:func:`vocab.is_explicit`)."""
    sentences = [s for values in scene["sentences"].values() for s in values]
    return sum(map(V.is_explicit, sentences)) / len(sentences) if sentences else 0.0


def explicit_bins(test: list[dict]) -> dict[str, list[dict]]:
    """``test_explicit_<bin>`` → the test scenes whose explicit ratio falls in that bin."""
    out: dict[str, list[dict]] = {f"test_explicit_{name}": [] for name, _, _ in EXPLICIT_BINS}
    for scene in test:
        ratio = explicit_ratio(scene)
        name = next(n for n, low, high in EXPLICIT_BINS if ratio <= high and (ratio > low or low == 0.0))
        out[f"test_explicit_{name}"].append(scene)
    return out


def tan_split(scenes: list[dict], num_scenes: int) -> dict[str, list[dict]]:
    """The Text2Scene split of kept scenes by ordinal, scaled to a release of ``num_scenes`` scenes."""
    low, high = (bound * num_scenes // TAN_SCENES for bound in TAN_TEST)
    test = [s for s in scenes if low <= s["scene_idx"] < high]
    rest = [s for s in scenes if not low <= s["scene_idx"] < high]
    n_train = min(len(rest), round(TAN_TRAIN * num_scenes / TAN_SCENES))
    return {"train": rest[:n_train], "val": rest[n_train:], "test": test}


def visual_dicts() -> dict[str, dict]:
    """``visual2index`` (1-based) and the 0-based ``index2pose_hb{0,1}`` / ``index2expression_hb{0,1}``."""
    out: dict[str, dict] = {"visual2index": {name: V.clipart_id(name) for name in V.CLIPARTS}}
    for person in ("hb0", "hb1"):
        names = [n for n in V.CLIPARTS if V.prefix(n) == person]
        out[f"index2pose_{person}"] = {str(V.clipart_id(n) - 1): V.pose_expression(n)[0] for n in names}
        out[f"index2expression_{person}"] = {str(V.clipart_id(n) - 1): V.pose_expression(n)[1] for n in names}
    return out


def _write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def prepare_abstract_scenes(root: str | Path, out: str | Path | None = None) -> tuple[dict[str, Path],
                                                                                     PrepareSummary]:
    """Raw release → processed folder (module docstring). Returns ``({name: path}, summary)``; prints nothing.
    ``out`` defaults to ``<root>/processed``. The first problem of the release raises DataError (run
    ``modalbridge data check scenes`` for the full list)."""
    root = Path(root)
    out = Path(out) if out is not None else root / "processed"
    release = read_release(root)
    summary = PrepareSummary()
    scenes = processed_scenes(release, summary)
    if not scenes:
        raise DataError("no scene has both objects and sentences; nothing to prepare", path=release.root)
    outputs: dict[str, list[dict]] = {f"{name}_dataset": part for name, part in split_scenes(scenes).items()}
    outputs.update(ood_subsets(outputs["train_dataset"], outputs["val_dataset"], outputs["test_dataset"]))
    outputs.update(explicit_bins(outputs["test_dataset"]))
    tan = tan_split(scenes, len(release.scenes))
    outputs.update({f"tan/{name}_dataset": part for name, part in tan.items()})
    summary.splits = {name: len(split) for name, split in outputs.items()}
    written = {name: _write_json(out / f"{name}.json", split) for name, split in outputs.items()}
    written.update({f"visual_dicts/{name}": _write_json(out / "visual_dicts" / f"{name}.json", table)
                    for name, table in visual_dicts().items()})
    written["summary"] = _write_json(out / "prepare_summary.json", asdict(summary))
    return written, summary


def prepare_scenes(root: Path, out: Path | None, args=None) -> PreparedFiles:
    """``modalbridge data prepare scenes <root> [--out DIR]``: :func:`prepare_abstract_scenes`, returning the
    written files (``.summary`` holds the counts; also in ``prepare_summary.json``)."""
    written, summary = prepare_abstract_scenes(root, out)
    result = PreparedFiles(written)
    result.summary = summary
    return result


# ============================================================================================ processed JSON
def _validate_scene(scene, path: Path, position: int) -> dict:
    """One processed scene → a normalised copy (``relations`` defaults to ``{}``); DataError naming the file,
    the scene's 0-based position (``row``) and the field."""
    def fail(message: str, name: str) -> DataError:
        return DataError(f"scene at position {position}: {message}", path=path, row=position, field=name)

    if not isinstance(scene, dict):
        raise fail(f"expected an object with elements and sentences, got {type(scene).__name__}", "scene")
    elements = scene.get("elements")
    if not isinstance(elements, list) or not elements:
        raise fail("expected a non-empty list of elements", "elements")
    for j, element in enumerate(elements):
        where = f"elements[{j}]"
        if not isinstance(element, dict):
            raise fail("expected an object {visual_name, x, y, z, flip}", where)
        name = element.get("visual_name")
        if name not in V.CLIPARTS:
            raise fail(f"unknown clip-art {name!r} (expected one of the 126 names of vocab.CLIPARTS)",
                       f"{where}.visual_name")
        for key in ("x", "y"):
            value = element.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise fail(f"expected a number, got {value!r}", f"{where}.{key}")
        if element.get("flip") not in (0, 1):
            raise fail(f"expected 0 or 1, got {element.get('flip')!r}", f"{where}.flip")
    sentences = scene.get("sentences")
    if not isinstance(sentences, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in sentences.values()):
        raise fail('expected {"<sent_idx>_file<k>": ["sentence", …]}', "sentences")
    relations = scene.get("relations", {})
    if not isinstance(relations, dict):
        raise fail('expected {"<sent_idx>_file<k>": ["s=r=o", …]}', "relations")
    return {**scene, "relations": relations}


def read_processed(path: str | Path, *, errors: list[DataError] | None = None) -> list[dict]:
    """A processed split file → its scenes (validated; see :func:`_validate_scene`). With ``errors``, bad
    scenes are reported there and left out."""
    path = Path(path)
    data = read_json_file(path, "processed split file")
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of scenes, got {type(data).__name__}", path=path)
    scenes = []
    for position, scene in enumerate(data):
        try:
            scenes.append(_validate_scene(scene, path, position))
        except DataError as exc:
            _record(errors, exc)
    return scenes


# ============================================================================================ check
def clipart_folder(root: str | Path) -> Path | None:
    """A ``Pngs/`` folder of clip-art images at or near ``root`` (the folder itself, ``root/Pngs``,
    ``root/AbstractScenes_v1.1/Pngs``, or the same beside a processed folder), or ``None``."""
    root = Path(root)
    candidates = [root, root / PNGS_DIR, root / RELEASE_DIR / PNGS_DIR, root.parent / PNGS_DIR,
                  root.parent / RELEASE_DIR / PNGS_DIR]
    for folder in candidates:
        if folder.is_dir() and ((folder / "background.png").is_file() or (folder / V.CLIPARTS[0]).is_file()):
            return folder
    return None


def _processed_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.json"), *folder.glob("tan/*.json")])


def check_scenes(root: str | Path) -> CheckReport:
    """``modalbridge data check scenes <root>``: every problem of a raw release (or, when ``root`` holds no
    ``Scenes_10020.txt`` but processed split files, of a processed folder) and a summary of what was found."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, expected the dataset folder" if root.exists() else "dataset folder not found"
        raise DataError(f"{what} (give AbstractScenes_v1.1/, its parent, or a processed folder)", path=root)
    try:
        release = find_release(root)
    except DataError:
        for folder in (root, root / "processed"):
            if any((folder / f"{s}_dataset.json").is_file() for s in SPLITS):
                return _check_processed(folder)
        raise DataError(f"neither a raw release ({SCENES_FILE} here or in {RELEASE_DIR}/) nor a processed "
                        "folder (train/val/test_dataset.json)", path=root) from None
    return _check_raw(release)


def _check_raw(release_dir: Path) -> CheckReport:
    problems: list[DataError] = []
    release = read_release(release_dir, errors=problems)
    scenes = release.scenes
    used: dict[str, int] = {}  # clip-art → line of the scene header that first uses it
    for scene in scenes:
        for element in scene.elements:
            used.setdefault(element.name, scene.line)
    pngs = release_dir / PNGS_DIR
    summary = {"scenes": len(scenes), "sets": len({s.set_idx for s in scenes}),
               "empty scenes": sum(not s.elements for s in scenes),
               "scenes without sentences": sum(bool(s.elements) and not release.sentences.get(s.ordinal)
                                               for s in scenes),
               "sentences": sum(len(v) for keyed in release.sentences.values() for v in keyed.values()),
               "tuples": sum(len(v) for keyed in release.relations.values() for v in keyed.values()),
               "cliparts": len(used), **release.counts}
    if pngs.is_dir():
        present = {p.name for p in pngs.iterdir()}
        summary["clip-art PNGs"] = sum(name in present for name in V.CLIPARTS)
        missing = [name for name in used if name not in present]
        for name in missing[:MAX_LISTED]:
            message = (f"clip-art {name} is used by the scene at line {used[name]} of {SCENES_FILE} but its "
                       "PNG is missing")
            problems.append(DataError(message, path=pngs / name))
        if len(missing) > MAX_LISTED:
            problems.append(DataError(f"... and {len(missing) - MAX_LISTED} more missing clip-art PNGs",
                                      path=pngs))
        if "background.png" not in present:
            problems.append(DataError("missing (the renderer draws scenes on it)",
                                      path=pngs / "background.png"))
    return CheckReport(problems, summary)


def _check_processed(folder: Path) -> CheckReport:
    problems: list[DataError] = []
    summary: dict[str, int] = {"split files": 0, **{f"{name} scenes": 0 for name in SPLITS}, "sentences": 0}
    cliparts: set[str] = set()
    for path in _processed_files(folder):
        if path.name == "prepare_summary.json":
            continue
        try:
            scenes = read_processed(path, errors=problems)
        except DataError as exc:
            problems.append(exc)
            continue
        summary["split files"] += 1
        name = path.relative_to(folder).with_suffix("").as_posix().removesuffix("_dataset")
        if name in SPLITS:
            summary[f"{name} scenes"] = len(scenes)
            summary["sentences"] += sum(
                len(v) for s in scenes for v in s["sentences"].values())
            cliparts.update(e["visual_name"] for s in scenes for e in s["elements"])
    for split in SPLITS:
        if not (folder / f"{split}_dataset.json").is_file():
            problems.append(DataError(f"missing the {split} split", path=folder / f"{split}_dataset.json"))
    summary["cliparts"] = len(cliparts)
    table = folder / "visual_dicts" / "visual2index.json"
    if table.is_file():
        try:
            found = json.loads(table.read_text(encoding="utf-8"))
            if found != visual_dicts()["visual2index"]:
                problems.append(DataError("does not map the 126 clip-arts to 1..126 in natural-sort order "
                                          "(vocab.CLIPARTS); ids would not match the models'", path=table))
        except json.JSONDecodeError as exc:
            problems.append(DataError(f"not valid JSON: {exc.msg}", path=table, row=exc.lineno))
    return CheckReport(problems, summary)
