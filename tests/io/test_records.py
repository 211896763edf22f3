"""Streaming JSON readers of ``modalbridge.io.records``: arrays, objects and JSON Lines in bounded memory, with
errors naming file, line and item."""

from __future__ import annotations

import bz2
import gzip
import json
import logging

import pytest

from modalbridge.core.errors import DataError
from modalbridge.io import records as R

ITEMS = [{"id": i, "text": "é\tx" * i, "n": [1, 2.5e3, None, True]} for i in range(6)] + [12345678901234, "s", []]


def array_text(items, indent=True):
    sep = ",\n" if indent else ","
    return "[\n" + sep.join(json.dumps(x, ensure_ascii=False) for x in items) + "\n]\n"


def write(path, text):
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix)
    if opener is None:
        path.write_text(text, encoding="utf-8")
    else:
        with opener(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    return path


# ============================================================================================ arrays
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_array_round_trip_in_any_chunk_size(tmp_path, chunk):
    path = write(tmp_path / "a.json", array_text(ITEMS))
    assert list(R.iter_json_array(path, chunk_size=chunk)) == list(enumerate(ITEMS))
    got = list(R.iter_json_array(path, chunk_size=chunk, lines=True))
    assert [line for _, line, _ in got] == list(range(2, 2 + len(ITEMS)))  # one item per line from line 2
    one_line = write(tmp_path / "b.json", array_text(ITEMS, indent=False).replace("\n", ""))
    assert [x for _, x in R.iter_json_array(one_line, chunk_size=chunk)] == ITEMS


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_compressed_arrays_and_objects(tmp_path, suffix):
    path = write(tmp_path / f"a.json{suffix}", array_text(ITEMS))
    assert [x for _, x in R.iter_json_array(path, chunk_size=5)] == ITEMS
    obj = write(tmp_path / f"o.json{suffix}", json.dumps({"Q1": {"label": "a"}, "P2": [1]}))
    assert list(R.iter_json_object(obj, chunk_size=3)) == [("Q1", {"label": "a"}), ("P2", [1])]


def test_array_under_a_key(tmp_path):
    text = '{"meta": {"n": [1, {"x": "]"}]}, "version": 2, "articles": ' + array_text(ITEMS[:3]) + ', "tail": 1}'
    path = write(tmp_path / "k.json", text)
    assert [x for _, x in R.iter_json_array(path, key="articles", chunk_size=4)] == ITEMS[:3]
    bare = write(tmp_path / "bare.json", array_text(ITEMS[:2]))  # a bare array is read under a key too
    assert [x for _, x in R.iter_json_array(bare, key="articles")] == ITEMS[:2]
    assert list(R.iter_json_array(write(tmp_path / "e.json", " [ ] "))) == []
    with pytest.raises(DataError, match="no 'articles' array"):
        list(R.iter_json_array(write(tmp_path / "n.json", '{"other": [1]}'), key="articles"))
    with pytest.raises(DataError, match="'articles' is not a JSON array"):
        list(R.iter_json_array(write(tmp_path / "s.json", '{"articles": 3}'), key="articles"))
    with pytest.raises(DataError, match=r"expected the JSON file \(a JSON array\), got '\{\"a\""):
        list(R.iter_json_array(write(tmp_path / "o.json", '{"a": [1]}')))
    with pytest.raises(DataError, match="an empty file"):
        list(R.iter_json_array(write(tmp_path / "empty.json", "  \n")))
    with pytest.raises(DataError, match="not found"):
        list(R.iter_json_array(tmp_path / "missing.json"))


@pytest.mark.parametrize("text, message, row", [
    ('[\n{"a": 1},\n{"a": 2},\n{"a": 3', r"record 2: not valid JSON .*truncated\?", 4),  # cut inside an item
    ('[\n{"a": 1},\n{"a": 2}', r"ends without '\]' after record 1 \(truncated file\?\)", 3),  # cut after one
    ('[\n{"a": 1},\n{"a": 2},\n', r"record 2: not valid JSON .*truncated\?", 4),  # cut after a comma
    ('[\n{"a": 1}\n{"a": 2}]', r"expected ',' or '\]' after record 0", 3),  # missing separator
    ('[\n{"a": 1},\n{"a": 2},]', r"record 2: not valid JSON", 3),  # trailing comma
    ('[\n{"a": 1},\n{"a" 2}]', r"record 1: not valid JSON \(Expecting ':'", 3),  # malformed inside
])
def test_array_errors_name_file_line_and_item(tmp_path, text, message, row):
    path = write(tmp_path / "bad.json", text)
    for chunk in (3, 1 << 20):
        with pytest.raises(DataError, match=message) as info:
            list(R.iter_json_array(path, chunk_size=chunk, noun="record"))
        assert info.value.path == path and info.value.row == row
        assert str(path) in str(info.value)
        assert ("truncated" in str(info.value)) == ("truncated" in message)  # only a cut file says so


def test_lenient_array_reports_and_resumes_at_the_next_line(tmp_path):
    lines = [json.dumps({"i": i}) + "," for i in range(5)]
    lines[2] = '{"i": 2, "x": [1, }},'
    text = "[\n" + "\n".join(lines)
    path = write(tmp_path / "l.json", text[:-8])  # cut inside the last item
    bad = []
    got = list(R.iter_json_array(path, chunk_size=8, on_bad=lambda *a: bad.append(a), lines=True))
    assert [(n, line, x["i"]) for n, line, x in got] == [(0, 2, 0), (1, 3, 1), (3, 5, 3)]
    assert [(n, line) for n, line, _ in bad] == [(2, 4), (4, 6)]  # the cut item is reported once
    assert all(error for _, _, error in bad)
    cut = write(tmp_path / "c.json", '[{"i": 0},\n{"i": 1}')
    bad.clear()
    assert len(list(R.iter_json_array(cut, on_bad=lambda *a: bad.append(a)))) == 2
    assert bad == [(2, 2, None)]  # an array without ']' is one report with error None


def test_array_memory_stays_bounded(tmp_path, monkeypatch):
    seen = []
    original = R.JsonWindow.more

    def more(self):
        result = original(self)
        seen.append(len(self.buf))
        return result

    monkeypatch.setattr(R.JsonWindow, "more", more)
    items = [{"i": i, "text": "word " * 40} for i in range(400)]
    path = write(tmp_path / "big.json", array_text(items))
    assert sum(1 for _ in R.iter_json_array(path, chunk_size=1000)) == 400
    longest = max(len(json.dumps(x)) for x in items)
    assert path.stat().st_size > 80_000 and max(seen) < 1000 + 2 * longest


# ============================================================================================ objects
@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_object_pairs_in_order(tmp_path, chunk):
    data = {"Q1": {"label": "a \"quoted\" }"}, "P5": {"aliases": ["x", "y"]}, "Q10": 3.5, "Q2": None}
    path = write(tmp_path / "kg.json", json.dumps(data, indent=2))
    assert list(R.iter_json_object(path, chunk_size=chunk)) == list(data.items())
    assert list(R.iter_json_object(write(tmp_path / "e.json", "{ }"))) == []


@pytest.mark.parametrize("text, message", [
    ('{"Q1": {"label": "a"},\n"Q2": {"label": "b"', r"entry 1 \(after key 'Q1'\): the value of 'Q2' is not valid "
                                                    r"JSON .*truncated\?"),
    ('{"Q1": {"label": "a"},\n"Q2": {"label": "b"}', r"entry 2 \(after key 'Q2'\): the object ends without"),
    ('{"Q1": 1, "Q2" 2}', r"entry 1 \(after key 'Q1'\): expected ':' after key 'Q2'"),
    ('{"Q1": 1 "Q2": 2}', r"expected ',' or '\}'"),
    ('{1: 2}', r"entry 0: expected a string key, got 1"),
    ('[1, 2]', r"expected the KG \(a JSON object\), got '\[1, 2\]'"),
])
def test_object_errors_name_file_entry_and_key(tmp_path, text, message):
    path = write(tmp_path / "kg.json", text)
    with pytest.raises(DataError, match=message) as info:
        list(R.iter_json_object(path, chunk_size=4, what="the KG"))
    assert info.value.path == path and info.value.row is not None


# ============================================================================================ JSON Lines
def test_json_lines(tmp_path):
    path = write(tmp_path / "r.jsonl", '{"a": 1}\n\n[2]\n{"a": \n"x"\n')
    with pytest.raises(DataError, match=r"record 2: not valid JSON") as info:
        list(R.iter_json_lines(path, noun="record"))
    assert info.value.row == 4
    bad = []
    got = list(R.iter_json_lines(path, on_bad=lambda *a: bad.append(a)))
    assert got == [(0, 1, {"a": 1}), (1, 3, [2]), (3, 5, "x")]
    assert [(n, line) for n, line, _ in bad] == [(2, 4)]


def test_skip_counter_counts_logs_and_collects(caplog):
    counts, errors = {}, []
    skip = R.SkipCounter(counts, errors, logging.getLogger("test.records"))
    with caplog.at_level(logging.WARNING, logger="test.records"):
        for line in range(R.MAX_LOGGED + 5):
            skip("bad json", "f.json", line, "broken", field="x")
    assert counts == {"bad json": R.MAX_LOGGED + 5} and len(errors) == R.MAX_LOGGED + 5
    assert caplog.text.count("skipped (bad json)") == R.MAX_LOGGED
    assert "further 'bad json' skips are only counted" in caplog.text
    assert str(errors[3]) == "f.json: row 3: field x: skipped (bad json): broken"


def test_create_text_compresses_by_suffix(tmp_path):
    for name in ("a/x.json", "a/x.json.gz", "a/x.json.bz2"):
        with R.create_text(tmp_path / name) as fh:
            fh.write('{"k": "ü"}')
        assert list(R.iter_json_object(tmp_path / name)) == [("k", "ü")]
    assert gzip.open(tmp_path / "a/x.json.gz").read() == '{"k": "ü"}'.encode()
