"""The rule-based open-IE extractor (``tasks/facts/oie.py``): relative clauses, copulas and participles,
passives, conjoined objects, several sentences, empty input, batching and the missing-model error."""

from __future__ import annotations

import json

import pytest

from modalbridge.core.errors import DataError
from modalbridge.tasks.facts import oie

TEXTS = ["Michael Jordan, who was born in Brooklyn, played for Chicago Bulls.",
         "Chicago Bulls is a basketball team based in Chicago.",
         "The novel was written by Anna Berg.",
         "He played for the Bulls and the Wizards.",
         "Marie Curie discovered polonium. She won the Nobel Prize in 1903.",
         "",
         "A quiet evening by the river."]


@pytest.fixture(scope="module")
def nlp():
    return oie.load_pipeline()


def triples(text: str, nlp) -> list[tuple[str, str, str]]:
    return [e.triple for e in oie.extract_triples(text, nlp=nlp)]


# ============================================================================================ rules
def test_relative_clause_gives_both_triples(nlp):
    text = TEXTS[0]
    found = oie.extract_triples(text, nlp=nlp)
    assert [e.triple for e in found] == [("Michael Jordan", "was born in", "Brooklyn"),
                                         ("Michael Jordan", "played for", "Chicago Bulls")]
    assert all(e.sentence == text for e in found)
    start, end = found[0].span
    assert text[start:end] == "Michael Jordan, who was born in Brooklyn"


def test_copula_and_participle(nlp):
    found = triples(TEXTS[1], nlp)
    assert ("Chicago Bulls", "is", "basketball team") in found
    assert ("Chicago Bulls", "based in", "Chicago") in found


def test_passive_agent(nlp):
    (subject, relation, obj), = triples(TEXTS[2], nlp)
    assert subject in ("The novel", "novel")
    assert (relation, obj) == ("was written by", "Anna Berg")


def test_conjoined_objects_give_one_triple_each(nlp):
    assert triples(TEXTS[3], nlp) == [("He", "played for", "Bulls"), ("He", "played for", "Wizards")]
    found = triples("Messi plays for FC Barcelona, Inter Miami and Argentina.", nlp)
    assert [o for _, _, o in found] == ["FC Barcelona", "Inter Miami", "Argentina"]


def test_two_sentences_keep_their_sentence(nlp):
    text = TEXTS[4]
    found = oie.extract_triples(text, nlp=nlp)
    by_triple = {e.triple: e for e in found}
    first = by_triple[("Marie Curie", "discovered", "polonium")]
    second = by_triple[("She", "won", "Nobel Prize")]
    assert first.sentence == "Marie Curie discovered polonium."
    assert second.sentence == "She won the Nobel Prize in 1903."
    assert ("She", "won in", "1903") in by_triple
    assert text[slice(*second.span)] == "She won the Nobel Prize"


def test_fronted_preposition_and_xcomp(nlp):
    found = triples("In 1984, Jordan joined the Bulls. He decided to join the Wizards.", nlp)
    assert ("Jordan", "joined in", "1984") in found
    assert ("He", "decided to join", "Wizards") in found


@pytest.mark.parametrize("text", ["", "   \n", TEXTS[6], "Wow!"])
def test_no_clause_no_triples(nlp, text):
    assert oie.extract_triples(text, nlp=nlp) == []


def test_slots_are_clean_and_unique(nlp):
    for text in TEXTS:
        found = oie.extract_triples(text, nlp=nlp)
        assert len({e.triple for e in found}) == len(found)
        for slot in (s for e in found for s in e.triple):
            assert slot and slot == slot.strip() and slot[0].isalnum() and slot[-1].isalnum()
    assert len(oie.extract_triples(TEXTS[3], nlp=nlp, max_triples_per_sentence=1)) == 1


def test_as_dict_is_json_ready(nlp):
    extraction = oie.extract_triples(TEXTS[2], nlp=nlp)[0]
    record = json.loads(json.dumps(extraction.as_dict()))
    assert record == {"subject": extraction.subject, "relation": "was written by", "object": "Anna Berg",
                      "sentence": TEXTS[2], "span": list(extraction.span)}
    assert oie.Extraction(**{**record, "span": tuple(record["span"])}) == extraction


# ============================================================================================ batch, loading
def test_batch_equals_one_by_one(nlp):
    batch = oie.extract_triples_batch(TEXTS, nlp=nlp, batch_size=3)
    assert batch == [oie.extract_triples(text, nlp=nlp) for text in TEXTS]
    assert oie.extract_triples_batch([], nlp=nlp) == []


def test_pipeline_is_cached(nlp):
    assert oie.load_pipeline() is nlp
    assert oie.extract_triples(TEXTS[2]) == oie.extract_triples(TEXTS[2], nlp=nlp)  # nlp=None → the default


def test_missing_model_says_how_to_install():
    with pytest.raises(DataError, match=r"no_such_model_xyz.*pip install 'modalbridge\[facts\]'"):
        oie.load_pipeline("no_such_model_xyz")
