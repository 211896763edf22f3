"""The SIO glossary: which VOXEL-MAN "inner organs" objects become atlas organs, under which names and aliases
(spec ``text2atlas.md`` §2.1), and the functional organ groups of the held-out-organ IGR metric (§6).

:func:`apply_glossary` turns the raw class list of ``objectlist.txt`` (``{object name: [label values]}``, file
order) into the atlas glossary in five steps, each driven by a field of :class:`Glossary`:

1. **merges** — the parts of each group (matched case-insensitively; parts absent from the list are ignored)
   become one organ owning all their labels; its aliases are the new name and the part names. Merged organs
   are appended after the untouched objects, in the order of ``merges``.
2. **drops** — objects whose name matches one of the ``drop`` regexes (case-insensitive, whole name) are
   removed; with ``drop_right_copies``, so is every ``right X`` whose ``left X`` (or ``X``) is also listed:
   the right-side copy of a bilateral organ. A ``right X`` without a counterpart stays.
3. **renames** — ``old → new``; the renamed organ moves to the end (in ``renames`` order) and its old name is
   replaced by the new one among its aliases.
4. **aliases** — ``extra_aliases`` are appended, ``alias_overrides`` replace an organ's list outright,
   ``remove_aliases`` are taken out; optional UMLS aliases (``umls=``, lower-cased) are added.
5. **clean-up** — every alias goes through :func:`clean_alias`; duplicates are removed, first one kept.

The resulting order is the reference's (``create_organ_dicts.py`` builds its dicts by deletion and
re-insertion): kept objects in file order, then merged organs, then renamed ones. The organ index of the
corpus records and the models follows it.

:data:`SIO_GLOSSARY` encodes the reference's rules: bones, vertebrae, intervertebral discs, ribs, limb bones,
muscles and skin, grey/white matter, ``unclassified *``, markers, sternum, sacrum, coccyx and
costal/clavicular cartilages; right-side copies; trunk muscles (psoas, iliacus, obliques, rectus and
transversus abdominis, obturator internus, ischiocavernosus, pelvic diaphragm, rectus sheath); scrotum;
visceral fat; large vessels (aorta parts, venae cavae, every vein, pulmonary trunk/arteries); the cystic duct.
Merges: stomach, colon, penis, trachea and kidney (= left kidney + left renal medulla); renames: left
atrium/ventricle/kidney/lung lose "left", ``duodenum (retroperitoneal part)`` → duodenum. The UMLS step of the
reference (scispacy, ~1 GB of knowledge base downloaded at run time) is not run here: pass its result as
``umls=`` if you have it.

Deviation: the reference's clean-up regexes also cut "nos"/"structure" off the end of longer words ("diagnos"
→ "diag"); :func:`clean_alias` only removes whole words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["FUNCTIONAL_GROUPS", "SIO_GLOSSARY", "Glossary", "apply_glossary", "clean_alias",
           "functional_groups_for", "group_of"]


@dataclass(frozen=True)
class Glossary:
    """Rules turning raw atlas objects into organs (see the module docstring for the order they apply in).

    ``drop``: regexes matched case-insensitively against the whole (stripped) object name. ``merges``: new
    organ → part names. ``renames``: old → new name. ``extra_aliases``: organ (final name) → aliases appended.
    ``alias_overrides``: organ → its complete alias list. ``remove_aliases``: organ → aliases taken out.
    ``drop_right_copies``: drop ``right X`` when ``left X`` or ``X`` is also an object.
    """

    drop: tuple[str, ...] = ()
    merges: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    renames: Mapping[str, str] = field(default_factory=dict)
    extra_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alias_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    remove_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    drop_right_copies: bool = False

    def dropped(self, name: str) -> bool:
        """Whether a drop regex matches the whole name (case-insensitive)."""
        return any(re.fullmatch(rx, name.strip(), flags=re.IGNORECASE) for rx in self.drop)


_BONES = (
    r"bones? of .*", r".*\bvertebra\b.*", r"intervertebral discs?\b.*", r"(left |right )?ribs?\b.*",
    r"(left |right )?(ulna|radius|humerus|scapula|clavicle|femur|tibia|fibula|patella|hip bone)",
    r"coccyx", r"sternum", r"sacrum", r"skull", r"mandible",
)
_TISSUES = (
    r"muscles? of the .*", r"skin\b.*", r".*\bskin", r"gr[ae]y matter", r"white matter", r"unclassified\b.*",
    r"markers?\b.*", r".*\bcostal cartilages?\b.*", r".*\bclavicular cartilages?\b.*",
)
_TRUNK_MUSCLES = (
    r"(left |right )?(psoas|iliacus|external oblique|internal oblique|rectus abdominis|transversus abdominis"
    r"|obturator internus)", r"ischiocavernosus", r"pelvic diaphragm", r"rectus sheath",
)
_OTHER = (r"scrotum", r"visceral fat", r"cystic duct")
_VESSELS = (
    r".*\baorta\b.*", r".*\bvenae? cavae?\b.*", r".*\bveins?\b.*", r"pulmonary trunk",
    r".*\barter(y|ies)\b.*",
)

#: the reference's SIO rules (card §2.1); organ names of the VOXEL-MAN object list are lower-case phrases
SIO_GLOSSARY = Glossary(
    drop=_BONES + _TISSUES + _TRUNK_MUSCLES + _OTHER + _VESSELS,
    merges={
        "stomach": ("fundus of stomach", "stomach fundus", "greater curvature", "lesser curvature",
                    "body of stomach", "cardia", "stomach"),
        "colon": ("ascending colon", "descending colon", "transverse colon", "sigmoid colon",
                  "left colic flexure", "right colic flexure", "colon"),
        "penis": ("penis", "corpus cavernosum penis", "corpus spongiosum penis", "corpus cavernosum",
                  "corpus spongiosum"),
        "trachea": ("trachea", "trachea lumen"),
        "left kidney": ("left kidney", "left renal medulla"),
    },
    renames={"left ventricle": "ventricle", "left atrium": "atrium", "left kidney": "kidney",
             "left lung": "lung", "duodenum (retroperitoneal part)": "duodenum"},
    extra_aliases={
        # "intestine, small": MeSH's inverted heading (ours; the reference got MeSH forms from UMLS aliases)
        "small intestine": ("jejunum", "ileum", "intestine, small"), "atrium": ("heart atria",),
        "ventricle": ("heart ventricles",), "caecum": ("cecum",), "seminal gland": ("seminal vesicles",),
        "bronchi": ("bronchus",),
        "colon": ("colon, ascending", "colon, descending", "colon, transverse", "colon, sigmoid",
                  "hepatic flexure", "splenic flexure", "colic flexure"),
    },
    alias_overrides={"kidney": ("kidney", "renal medulla"), "ampulla": ("ampulla", "ampulla of vater")},
    remove_aliases={"colon": ("left colic flexure", "right colic flexure")},
    drop_right_copies=True,
)

#: functional groups of the IGR metric (card §6). respiratory, digestive-solid and digestive-hollow follow the
#: reference's hints (we add the oesophagus to the hollow digestive organs); cardiac, urinary and genital are
#: ours: the heart's chambers and walls; the kidney and the urinary tract; the male genital organs. Names
#: absent from an atlas are ignored (:func:`functional_groups_for`).
FUNCTIONAL_GROUPS: dict[str, list[str]] = {
    "respiratory": ["bronchi", "diaphragm", "trachea", "lung", "larynx"],
    "digestive-solid": ["gallbladder", "liver", "pancreas"],
    "digestive-hollow": ["esophagus", "oesophagus", "duodenum", "stomach", "small intestine", "colon",
                         "rectum", "caecum", "ampulla"],
    "cardiac": ["atrium", "ventricle", "myocardium", "pericardium"],
    "urinary": ["kidney", "ureter", "urinary bladder", "urethra"],
    "genital": ["seminal gland", "penis", "prostate", "testis", "testicle", "vas deferens"],
}


def functional_groups_for(organs: Sequence[str],
                          groups: Mapping[str, Sequence[str]] = FUNCTIONAL_GROUPS) -> dict[str, list[str]]:
    """``groups`` restricted to the given organ names (order of ``organs``); empty groups are left out."""
    out = {g: [o for o in organs if o in set(members)] for g, members in groups.items()}
    return {g: members for g, members in out.items() if members}


def group_of(organ: str, groups: Mapping[str, Sequence[str]] = FUNCTIONAL_GROUPS) -> str | None:
    """The name of the functional group holding ``organ``, or None."""
    return next((g for g, members in groups.items() if organ in members), None)


_BRACKETS = re.compile(r"[(\[][^)\]]*[)\]]")
_CUTS = (re.compile(r"(,\s*)?\bnos$", re.IGNORECASE), re.compile(r"\bstructure$", re.IGNORECASE),
         re.compile(r"\bstructure of\b", re.IGNORECASE))


def clean_alias(alias: str) -> str | None:
    """The reference's alias clean-up, in its order: drop bracketed text, a trailing ``", nos"``, a trailing
    "structure" and "structure of" (whole words, any case); then None for an alias containing ">" or a digit,
    or left empty. Case is kept.

    >>> clean_alias("Structure of kidney"), clean_alias("kidney, NOS (body structure)"), clean_alias("T10")
    ('kidney', 'kidney', None)
    """
    text = _BRACKETS.sub("", alias).strip()
    for rx in _CUTS:
        text = re.sub(r"\s+", " ", rx.sub("", text)).strip()
    if ">" in text or re.search(r"\d", text):
        return None
    text = text.strip(" ,")
    return text or None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def apply_glossary(raw: Mapping[str, Sequence[int]], glossary: Glossary,
                   umls: Mapping[str, Sequence[str]] | None = None
                   ) -> tuple[list[str], dict[str, list[int]], dict[str, list[str]]]:
    """``(organs, organ_labels, aliases)`` from the raw class list ``{object name: [label values]}`` (file
    order). ``umls``: optional ``{organ: [aliases]}`` (e.g. a shipped ``organ2alias.json``), lower-cased and
    added before the clean-up. Names keep the case of the object list; matching is case-insensitive."""
    by_lower = {name.lower(): name for name in raw}
    labels: dict[str, list[int]] = {name: [int(v) for v in values] for name, values in raw.items()}
    aliases: dict[str, list[str]] = {name: [name] for name in raw}

    for new, parts in glossary.merges.items():
        found = [by_lower[p.lower()] for p in parts if p.lower() in by_lower]
        found = _unique(name for name in found if name in labels)
        if not found:
            continue
        merged_labels = _unique(v for p in found for v in labels[p])
        merged_aliases = _unique([new, *(a for p in found for a in aliases[p])])
        for p in found:
            del labels[p], aliases[p]
        labels[new], aliases[new] = merged_labels, merged_aliases

    lower_raw = set(by_lower)
    for name in list(labels):
        low = name.lower()
        right_copy = (glossary.drop_right_copies and low.startswith("right ")
                      and ({f"left {low[6:]}", low[6:]} & lower_raw))
        if name not in glossary.merges and (glossary.dropped(name) or right_copy):
            del labels[name], aliases[name]

    lower_now = {name.lower(): name for name in labels}
    for old, new in glossary.renames.items():
        name = lower_now.get(old.lower())
        if name is None:
            continue
        values, names = labels.pop(name), aliases.pop(name)
        labels[new] = values
        aliases[new] = _unique(new if a == name else a for a in names)
        lower_now = {n.lower(): n for n in labels}

    for organ in labels:
        names = list(glossary.alias_overrides.get(organ, aliases[organ]))
        names += glossary.extra_aliases.get(organ, ())
        if umls and organ in umls:
            names += [a.lower() for a in umls[organ]]
        removed = set(glossary.remove_aliases.get(organ, ()))
        cleaned = (clean_alias(a) for a in names if a not in removed)
        aliases[organ] = _unique(a for a in cleaned if a)
    organs = list(labels)
    return organs, {o: labels[o] for o in organs}, {o: aliases[o] for o in organs}


#: the keys of a glossary file (``--glossary``): the :class:`Glossary` fields
GLOSSARY_FIELDS = ("drop", "merges", "renames", "extra_aliases", "alias_overrides", "remove_aliases",
                   "drop_right_copies")


def load_glossary(path, base: Glossary | None = None) -> Glossary:
    """A glossary from a JSON file (``modalbridge data prepare atlas --glossary rules.json``): its keys replace
    those of ``base`` (default :data:`SIO_GLOSSARY`), e.g. ``{"merges": {"heart": ["left atrium", "left
    ventricle"]}, "renames": {"left lung": "lung"}, "drop": ["aorta.*"]}``; ``"extend": true`` adds to ``base``'s
    lists and maps instead of replacing them."""
    import dataclasses

    from modalbridge.core.errors import DataError
    from modalbridge.io.records import read_json_file

    data = read_json_file(path, "glossary file")
    if not isinstance(data, dict):
        raise DataError("a glossary file holds one JSON object with the keys " + ", ".join(GLOSSARY_FIELDS),
                        path=path)
    extend = bool(data.pop("extend", False))
    unknown = sorted(set(data) - set(GLOSSARY_FIELDS))
    if unknown:
        raise DataError(f"unknown glossary key(s) {unknown}; known: {', '.join(GLOSSARY_FIELDS)} (and extend)",
                        path=path, field=unknown[0])
    base = base if base is not None else SIO_GLOSSARY
    values = {}
    for key, value in data.items():
        current = getattr(base, key)
        if key == "drop":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError("expected a list of regular expressions", path=path, field=key)
            values[key] = (*current, *value) if extend else tuple(value)
        elif key == "drop_right_copies":
            values[key] = bool(value)
        else:
            if not isinstance(value, dict):
                raise DataError("expected an object {organ: …}", path=path, field=key)
            value = {k: (v if key == "renames" else tuple(v)) for k, v in value.items()}
            values[key] = {**current, **value} if extend else value
    return dataclasses.replace(base, **values)
