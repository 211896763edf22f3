"""The embedded world of the fact-linking task (spec ``fact_linking.md`` §9): a small reference KG in the
``wikidata_processed.json`` shape and FaLB-style surface-fact files (``modalbridge world facts``).

:func:`facts_world` builds ``<worlds>/facts-<seed>/`` once (seconds; :func:`write_facts` writes the same files
into any folder):

* ``kg/wikidata_processed.json`` — one JSON object ``{"Q…": {"label", "description", "aliases"}, "P…": {…}}``;
* ``falb/<facet>.json`` — one JSON array of records ``{"sentence", "extraction", "fact_ids", "org_extraction"}``
  per facet (:data:`FALB_FILES`);
* ``world.json`` — sizes, per-entity types, predicate signatures and paraphrase pools, the ids held out for the
  inductive and out-of-KG tests, the polysemous surface forms.

*The KG.* Real part: the UMLS semantic network as bundled in PyKEEN's wheel (``pykeen/datasets/umls/*.txt``,
read as plain tab-separated files, PyKEEN is not imported): 135 semantic types become entities (label = the
name with ``_`` → space, description "semantic type of the UMLS semantic network, a kind of <its deepest
``isa`` parent>", aliases: a 4-letter abbreviation in the UMLS style (``aapp``, ``acab``) and the slash form of
"X or Y" names), 46 relations become predicates (``isa`` → "is a"). Generated part (invented names, so that a
pretrained encoder knows nothing about them): ≈ 700 people of 11 occupations, cities and countries, sports
teams with their leagues, universities, companies, bands, novels, paintings, films, albums, awards and fields,
with aliases (initials "M. J.", "M. Jordan", nicknames, "the Hawks", "Hawks", acronyms "VBL", "AIT", titles
without their article; film aliases with a year, which the reference alias filter drops), and descriptions
"<type> born in <city>", "football club based in <city>", "novel by <author>" … — the type and one related
entity, which is what a sentence can use to disambiguate. *Polysemy on purpose*: people sharing a full name
(different occupations or birthplaces), "Michael I. Jordan" with the alias "Michael Jordan" beside a
"Michael Jordan", cities of the same name in two countries, football clubs with the alias "<city>", novels
titled like a city and films titled like a novel, shared team nicknames, and bands named like UMLS types
("Virus" vs the semantic type "virus"); ≈ 100 KG-only people (no facts: the Large-KG-vs-BRKG difference).
Out-of-KG part: a separate maritime domain (architects, buildings, ships, port cities, shipping companies, 5
predicates) whose entities and predicates occur only in ``test_out_of_kg*.json``.

*The facts.* UMLS triples (:data:`UMLS_FACTS` sampled from the 6,529) and generated facts that respect the
predicates' type signatures (``world.json["signatures"]``). Every fact gives one or two records: a sentence from
templates that contains the subject and object mentions verbatim and word-bounded (their first such
occurrence is the mention itself, so the model's mention-into-sentence substitution hits the right place; a
mention inside the other — "inorganic chemical is a chemical" — takes an alias, "cvst is a chemical", and the
few facts without such a pair are dropped), the
OIE triple (mention, relation paraphrase, mention) and the gold ids. Mentions are the label (80 %) or an alias;
relations are drawn from each predicate's paraphrase pool (Zipf-like, a few strings shared by two predicates:
"is by", "plays in", "is part of", "comes from" …); for predicates with ≥ 4 paraphrases the last one never
occurs in training and stands for 15 % of the val/test relations (:data:`HELDOUT_P`). A polysemous mention
always gets a disambiguating cue in its sentence (its type — "the computer scientist Michael Jordan" — or its
description's related entity — "Michael Jordan (born in Ashford)" — whichever its namesakes do not share, never
the fact's other slot); other mentions get one 30 % of the time.

*Splits* (card §2.2): ≈ 8 % of the generated entities (not countries, leagues, fields, awards) and 6 UMLS types are
held out of training, half for val and half for test (at most :data:`INDUCTIVE_CAP` facts each); the other facts
go 80/7/13 to train/val/test, and a val/test fact with an entity or predicate that no training fact has moves to
train — so ``*_transductive`` facts use only training ids (triple never in train) and ``*_inductive`` facts have
an entity outside all training facts. ``*_no_aliases`` = original extractions; ``train_full``, ``val_full``,
``test_full`` and the facets add the alias-augmented records (card §2.1: every (subject alias or original) ×
(object alias or original) combination except the original pair, aliases passing the reference filter, relation
and ``fact_ids`` unchanged). ``*_polysemous``: records whose subject or object mention, compared
case-insensitively with every KG label and alias, matches ≥ 2 KG entities; ``*_monosemous`` the rest.
``test_out_of_kg*.json``: facts of the maritime domain — all their golds are in the KG file (the "inside"
scenario) and outside every other file; the "outside" scenario removes ``world.json["ookg_entities"]`` and
``["ookg_predicates"]`` from the index.

*Seed 0* (≈ 1 s to build): 1,737 entities (135 UMLS, 1,507 generated of which 131 are in no fact, 95 out-of-KG)
and 73 predicates (46 UMLS, 22 generated, 5 out-of-KG); 224 polysemous surface forms; 111 held-out (inductive)
entities. Records (originals in brackets): train_full 13,299 (4,352), val_full 1,940, test_full 2,757 (902) =
test_transductive 2,118 + test_inductive 639 (215) = test_polysemous 733 + test_monosemous 2,024,
test_out_of_kg 346 (173). Model-free checks (tests/tasks/facts/test_world.py): a char-3-gram TF-IDF linker over
labels + aliases links 100 % of the monosemous no-alias test subjects and objects but only ≈ 33 % of the
relations (6 % of the relation strings equal the label); over labels alone it links ≈ 37 % of the aliased
subjects; a bag-of-words context oracle picks the right namesake for ≈ 98 % of the polysemous slots (the first
namesake: 41 %); its top-5 entropy separates in-KG from out-of-KG mentions (balanced accuracy ≈ 0.99).
"""

from __future__ import annotations

import importlib.util
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.core.paths import worlds_dir
from modalbridge.core.worlds import build_world

__all__ = ["FALB_FILES", "HELDOUT_P", "INDUCTIVE_CAP", "KG_FILE", "UMLS_FACTS", "UMLS_FILES", "VERSION",
           "alias_ok", "facts_world", "mention_in_sentence", "read_umls", "surface_key", "umls_dir",
           "write_facts"]

VERSION = 1
KG_FILE = "kg/wikidata_processed.json"
UMLS_FILES = ("train.txt", "valid.txt", "test.txt")
#: the facet files written under ``falb/`` (each one JSON array of records)
FALB_FILES = ("train_full", "train_full_no_aliases", "val_full", "val_transductive", "val_inductive",
              "val_polysemous", "val_monosemous", "test_full", "test_full_no_aliases", "test_transductive",
              "test_inductive", "test_inductive_no_aliases", "test_polysemous", "test_monosemous",
              "test_out_of_kg", "test_out_of_kg_no_aliases")
UMLS_FACTS = 1500  # UMLS triples turned into facts (of 6,529)
INDUCTIVE_CAP = 6  # facts kept per held-out (inductive) entity
HELDOUT_P = 0.15  # share of val/test relations written with a predicate's never-trained paraphrase
SPLIT_P = (0.80, 0.07, 0.13)  # train / val / test share of the facts between non-held-out entities
LABEL_P = 0.8  # an original mention is the label (else an alias)
CUE_P = 0.3  # a monosemous mention gets a type or related-entity cue
SECOND_RECORD_P = 0.3  # a fact gets a second record (another paraphrase and template)


# ============================================================================================== UMLS files
def umls_dir() -> Path:
    """The UMLS folder inside the installed PyKEEN package (found without importing PyKEEN)."""
    spec = importlib.util.find_spec("pykeen")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the facts world needs the UMLS triples bundled with PyKEEN: pip install pykeen")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "umls"
    missing = [f for f in UMLS_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: PyKEEN's UMLS data lacks {', '.join(missing)}")
    return folder


def read_umls(folder: Path | None = None) -> list[tuple[str, str, str]]:
    """The UMLS triples ``(head, relation, tail)`` of :data:`UMLS_FILES` (tab-separated), de-duplicated and
    sorted. A line without exactly three non-empty fields → :class:`DataError` naming file and line."""
    folder = umls_dir() if folder is None else Path(folder)
    triples = set()
    for name in UMLS_FILES:
        path = folder / name
        for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise DataError(f"expected 3 tab-separated fields, got {line!r}", path=path, row=row)
            triples.add(tuple(p.strip() for p in parts))
    return sorted(triples)


# ======================================================================================== text helpers
_ALIAS_PUNCT = set(string.punctuation)


def alias_ok(alias: str) -> bool:
    """The reference alias filter (card §2.1): letters, whitespace and ASCII punctuation only (aliases with digits
    are dropped), and short (< 30 words, our stand-in for < 30 distilroberta tokens)."""
    return bool(alias.strip()) and all(c.isalpha() or c.isspace() or c in _ALIAS_PUNCT for c in alias) \
        and len(alias.split()) < 30


def surface_key(text: str) -> str:
    """What polysemy compares: lower-cased, whitespace collapsed."""
    return " ".join(text.lower().split())


@lru_cache(maxsize=65536)
def _mention_pattern(mention: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(mention) + r"(?:s|es)?(?!\w)")


def mention_in_sentence(mention: str, sentence: str) -> re.Match | None:
    """First word-bounded occurrence of ``mention`` in ``sentence`` (optional "s"/"es" suffix, card §3 input
    format), case-sensitive."""
    return _mention_pattern(mention).search(sentence)


def _compatible(subject: str, obj: str) -> bool:
    """Two mentions a sentence can hold so that each one's first word-bounded occurrence is itself: different, and
    neither inside the other ("chemical" in "inorganic chemical")."""
    return surface_key(subject) != surface_key(obj) and mention_in_sentence(subject, obj) is None \
        and mention_in_sentence(obj, subject) is None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ================================================================================================ pools
FIRST = (("Michael", "Mike"), ("William", "Bill"), ("Robert", "Bob"), ("James", "Jim"), ("Elizabeth", "Liz"),
         ("Katherine", "Kate"), ("Margaret", "Maggie"), ("Thomas", "Tom"), ("Richard", "Rick"), ("Jennifer", "Jen"),
         ("Daniel", "Dan"), ("Patricia", "Pat"), ("Alexander", "Alex"), ("Christopher", "Chris"),
         ("Samuel", "Sam"), ("Victoria", "Vicky"), ("Benjamin", "Ben"), ("Jonathan", "Jon"), ("Rebecca", "Becky"),
         ("Nicholas", "Nick"), ("Anna", ""), ("Laura", ""), ("Paul", ""), ("Maria", ""), ("Peter", "Pete"),
         ("Sophie", ""), ("Oliver", "Ollie"), ("Helen", ""), ("George", ""), ("Clara", ""), ("Henry", "Harry"),
         ("Irene", ""), ("Lucas", ""), ("Nora", ""), ("Edward", "Ed"), ("Grace", ""), ("Martin", ""),
         ("Ruth", ""), ("Frederick", "Fred"), ("Eleanor", "Ellie"), ("Hugo", ""), ("Ingrid", ""), ("Jasper", ""),
         ("Theodore", "Teddy"), ("Adrian", ""), ("Beatrice", "Bea"), ("Camille", ""), ("Dominic", "Dom"),
         ("Evelyn", "Evie"), ("Felix", ""), ("Harriet", "Hattie"), ("Isaac", ""), ("Josephine", "Josie"),
         ("Leonard", "Leo"), ("Miriam", ""), ("Nathaniel", "Nate"), ("Olivia", "Liv"), ("Rosalind", "Ros"),
         ("Simon", ""), ("Ursula", ""))
LAST = ("Jordan", "Abbott", "Barlow", "Calloway", "Dempsey", "Ellison", "Fairbanks", "Garrity", "Holloway",
        "Iverson", "Jessop", "Kendrick", "Lattimore", "Mercer", "Norwood", "Ogden", "Prescott", "Quinlan",
        "Radcliffe", "Sutherland", "Thackeray", "Underhill", "Vance", "Whitlock", "Yardley", "Ashcroft",
        "Blackwood", "Cartwright", "Dunmore", "Everly", "Fitzroy", "Gallagher", "Hargreaves", "Ingram", "Jarvis",
        "Kingsley", "Lockhart", "Merriweather", "Nightingale", "Oakley", "Pemberton", "Rutherford", "Sinclair",
        "Tennant", "Upton", "Vickers", "Wainwright", "Beckett", "Carrington", "Delacroix", "Eastwood",
        "Fenwick", "Goodwin", "Hawthorne", "Kessler", "Lindqvist", "Marchetti", "Novak", "Okafor", "Petrov",
        "Rosenthal", "Salazar", "Takahashi", "Varga", "Weissman", "Zielinski", "Brennan", "Castellano",
        "Draper", "Ellwood", "Forsyth", "Grimaldi", "Hollis", "Keating", "Larkin", "Moreau", "Nolan", "Orton",
        "Pryce", "Redding", "Strand", "Tolliver", "Vasquez", "Winslow", "Aldridge", "Bancroft", "Crowley",
        "Driscoll", "Emberton", "Faraday", "Gresham", "Halloran", "Ibsen", "Langford", "Mallory", "Pickering")
MIDDLE = ("Lee", "Morgan", "Avery", "Quinn", "Reese", "Blake", "Ellis", "Jamie", "Rowan", "Sidney")  # any gender
CITY_PRE = ("Ash", "Bright", "Cold", "Dun", "Elm", "Fair", "Glen", "High", "Iron", "King", "Lang", "Mill",
            "North", "Oak", "Red", "Silver", "Stone", "Thorn", "West", "Wolf", "Amber", "Birch", "Clay", "Deer",
            "East", "Fox", "Green", "Hart", "Lake", "Marsh")
CITY_SUF = ("ford", "ton", "bury", "ham", "field", "wick", "dale", "stead", "bridge", "moor", "well", "by",
            "chester", "worth", "ley", "combe")
COUNTRY_ROOT = ("Valdor", "Norv", "Castel", "Merid", "Ostrav", "Brynn", "Kalen", "Sardov", "Tavar", "Lumen",
                "Quell", "Drav", "Estran", "Falken", "Gorvan", "Hesper", "Ister", "Jorvik", "Karst", "Velden")
COUNTRY_END = ("ia", "land", "ova", "istan", "ary")
COUNTRY_FORM = ("Republic of", "Kingdom of", "Federation of", "Commonwealth of")
MASCOTS = ("Hawks", "Bears", "Comets", "Wolves", "Titans", "Rockets", "Falcons", "Storm", "Giants", "Pioneers",
           "Raiders", "Lions", "Stallions", "Hornets", "Kings", "Owls")
CLUB_SUF = ("F.C.", "United", "Athletic", "Rovers", "Wanderers", "Albion")
INDUSTRY = (("Dynamics", "engineering"), ("Foods", "food"), ("Pharmaceuticals", "pharmaceutical"),
            ("Motors", "automotive"), ("Systems", "software"), ("Airlines", "airline"), ("Media", "media"),
            ("Energy", "energy"), ("Textiles", "textile"), ("Bank", "banking"))
ADJ = ("Silver", "Electric", "Velvet", "Crimson", "Hollow", "Midnight", "Golden", "Wild", "Paper", "Neon",
       "Quiet", "Broken", "Distant", "Burning", "Frozen", "Secret")
NOUN = ("Garden", "Winter", "Shadow", "Song", "House", "River", "Letter", "Silence", "Map", "Harvest", "Tower",
        "Voyage", "Orchard", "Lighthouse", "Mirror", "Lantern", "Sparrow", "Engine", "Arrow", "Ghost")
#: bands named like UMLS semantic types (cross-domain polysemy, case-insensitive)
UMLS_BANDS = ("Virus", "Enzyme", "Fungus", "Hormone", "Reptile")
FIELDS = (("machine learning", "computer science", ("ML",)), ("computer vision", "computer science", ("CV",)),
          ("natural language processing", "computer science", ("NLP",)),
          ("cryptography", "computer science", ()), ("database systems", "computer science", ()),
          ("robotics", "computer science", ()), ("quantum optics", "physics", ()),
          ("astrophysics", "physics", ()), ("particle physics", "physics", ()),
          ("condensed matter physics", "physics", ("CMP",)), ("fluid dynamics", "physics", ()),
          ("number theory", "mathematics", ()), ("topology", "mathematics", ()),
          ("graph theory", "mathematics", ()), ("statistics", "mathematics", ("stats",)),
          ("algebraic geometry", "mathematics", ()))
#: person type → (count, discipline of its awards/fields, sport or None)
PERSON_TYPES = {"basketball player": (80, "sport", "basketball"), "football player": (80, "sport", "football"),
                "computer scientist": (80, "computer science", None), "physicist": (60, "physics", None),
                "mathematician": (50, "mathematics", None), "painter": (60, "painting", None),
                "novelist": (80, "literature", None), "film director": (50, "film", None),
                "singer": (60, "music", None), "politician": (50, "public service", None),
                "businessperson": (50, "business", None)}
SCIENTISTS = ("computer scientist", "physicist", "mathematician")
KG_ONLY_PEOPLE = 100

# ---------------------------------------------------------------------------------------------- out-of-KG
OOKG_FIRST = ("Aurelio", "Brigitta", "Casimir", "Dagny", "Ewald", "Fenella", "Gideon", "Hortense", "Ignatius",
              "Jolanda", "Konstantin", "Ludmila", "Mortimer", "Ottilie", "Percival", "Quentin", "Rosamund",
              "Sigurd", "Thaddeus", "Wilhelmina")
OOKG_LAST = ("Abernathy", "Bjornstad", "Castellanos", "Drummond", "Eskildsen", "Featherstone", "Gulbrandsen",
             "Hightower", "Iwaszkiewicz", "Jaroszewski", "Krumholz", "Lindemann", "Montgomery", "Nordahl",
             "Ostergaard", "Penhaligon", "Quarrington", "Rasmussen", "Steinbach", "Trevelyan")
PORT_PRE = ("Salt", "Gull", "Anchor", "Tide", "Coral", "Reef", "Kelp", "Brine", "Pearl", "Shell")
PORT_SUF = ("mere", "holm", "strand", "quay", "sound")
SHIPS = ("Albatross", "Cormorant", "Kestrel", "Osprey", "Petrel", "Tern", "Gannet", "Heron", "Plover", "Skua",
         "Fulmar", "Puffin", "Shearwater", "Guillemot", "Merganser", "Eider", "Grebe", "Curlew", "Dunlin",
         "Sanderling", "Turnstone", "Avocet", "Godwit", "Whimbrel", "Knot", "Bittern", "Egret", "Ibis",
         "Pelican", "Frigatebird")
BUILDING_WORDS = ("Pavilion", "Exchange", "Customs House", "Lighthouse Keep", "Harbour Hall", "Rotunda")
SHIPPING = ("Meridian", "Polaris", "Trident", "Boreal", "Zephyr", "Halcyon", "Nautilus", "Corsair", "Aegir",
            "Thalassa")

# ------------------------------------------------------------------------------------------- predicates
#: key → (label, description, aliases, paraphrases, subject types, object types); the paraphrase pools are what
#: OIE relation strings look like (the first is the most frequent; with ≥ 4 the last is val/test-only)
PREDICATES: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "born": ("place of birth", "most specific known birth location of a person", ("birthplace",),
             ("was born in", "is a native of", "hails from", "comes from", "was born and raised in"),
             tuple(PERSON_TYPES), ("city",)),
    "citizen": ("country of citizenship", "the object is a country that recognizes the subject as its citizen",
                ("citizenship",), ("is a citizen of", "holds citizenship of", "comes from", "is a national of"),
                tuple(PERSON_TYPES), ("country",)),
    "educated": ("educated at", "educational institution attended by the subject", ("alma mater",),
                 ("studied at", "graduated from", "was educated at", "attended", "is an alumnus of"),
                 tuple(PERSON_TYPES), ("university",)),
    "team": ("member of sports team", "sports team or club that the subject represents or represented",
             ("team",), ("played for", "was a player of", "joined", "plays for", "signed with", "suited up for"),
             ("basketball player", "football player"), ("basketball team", "football club")),
    "employer": ("employer", "person or organization for which the subject works or worked", ("workplace",),
                 ("works for", "worked at", "is employed by", "joined", "was hired by"),
                 SCIENTISTS + ("politician", "businessperson"), ("university", "company")),
    "field": ("field of work", "specialization of a person or organization", ("domain of work",),
              ("works in", "specializes in", "researches", "contributed to", "is known for work on"),
              SCIENTISTS, ("field",)),
    "advisor": ("doctoral advisor", "person who supervised the doctorate of the subject", ("supervisor",),
                ("was a doctoral student of", "did a PhD under", "was supervised by", "wrote a thesis under"),
                SCIENTISTS, SCIENTISTS),
    "spouse": ("spouse", "the subject has the object as their husband or wife", ("wife", "husband"),
               ("is married to", "married", "wed", "is the spouse of", "tied the knot with"),
               tuple(PERSON_TYPES), tuple(PERSON_TYPES)),
    "award": ("award received", "award or recognition received by a person or creative work", ("honours",),
              ("received", "won", "was awarded", "was honoured with", "earned"), tuple(PERSON_TYPES), ("award",)),
    "author": ("author", "main creator of a written work", ("writer",),
               ("was written by", "is a novel by", "is by", "was penned by", "was authored by"),
               ("novel",), ("novelist",)),
    "creator": ("creator", "maker of this creative work", ("artist",),
                ("was painted by", "is a work of", "is by", "was created by"), ("painting",), ("painter",)),
    "director": ("director", "director of a film or play", ("directed by",),
                 ("was directed by", "is a film by", "was helmed by", "is directed by"), ("film",),
                 ("film director",)),
    "performer": ("performer", "performer involved in the performance or recording of a work", ("artist",),
                  ("is an album by", "was recorded by", "is by", "was released by"), ("album",),
                  ("singer", "band")),
    "member": ("member of", "organization or club to which the subject belongs", ("part of",),
               ("is a member of", "plays in", "sings in", "is part of", "fronts"), ("singer",), ("band",)),
    "country": ("country", "sovereign state that this item is in", ("land",),
                ("is located in", "lies in", "is a city in", "is situated in", "is in"), ("city",), ("country",)),
    "hq": ("headquarters location", "city where an organization's headquarters is or has been situated",
           ("head office",), ("is based in", "is headquartered in", "has its headquarters in", "operates from"),
           ("company", "band"), ("city",)),
    "league": ("league", "league in which a team or player plays", ("sports league",),
               ("competes in", "plays in", "is a member of", "participates in"),
               ("basketball team", "football club"), ("league",)),
    "founder": ("founded by", "founder or co-founder of this organization", ("founder",),
                ("was founded by", "was established by", "was started by", "was set up by"),
                ("company", "university"), ("businessperson", "politician")),
    "capital": ("capital", "seat of government of a country", ("capital city",),
                ("has its capital in", "has as capital", "is governed from"), ("country",), ("city",)),
    "border": ("shares border with", "countries with which the subject shares a land border", ("borders",),
               ("borders", "shares a border with", "is adjacent to", "neighbours"), ("country",), ("country",)),
    "residence": ("residence", "the place where the person is or has been resident", ("lives in",),
                  ("lives in", "resides in", "settled in", "moved to"), tuple(PERSON_TYPES), ("city",)),
    "twin": ("twinned administrative body", "twin towns, sister cities", ("sister city",),
             ("is twinned with", "is a sister city of", "is partnered with"), ("city",), ("city",)),
}
OOKG_PREDICATES = {
    "architect": ("architect", "person or architectural firm responsible for designing this building",
                  ("designer",), ("was designed by", "is the work of architect", "was planned by"),
                  ("building",), ("architect",)),
    "port": ("home port", "place where a ship is registered and based", ("port of registry",),
             ("is registered in", "sails from", "has its home port in"), ("ship",), ("port city",)),
    "operator": ("operator", "person or organization that operates the equipment", ("operated by",),
                 ("is operated by", "is run by", "sails for"), ("ship",), ("shipping company",)),
    "maker": ("manufacturer", "manufacturer or producer of this product", ("builder",),
              ("was built by", "was constructed by", "came from the yard of"), ("ship",), ("shipping company",)),
    "location": ("location", "location of the object, structure or event", ("place",),
                 ("stands in", "is located in", "was erected in"), ("building",), ("port city",)),
}
#: UMLS relation → paraphrase pool (the relation's own words first)
UMLS_PARAPHRASES = {
    "affects": ("affects", "has an effect on", "influences", "acts on", "alters"),
    "result_of": ("is a result of", "results from", "arises from", "is an outcome of", "follows from"),
    "isa": ("is a", "is a kind of", "is a type of", "is classified as", "falls under"),
    "interacts_with": ("interacts with", "reacts with", "binds to", "has an interaction with"),
    "process_of": ("is a process of", "takes place in", "goes on in", "is a process occurring in"),
    "causes": ("causes", "leads to", "brings about", "gives rise to", "induces"),
    "location_of": ("is the location of", "is the site of", "hosts", "is where one finds"),
    "produces": ("produces", "generates", "yields", "secretes", "makes"),
    "issue_in": ("is an issue in", "is a topic in", "is a concern in", "is a subject of"),
    "complicates": ("complicates", "aggravates", "worsens", "makes worse"),
    "associated_with": ("is associated with", "is linked to", "is related to", "goes along with"),
    "part_of": ("is part of", "is a component of", "belongs to", "is a piece of"),
    "manifestation_of": ("is a manifestation of", "manifests", "is a sign of", "reflects"),
    "measures": ("measures", "quantifies", "gauges", "is used to measure"),
    "disrupts": ("disrupts", "interferes with", "disturbs", "impairs"),
    "performs": ("performs", "engages in", "undertakes", "does"),
    "occurs_in": ("occurs in", "happens in", "is found in", "appears in"),
    "precedes": ("precedes", "comes before", "happens before", "is followed by"),
    "co-occurs_with": ("co-occurs with", "occurs together with", "coincides with", "accompanies"),
    "uses": ("uses", "makes use of", "employs", "relies on"),
    "assesses_effect_of": ("assesses the effect of", "evaluates the effect of", "tests the impact of"),
    "measurement_of": ("is a measurement of", "is a measure of", "is a reading of"),
    "evaluation_of": ("is an evaluation of", "is an assessment of", "evaluates", "is a judgement of"),
    "treats": ("treats", "is used to treat", "cures", "is a therapy for"),
    "analyzes": ("analyzes", "analyses", "examines", "studies"),
    "diagnoses": ("diagnoses", "is used to diagnose", "detects", "identifies"),
    "exhibits": ("exhibits", "shows", "displays", "presents with"),
    "property_of": ("is a property of", "is a characteristic of", "is an attribute of", "characterizes"),
    "carries_out": ("carries out", "conducts", "executes", "performs"),
    "degree_of": ("is a degree of", "is an extent of", "is a grade of"),
    "prevents": ("prevents", "protects against", "averts", "wards off"),
    "ingredient_of": ("is an ingredient of", "is a constituent of", "goes into", "is contained in"),
    "indicates": ("indicates", "points to", "signals", "suggests"),
    "method_of": ("is a method of", "is a technique of", "is a way of", "is a procedure of"),
    "conceptual_part_of": ("is a conceptual part of", "is conceptually part of", "is an abstract part of"),
    "contains": ("contains", "holds", "includes", "encloses"),
    "consists_of": ("consists of", "is made of", "is composed of", "comprises"),
    "surrounds": ("surrounds", "encircles", "envelops", "encloses"),
    "adjacent_to": ("is adjacent to", "lies next to", "borders", "is beside"),
    "manages": ("manages", "handles", "controls", "administers"),
    "developmental_form_of": ("is a developmental form of", "develops into", "is an early form of"),
    "connected_to": ("is connected to", "connects to", "is joined to", "links to"),
    "practices": ("practices", "practises", "works in", "exercises"),
    "interconnects": ("interconnects", "links together", "joins"),
    "conceptually_related_to": ("is conceptually related to", "is notionally linked to", "relates to"),
    "derivative_of": ("is a derivative of", "derives from", "is derived from"),
}
UMLS_PREFIXES = ("In the UMLS semantic network, ", "In biomedical ontologies, ", "According to UMLS, ",
                 "In the semantic network, ", "Typically, ")
GENERAL_PREFIXES = ("According to the records, ", "As reported, ", "Reportedly, ", "In {year}, ")
#: entity type → word linking it to the entity its description names (the related-entity cue)
RELATED_WORD = {**{t: "born in" for t in PERSON_TYPES}, "city": "in", "basketball team": "based in",
                "football club": "based in", "university": "in", "company": "based in", "band": "from",
                "novel": "by", "painting": "by", "film": "directed by", "album": "by", "league": "in",
                "architect": "born in", "building": "in", "ship": "operated by", "shipping company": "based in"}


# =============================================================================================== builder
@dataclass
class _Ent:
    label: str
    type: str
    domain: str  # "umls" | "general" | "ookg"
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    related: int | None = None  # entity named in the description (the related-entity cue)
    facts: bool = True  # False: a KG-only entity (no FaLB facts)


@dataclass
class _Pred:
    key: str
    label: str
    description: str
    aliases: tuple[str, ...]
    paraphrases: tuple[str, ...]
    domain: str
    signature: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    @property
    def heldout(self) -> str | None:
        """The paraphrase that never occurs in training (pools of ≥ 4)."""
        return self.paraphrases[-1] if len(self.paraphrases) >= 4 else None


def _abbreviation(words: Sequence[str]) -> str:
    """UMLS-style 4-letter abbreviation of a semantic type name's content words ("" for one word)."""
    content = [w for w in words if w not in ("or", "and", "of", "by", "the")]
    if len(content) == 1:
        return ""
    if len(content) == 2:
        return content[0][:2] + content[1][:2]
    return "".join(w[0] for w in content)[:4].ljust(4, content[-1][1:2] or "x")


class _World:
    """Entities, predicates and facts (internal indices) of one seed; every choice comes from ``rng``."""

    def __init__(self, seed: int, umls: Sequence[tuple[str, str, str]]):
        self.rng = np.random.default_rng([seed, 21])
        self.ents: list[_Ent] = []
        self.preds: list[_Pred] = []
        self.facts: list[tuple[int, int, int]] = []
        self.pred_of: dict[str, int] = {}
        self.by_type: dict[str, list[int]] = {}
        self._umls(umls)
        self._general()
        self._ookg()

    # ------------------------------------------------------------------ basics
    def pick(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def add(self, label: str, type_: str, domain: str, aliases: Sequence[str] = (), **kw) -> int:
        clean = []
        for a in aliases:
            if a and a != label and a not in clean:
                clean.append(a)
        self.ents.append(_Ent(label, type_, domain, clean, **kw))
        self.by_type.setdefault(type_, []).append(len(self.ents) - 1)
        return len(self.ents) - 1

    def add_pred(self, key: str, label: str, description: str, aliases, paraphrases, domain: str,
                 signature=((), ())) -> int:
        self.preds.append(_Pred(key, label, description, tuple(aliases), tuple(paraphrases), domain,
                                (tuple(signature[0]), tuple(signature[1]))))
        self.pred_of[key] = len(self.preds) - 1
        return len(self.preds) - 1

    def fact(self, s: int, key: str, o: int) -> None:
        if s != o:
            self.facts.append((s, self.pred_of[key], o))

    def popular(self, pool: Sequence[int], exponent: float = 0.8) -> int:
        """A Zipf-weighted pick (the pool's first items are the popular ones)."""
        w = 1.0 / np.arange(1, len(pool) + 1) ** exponent
        return pool[int(self.rng.choice(len(pool), p=w / w.sum()))]

    # ------------------------------------------------------------------ UMLS
    def _umls(self, triples: Sequence[tuple[str, str, str]]) -> None:
        names = sorted({t[0] for t in triples} | {t[2] for t in triples})
        parents: dict[str, list[str]] = {}
        for h, r, t in triples:
            if r == "isa" and h != t:
                parents.setdefault(h, []).append(t)

        def depth(name: str, seen=()) -> int:
            return 1 + max((depth(p, seen + (name,)) for p in parents.get(name, ()) if p not in seen), default=0)

        labels = {n: n.replace("_", " ") for n in names}
        taken = set(labels.values())
        index = {}
        for name in names:
            words = labels[name].split()
            aliases = []
            abbreviation = _abbreviation(words)
            if abbreviation and abbreviation not in taken:
                aliases.append(abbreviation)
                taken.add(abbreviation)
            if " or " in labels[name]:
                aliases.append(labels[name].replace(" or ", "/"))
            kinds = sorted(parents.get(name, ()), key=lambda p: (-depth(p), p))
            description = "semantic type of the UMLS semantic network" + (
                f", a kind of {labels[kinds[0]]}" if kinds else "")
            index[name] = self.add(labels[name], "semantic type", "umls", aliases, description=description)
        for rel in sorted({t[1] for t in triples}):
            pool = UMLS_PARAPHRASES.get(rel) or (rel.replace("_", " "),)
            label = "is a" if rel == "isa" else rel.replace("_", " ")
            aliases = (rel,) if rel != label else ()
            self.add_pred(f"umls:{rel}", label, f"relation of the UMLS semantic network: the subject {pool[0]} "
                          "the object", aliases, pool, "umls", (("semantic type",), ("semantic type",)))
        chosen = self.rng.choice(len(triples), size=min(UMLS_FACTS, len(triples)), replace=False)
        for i in sorted(chosen.tolist()):
            h, r, t = triples[i]
            self.fact(index[h], f"umls:{r}", index[t])

    # ------------------------------------------------------------------ generated domain
    def _general(self) -> None:
        for key, (label, desc, aliases, pool, subj, obj) in PREDICATES.items():
            self.add_pred(key, label, desc, aliases, pool, "general", (subj, obj))
        countries = self._countries()
        cities = self._cities(countries)
        self._teams(countries, cities)
        universities = self._universities(cities)
        fields = [self.add(name, "field", "general", aliases, description=f"branch of {discipline}")
                  for name, discipline, aliases in FIELDS]
        awards = self._awards()
        people = self._people(cities, countries)
        self._organisations(cities, people)
        self._works(people, cities)
        self._person_facts(people, cities, countries, universities, fields, awards)
        for c in countries:
            capital = [x for x in cities if self.ents[x].related == c]
            if capital:
                self.fact(c, "capital", self.pick(capital))
        for _ in range(len(countries) + 6):
            a, b = self.pick(countries), self.pick(countries)
            if a != b and (a, self.pred_of["border"], b) not in self.facts:
                self.fact(a, "border", b)

    def _countries(self) -> list[int]:
        roots = list(COUNTRY_ROOT)
        self.rng.shuffle(roots)
        out = []
        for root in roots[:18]:
            name = root + self.pick(COUNTRY_END)
            aliases = [f"{self.pick(COUNTRY_FORM)} {name}"] if self.chance(0.8) else []
            out.append(self.add(name, "country", "general", aliases, description="sovereign state"))
        return out

    def _city_names(self, n: int) -> list[str]:
        names = [p + s for p in CITY_PRE for s in CITY_SUF]
        order = self.rng.permutation(len(names))
        return [names[i] for i in order[:n]]

    def _cities(self, countries: list[int]) -> list[int]:
        names = self._city_names(160)
        out = []
        for name in names:
            country = self.popular(countries, 0.5)
            aliases = [f"City of {name}"] if self.chance(0.25) else []
            c = self.add(name, "city", "general", aliases, related=country)
            self.fact(c, "country", country)
            out.append(c)
        for name in names[:12]:  # namesakes in another country
            first = out[names.index(name)]
            country = self.pick([c for c in countries if c != self.ents[first].related])
            c = self.add(name, "city", "general", related=country)
            self.fact(c, "country", country)
            out.append(c)
        for c in out:
            self.ents[c].description = f"city in {self.ents[self.ents[c].related].label}"
        self.rng.shuffle(out)  # popularity order
        for c in out[:16]:
            if self.chance(0.8):
                self.fact(c, "twin", self.pick(out))
        return out

    def _teams(self, countries: list[int], cities: list[int]) -> list[int]:
        leagues = []
        for sport, kind, n in (("basketball", "basketball team", 24), ("football", "football club", 30)):
            by_country: dict[int, int] = {}
            mascots = list(MASCOTS)
            for k in range(n):
                city = self.pick(cities)
                name = self.ents[city].label
                if sport == "basketball":
                    mascot = mascots[k % len(mascots)]
                    label, aliases = f"{name} {mascot}", [f"the {mascot}"] if self.chance(0.6) else [mascot]
                else:
                    suffix = self.pick(CLUB_SUF)
                    label = f"{name} {suffix}"
                    aliases = ([name] if self.chance(0.5) else []) + (
                        [f"the {suffix}"] if suffix not in ("F.C.",) and self.chance(0.3) else [])
                if any(self.ents[t].label == label for t in self.by_type.get(kind, ())):
                    continue
                t = self.add(label, kind, "general", aliases, related=city,
                             description=f"{kind} based in {self.ents[city].label}")
                country = self.ents[city].related
                if country not in by_country:
                    cname = self.ents[country].label
                    word = "Basketball League" if sport == "basketball" else "Premier League"
                    acronym = cname[0] + "".join(w[0] for w in word.split())
                    by_country[country] = self.add(f"{cname} {word}", "league", "general", [acronym],
                                                   related=country, description=f"{sport} league in {cname}")
                    leagues.append(by_country[country])
                self.fact(t, "league", by_country[country])
        return leagues

    def _universities(self, cities: list[int]) -> list[int]:
        out, used = [], set()
        for k in range(36):
            city = self.pick(cities)
            name = self.ents[city].label
            if name in used:
                continue
            used.add(name)
            if k % 4 == 3:
                label, aliases = f"{name} Institute of Technology", [f"{name[0]}IT"]
            else:
                label, aliases = f"University of {name}", [f"{name} University"] if self.chance(0.6) else []
            out.append(self.add(label, "university", "general", aliases, related=city,
                                description=f"university in {name}"))
        return out

    def _awards(self) -> list[int]:
        disciplines = sorted({d for _, d, _ in PERSON_TYPES.values()})
        names = list(LAST)
        self.rng.shuffle(names)
        out = []
        for k, name in enumerate(names[:24]):
            discipline = disciplines[k % len(disciplines)]
            kind = self.pick(("Prize", "Medal", "Award"))
            aliases = [f"{name} {kind} in {discipline.title()}"] if self.chance(0.5) else []
            out.append(self.add(f"{name} {kind}", "award", "general", aliases, description=f"award in {discipline}"))
        return out

    def _person_aliases(self, first: str, nick: str, last: str) -> list[str]:
        aliases = []
        if self.chance(0.45):
            aliases.append(f"{first[0]}. {last}")
        if self.chance(0.25):
            aliases.append(f"{first[0]}. {last[0]}.")
        if nick and self.chance(0.5):
            aliases.append(f"{nick} {last}")
        if self.chance(0.15):
            aliases.append(f"{first} {self.pick(MIDDLE)} {last}")
        return aliases

    def _people(self, cities: list[int], countries: list[int]) -> list[int]:
        pairs = [(f, n, last) for f, n in FIRST for last in LAST]
        order = self.rng.permutation(len(pairs))
        names = iter([pairs[i] for i in order])
        types = [t for t, (n, _, _) in PERSON_TYPES.items() for _ in range(n)]
        types += [self.pick(tuple(PERSON_TYPES)) for _ in range(KG_ONLY_PEOPLE)]
        kg_only = [False] * (len(types) - KG_ONLY_PEOPLE) + [True] * KG_ONLY_PEOPLE
        perm = self.rng.permutation(len(types))
        types, kg_only = [types[i] for i in perm], [kg_only[i] for i in perm]
        out = []
        k = 0
        while k < len(types):
            first, nick, last = next(names)
            u = self.rng.random()
            size = 1 if u < 0.86 else (2 if u < 0.97 else 3)  # namesake groups
            for j in range(min(size, len(types) - k)):
                aliases = self._person_aliases(first, nick, last)
                label = f"{first} {last}"
                if j == 1 and self.chance(0.3):  # "Michael I. Jordan" with the alias "Michael Jordan"
                    aliases.append(label)
                    label = f"{first} {self.pick(MIDDLE)[0]}. {last}"
                birthplace = self.popular(cities, 0.6)
                p = self.add(label, types[k], "general", aliases, related=birthplace, facts=not kg_only[k],
                             description=f"{types[k]} born in {self.ents[birthplace].label}")
                out.append(p)
                k += 1
        return out

    def _organisations(self, cities: list[int], people: list[int]) -> None:
        lasts = list(LAST)
        self.rng.shuffle(lasts)
        founders = [p for p in people if self.ents[p].type in ("businessperson", "politician")
                    and self.ents[p].facts]
        for last in lasts[:40]:
            word, industry = self.pick(INDUSTRY)
            city = self.popular(cities, 0.5)
            aliases = ([last] if self.chance(0.5) else []) + ([f"{last} Group"] if self.chance(0.3) else [])
            c = self.add(f"{last} {word}", "company", "general", aliases, related=city,
                         description=f"{industry} company based in {self.ents[city].label}")
            self.fact(c, "hq", city)
            if self.chance(0.7):
                self.fact(c, "founder", self.pick(founders))
        for u in self.by_type["university"]:
            if self.chance(0.3):
                self.fact(u, "founder", self.pick(founders))
        names = [f"The {a} {n}s" for a in ADJ for n in NOUN]
        order = self.rng.permutation(len(names))
        for label in [names[i] for i in order[:20]] + list(UMLS_BANDS):
            city = self.pick(cities)
            aliases = [label[4:]] if label.startswith("The ") and self.chance(0.7) else []
            b = self.add(label, "band", "general", aliases, related=city,
                         description=f"band from {self.ents[city].label}")
            self.fact(b, "hq", city)

    def _title(self, cities: list[int]) -> str:
        form = int(self.rng.integers(5))
        noun, adj = self.pick(NOUN), self.pick(ADJ)
        city = self.ents[self.pick(cities)].label
        return (f"The {noun} of {city}", f"{adj} {noun}", f"The {adj} {noun}", f"A {noun} in {city}",
                f"{noun}s of {city}")[form]

    def _works(self, people: list[int], cities: list[int]) -> None:
        creators = {t: [p for p in people if self.ents[p].type == t and self.ents[p].facts]
                    for t in ("novelist", "painter", "film director", "singer")}
        bands = self.by_type["band"]
        used: set[str] = set()
        novels = []
        for kind, n, who, key in (("novel", 120, "novelist", "author"), ("painting", 70, "painter", "creator"),
                                  ("film", 60, "film director", "director"), ("album", 60, "singer", "performer")):
            for k in range(n):
                if kind == "novel" and k < 8:  # titled like a city
                    title = self.ents[cities[k]].label
                elif kind == "film" and k < 8 and novels:  # adaptation: titled like a novel
                    title = self.ents[novels[k]].label
                else:
                    title = self._title(cities)
                    if title in used:
                        continue
                used.add(title)
                maker = self.pick(bands) if kind == "album" and self.chance(0.4) else self.popular(creators[who], 0.4)
                aliases = []
                if title.startswith(("The ", "A ")) and self.chance(0.5):
                    aliases.append(title.split(" ", 1)[1])
                if kind == "film":
                    aliases.append(f"{title} ({int(self.rng.integers(1950, 2021))} film)")  # dropped by the filter
                    if self.chance(0.3):
                        aliases.append(f"{title} (film)")
                w = self.add(title, kind, "general", aliases, related=maker,
                             description=f"{kind} {RELATED_WORD[kind]} {self.ents[maker].label}")
                self.fact(w, key, maker)
                if kind == "novel":
                    novels.append(w)

    def _person_facts(self, people, cities, countries, universities, fields, awards) -> None:
        teams = {"basketball": self.by_type["basketball team"], "football": self.by_type["football club"]}
        companies = self.by_type["company"]
        field_of = {d: [f for f in fields if self.ents[f].description.endswith(d)] for d in
                    ("computer science", "physics", "mathematics")}
        award_of = {d: [a for a in awards if self.ents[a].description.endswith(d)] for _, d, _ in
                    PERSON_TYPES.values()}
        active = [p for p in people if self.ents[p].facts]
        for p in active:
            e = self.ents[p]
            _, discipline, sport = PERSON_TYPES[e.type]
            self.fact(p, "born", e.related)
            if self.chance(0.6):
                home = self.ents[e.related].related
                self.fact(p, "citizen", home if self.chance(0.85) else self.pick(countries))
            if sport:
                for t in sorted({self.popular(teams[sport], 0.5) for _ in range(int(self.rng.integers(1, 4)))}):
                    self.fact(p, "team", t)
            if self.chance(0.8 if e.type in SCIENTISTS else 0.3):
                self.fact(p, "educated", self.popular(universities, 0.5))
            if e.type in SCIENTISTS + ("politician", "businessperson") and self.chance(0.7):
                pool = universities if e.type in SCIENTISTS and self.chance(0.7) else companies
                self.fact(p, "employer", self.popular(pool, 0.5))
            if e.type in SCIENTISTS:
                for f in sorted({self.pick(field_of[discipline]) for _ in range(int(self.rng.integers(1, 3)))}):
                    self.fact(p, "field", f)
                peers = [q for q in active if self.ents[q].type == e.type and q != p]
                if self.chance(0.4):
                    self.fact(p, "advisor", self.pick(peers))
            if award_of[discipline] and self.chance(0.35):
                self.fact(p, "award", self.pick(award_of[discipline]))
            if self.chance(0.3):
                self.fact(p, "residence", self.popular(cities, 0.6))
            if self.chance(0.08):
                self.fact(p, "spouse", self.pick(active))
            if e.type == "singer" and self.chance(0.6):
                self.fact(p, "member", self.pick(self.by_type["band"]))

    # ------------------------------------------------------------------ out-of-KG domain
    def _ookg(self) -> None:
        for key, (label, desc, aliases, pool, subj, obj) in OOKG_PREDICATES.items():
            self.add_pred(f"ookg:{key}", label, desc, aliases, pool, "ookg", (subj, obj))
        ports = []
        names = [p + s for p in PORT_PRE for s in PORT_SUF]
        for i in self.rng.permutation(len(names))[:10]:
            ports.append(self.add(names[i], "port city", "ookg", description="port city"))
        firsts = list(OOKG_FIRST)
        self.rng.shuffle(firsts)
        architects = []
        for first, last in zip(firsts, OOKG_LAST):
            port = self.pick(ports)
            architects.append(self.add(f"{first} {last}", "architect", "ookg", [f"{first[0]}. {last}"],
                                       related=port, description=f"architect born in {self.ents[port].label}"))
        companies = []
        for name in SHIPPING:
            port = self.pick(ports)
            label = f"{name} {self.pick(('Line', 'Shipping', 'Shipyards'))}"
            companies.append(self.add(label, "shipping company", "ookg", [name], related=port,
                                      description=f"shipping company based in {self.ents[port].label}"))
        for ship in SHIPS:
            operator = self.pick(companies)
            s = self.add(f"MV {ship}", "ship", "ookg", [ship] if self.chance(0.6) else [], related=operator,
                         description=f"ship operated by {self.ents[operator].label}")
            self.fact(s, "ookg:operator", operator)
            self.fact(s, "ookg:port", self.pick(ports))
            self.fact(s, "ookg:maker", self.pick(companies))
        for k in range(30):
            port = self.pick(ports)
            word = BUILDING_WORDS[k % len(BUILDING_WORDS)]
            label = f"{self.ents[self.pick(architects)].label.split()[1]} {word}"
            if any(self.ents[b].label == label for b in self.by_type.get("building", ())):
                continue
            b = self.add(label, "building", "ookg", related=port, description=f"building in {self.ents[port].label}")
            self.fact(b, "ookg:location", port)
            self.fact(b, "ookg:architect", self.pick(architects))


# =========================================================================================== records
def _pairs(s: _Ent, o: _Ent) -> list[tuple[str, str]]:
    """Every compatible (subject name, object name) pair of two entities (label or filtered alias)."""
    return [(a, b) for a in [s.label] + [x for x in s.aliases if alias_ok(x)]
            for b in [o.label] + [x for x in o.aliases if alias_ok(x)] if _compatible(a, b)]


class _Records:
    """Sentences and OIE extractions of facts (every choice from ``rng``)."""

    def __init__(self, world: _World, ids: list[str], pids: list[str], rng: np.random.Generator):
        self.w, self.ids, self.pids, self.rng = world, ids, pids, rng
        surfaces: dict[str, list[int]] = {}
        for i, e in enumerate(world.ents):
            for name in [e.label] + e.aliases:
                holders = surfaces.setdefault(surface_key(name), [])
                if i not in holders:
                    holders.append(i)
        self.surfaces = surfaces
        self.index = {q: i for i, q in enumerate(ids)}
        self.dropped = 0

    def polysemous(self, mention: str) -> bool:
        return len(self.surfaces.get(surface_key(mention), ())) >= 2

    def pick(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def mention(self, e: int) -> str:
        ent = self.w.ents[e]
        usable = [a for a in ent.aliases if alias_ok(a)]
        if usable and self.rng.random() > LABEL_P:
            return self.pick(usable)
        return ent.label

    def mentions(self, s: int, o: int) -> tuple[str, str]:
        """Original subject and object mentions: label or alias, a compatible pair (:func:`_compatible`)."""
        ms, mo = self.mention(s), self.mention(o)
        if not _compatible(ms, mo):
            ms, mo = self.pick(_pairs(self.w.ents[s], self.w.ents[o]))
        return ms, mo

    def cue(self, e: int, mention: str, other: int) -> str | None:
        """A disambiguating phrase for mention ``mention`` of ``e`` ("type" or "related"), one its namesakes do not
        share and that does not name the fact's other slot ``other``; None when no cue is wanted or possible."""
        ent = self.w.ents[e]
        if ent.domain == "umls":
            return None
        namesakes = [self.w.ents[n] for n in self.surfaces.get(surface_key(mention), ()) if n != e]
        if not namesakes and self.rng.random() > CUE_P:
            return None
        options = []
        if all(n.type != ent.type for n in namesakes):
            options.append("type")
        related = None if ent.related is None else self.w.ents[ent.related].label
        if related is not None and ent.related != other and ent.type in RELATED_WORD and related not in mention \
                and all(n.related is None or self.w.ents[n.related].label != related for n in namesakes):
            options.append("related")
        return self.pick(options) if options else None

    def phrase(self, e: int, mention: str, cue: str | None) -> tuple[str, int]:
        """``(noun phrase, offset of the mention in it)``."""
        ent = self.w.ents[e]
        if cue == "type":
            head = f"the {ent.type} "
            return head + mention, len(head)
        if cue == "related":
            return f"{mention} ({RELATED_WORD[ent.type]} {self.w.ents[ent.related].label})", 0
        return mention, 0

    def sentence(self, s: int, o: int, ms: str, mo: str, rel: str, cues: tuple[str | None, str | None],
                 umls: bool) -> str | None:
        """The sentence holding ``ms rel mo`` with the cues; None when a mention's first word-bounded occurrence
        would not be the mention itself."""
        subj, s_off = self.phrase(s, ms, cues[0])
        obj, o_off = self.phrase(o, mo, cues[1])
        if umls:
            prefix = self.pick(UMLS_PREFIXES)
        elif self.rng.random() < 0.25 or (s_off == 0 and subj[:1].islower()):
            prefix = self.pick(GENERAL_PREFIXES).format(year=int(self.rng.integers(1950, 2024)))
        else:
            prefix = ""
        text = prefix + subj
        if not prefix:
            text = _cap(text)
        text_obj = len(text) + 1 + len(rel) + 1 + o_off
        text = f"{text} {rel} {obj}" + ("" if obj.endswith(".") else ".")
        hit_s, hit_o = mention_in_sentence(ms, text), mention_in_sentence(mo, text)
        if hit_s is None or hit_o is None or hit_s.start() != len(prefix) + s_off or hit_o.start() != text_obj:
            return None
        return text

    def records(self, fact: tuple[int, int, int], split: str) -> list[dict]:
        s, p, o = fact
        pred = self.w.preds[p]
        umls = pred.domain == "umls"
        heldout = pred.heldout
        trainable = [r for r in pred.paraphrases if r != heldout]
        w = 1.0 / np.arange(1, len(trainable) + 1) ** 0.7
        out, seen = [], set()
        for _ in range(2 if self.rng.random() < SECOND_RECORD_P else 1):
            if heldout and split != "train" and self.rng.random() < HELDOUT_P:
                rel = heldout
            else:
                rel = trainable[int(self.rng.choice(len(trainable), p=w / w.sum()))]
            ms, mo = self.mentions(s, o)
            if (ms, rel, mo) in seen:
                continue
            cues = (self.cue(s, ms, o), self.cue(o, mo, s))
            text = self.sentence(s, o, ms, mo, rel, cues, umls) or self.sentence(s, o, ms, mo, rel, (None, None),
                                                                                  umls)
            if text is None:
                self.dropped += 1
                continue
            seen.add((ms, rel, mo))
            out.append({"sentence": text, "extraction": [ms, rel, mo],
                        "fact_ids": [self.ids[s], self.pids[p], self.ids[o]], "org_extraction": [ms, rel, mo]})
        return out

    def augment(self, record: dict) -> list[dict]:
        """Card §2.1: every (subject alias or original) × (object alias or original) but the original pair;
        aliases of the gold entities passing :func:`alias_ok`, those equal to the original mention skipped."""
        ms, rel, mo = record["org_extraction"]
        s, o = self.index[record["fact_ids"][0]], self.index[record["fact_ids"][2]]
        subj = [ms] + [a for a in self.w.ents[s].aliases if alias_ok(a) and a != ms]
        obj = [mo] + [a for a in self.w.ents[o].aliases if alias_ok(a) and a != mo]
        return [{"sentence": record["sentence"], "extraction": [a, rel, b], "fact_ids": list(record["fact_ids"]),
                 "org_extraction": [ms, rel, mo]}
                for i, a in enumerate(subj) for j, b in enumerate(obj) if i or j]


# ============================================================================================ splits
def _assign(world: _World, rng: np.random.Generator) -> tuple[dict[str, list], dict[str, list[int]]]:
    """Facts per split: ``train``, ``val``/``test`` (transductive), ``val_ind``/``test_ind`` (inductive),
    ``ookg``; and the held-out entity indices ``{"val": [...], "test": [...]}``."""
    ents = world.ents
    in_facts = sorted({e for f in world.facts for e in (f[0], f[2])})
    eligible = [e for e in in_facts if ents[e].domain == "general"
                and ents[e].type not in ("country", "league", "field", "award")]
    umls = [e for e in in_facts if ents[e].domain == "umls" and ents[e].label != "entity"]
    held = [eligible[i] for i in rng.choice(len(eligible), size=int(0.08 * len(eligible)), replace=False)]
    held += [umls[i] for i in rng.choice(len(umls), size=6, replace=False)]
    held = [held[i] for i in rng.permutation(len(held))]
    side = {e: ("val" if k % 2 == 0 else "test") for k, e in enumerate(held)}
    out: dict[str, list] = {k: [] for k in ("train", "val", "test", "val_ind", "test_ind", "ookg")}
    per_entity: dict[int, int] = {}
    for f in world.facts:
        s, p, o = f
        if not _pairs(ents[s], ents[o]):
            continue  # no sentence can hold both mentions ("Daniel Oakley was born in Oakley")
        if world.preds[p].domain == "ookg":
            out["ookg"].append(f)
            continue
        sides = {side[e] for e in (s, o) if e in side}
        if len(sides) == 2:
            continue  # links a val-held entity with a test-held one: dropped
        if sides:
            key = [e for e in (s, o) if e in side][0]
            if per_entity.get(key, 0) >= INDUCTIVE_CAP:
                continue
            per_entity[key] = per_entity.get(key, 0) + 1
            out[f"{sides.pop()}_ind"].append(f)
            continue
        u = rng.random()
        out["train" if u < SPLIT_P[0] else ("val" if u < SPLIT_P[0] + SPLIT_P[1] else "test")].append(f)
    # de-duplicate identical triples (keep the first split) and make val/test transductive
    seen: set[tuple[int, int, int]] = set()
    for key in out:
        out[key] = [f for f in out[key] if not (f in seen or seen.add(f))]
    vocab = {x for f in out["train"] for x in (("e", f[0]), ("p", f[1]), ("e", f[2]))}
    for key in ("val", "test"):
        keep = []
        for f in out[key]:
            if {("e", f[0]), ("p", f[1]), ("e", f[2])} <= vocab:
                keep.append(f)
            else:
                out["train"].append(f)
                vocab |= {("e", f[0]), ("p", f[1]), ("e", f[2])}
        out[key] = keep
    for key in ("val_ind", "test_ind"):  # the inductive facts' predicates and other entities are trained
        out[key] = [f for f in out[key] if ("p", f[1]) in vocab
                    and all(("e", e) in vocab or e in side for e in (f[0], f[2]))]
    return out, {"val": sorted(e for e in held if side[e] == "val"), "test": sorted(e for e in held
                                                                                    if side[e] == "test")}


# ============================================================================================ writing
def _dump_array(path: Path, records: list[dict]) -> None:
    """One JSON array, one record per line (still a single JSON value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    path.write_text("[\n" + body + "\n]\n" if records else "[]\n", encoding="utf-8")


def write_facts(folder: str | Path, seed: int = 0) -> Path:
    """Write the world of ``seed`` into ``folder`` (``kg/``, ``falb/``, ``world.json``; module docstring)."""
    folder = Path(folder)
    world = _World(seed, read_umls())
    rng = np.random.default_rng([seed, 22])
    ent_num = rng.permutation(len(world.ents)) + 1
    pred_num = rng.permutation(len(world.preds)) + 1
    ids = [f"Q{n}" for n in ent_num]
    pids = [f"P{n}" for n in pred_num]

    kg: dict[str, dict] = {}
    for i in np.argsort(ent_num):
        e = world.ents[i]
        kg[ids[i]] = {"label": e.label, "description": e.description, "aliases": list(e.aliases)}
    for i in np.argsort(pred_num):
        p = world.preds[i]
        kg[pids[i]] = {"label": p.label, "description": p.description, "aliases": list(p.aliases)}
    (folder / "kg").mkdir(parents=True, exist_ok=True)
    (folder / KG_FILE).write_text(json.dumps(kg, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    splits, held = _assign(world, rng)
    maker = _Records(world, ids, pids, rng)
    originals = {}
    for key, name in (("train", "train"), ("val", "val"), ("test", "test"), ("val_ind", "val"),
                      ("test_ind", "test"), ("ookg", "test")):
        originals[key] = [r for f in splits[key] for r in maker.records(f, name)]

    def full(records: list[dict]) -> list[dict]:
        return [x for r in records for x in [r] + maker.augment(r)]

    def poly(r: dict) -> bool:
        return maker.polysemous(r["extraction"][0]) or maker.polysemous(r["extraction"][2])

    files: dict[str, list[dict]] = {"train_full": full(originals["train"]),
                                    "train_full_no_aliases": originals["train"]}
    for split in ("val", "test"):
        trans, ind = full(originals[split]), full(originals[f"{split}_ind"])
        everything = trans + ind
        files[f"{split}_full"] = everything
        files[f"{split}_transductive"] = trans
        files[f"{split}_inductive"] = ind
        files[f"{split}_polysemous"] = [r for r in everything if poly(r)]
        files[f"{split}_monosemous"] = [r for r in everything if not poly(r)]
    files["test_full_no_aliases"] = originals["test"] + originals["test_ind"]
    files["test_inductive_no_aliases"] = originals["test_ind"]
    files["test_out_of_kg"] = full(originals["ookg"])
    files["test_out_of_kg_no_aliases"] = originals["ookg"]
    for name in FALB_FILES:
        _dump_array(folder / "falb" / f"{name}.json", files[name])

    ookg_e = sorted({ids[e] for f in splits["ookg"] for e in (f[0], f[2])}, key=lambda q: int(q[1:]))
    ookg_p = sorted({pids[f[1]] for f in splits["ookg"]}, key=lambda q: int(q[1:]))
    referenced = {e for k in splits for f in splits[k] for e in (f[0], f[2])}
    meta = {
        "version": VERSION, "seed": seed,
        "entities": len(world.ents), "predicates": len(world.preds),
        "umls_entities": sum(e.domain == "umls" for e in world.ents),
        "umls_predicates": sum(p.domain == "umls" for p in world.preds),
        "records": {name: len(files[name]) for name in FALB_FILES},
        "facts": {k: len(v) for k, v in splits.items()}, "dropped_records": maker.dropped,
        "inductive_entities": {k: [ids[e] for e in v] for k, v in held.items()},
        "ookg_entities": ookg_e, "ookg_predicates": ookg_p,
        "kg_only_entities": sorted((ids[i] for i in range(len(world.ents)) if i not in referenced),
                                   key=lambda q: int(q[1:])),
        "polysemous_surfaces": {s: sorted((ids[i] for i in v), key=lambda q: int(q[1:]))
                                for s, v in sorted(maker.surfaces.items()) if len(v) >= 2},
        "types": {ids[i]: world.ents[i].type for i in np.argsort(ent_num)},
        "domains": {ids[i]: world.ents[i].domain for i in np.argsort(ent_num)},
        "signatures": {pids[i]: [list(world.preds[i].signature[0]), list(world.preds[i].signature[1])]
                       for i in np.argsort(pred_num)},
        "paraphrases": {pids[i]: list(world.preds[i].paraphrases) for i in np.argsort(pred_num)},
        "heldout_paraphrases": {pids[i]: world.preds[i].heldout for i in np.argsort(pred_num)
                                if world.preds[i].heldout},
    }
    (folder / "world.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def facts_world(seed: int = 0) -> Path:
    """The cached facts world (``world://facts``): ``<worlds>/facts-<seed>/`` with ``kg/wikidata_processed.json``,
    ``falb/*.json`` and ``world.json`` (module docstring). Built once (a temporary sibling renamed into place,
    marker written last); a folder of another world version is rebuilt."""
    return build_world(worlds_dir() / f"facts-{seed}", {"version": VERSION, "seed": seed},
                       lambda folder: write_facts(folder, seed))
