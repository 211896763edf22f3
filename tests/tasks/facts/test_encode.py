"""``modalbridge encode-kg``: the KG encoded as shards by separate runs (resumable: a re-run encodes nothing), merged
into the index folder ``modalbridge link --index`` loads, with the same rankings as the in-process index; shards of
another encoder are refused; contiguous shard bounds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modalbridge.cli import main
from modalbridge.tasks.facts.encode import shard_rows

FAST = ["--precision", "32-true"]


@pytest.mark.parametrize("total,shards", [(10, 3), (3, 5), (1_737, 4), (0, 2)])
def test_shards_cover_the_rows_once_in_order(total, shards):
    bounds = [shard_rows(total, i, shards) for i in range(shards)]
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="outside"):
        shard_rows(total, shards, shards)


def test_sharded_resumable_encoding_merges_into_the_index_link_loads(tiny_linker_ckpt, tmp_path, capsys):
    out = tmp_path / "index"
    base = ["encode-kg", "--ckpt", str(tiny_linker_ckpt), "--out", str(out), "--chunk", "500", *FAST]
    assert main([*base, "--shard", "1/2"]) == 0
    assert "part(s) encoded, 0 already there" in capsys.readouterr().out
    assert main([*base, "--merge", "--shards", "2"]) == 2  # shard 0 is missing
    assert "not encoded yet" in capsys.readouterr().err
    assert main([*base, "--shard", "0/2"]) == 0
    assert main([*base, "--shard", "0/2"]) == 0  # resumed: every part is already there
    assert "0 part(s) encoded" in capsys.readouterr().out.splitlines()[-1]
    assert main([*base, "--merge", "--shards", "2"]) == 0
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest["shards"] == 2 and manifest["sizes"]["entity"] > 1000
    assert (out / "faiss_index_entity").is_file() and (out / "index2rel.json").is_file()

    capsys.readouterr()
    triple = "Ashford | is located in | Valdoria"
    linked = []
    for extra in (["--index", str(out)], []):  # the merged index, then the index built in process
        jsonl = tmp_path / f"link{len(extra)}.jsonl"
        assert main(["link", triple, "--ckpt", str(tiny_linker_ckpt), "--out", str(jsonl), "--report", "", *extra,
                     *FAST]) == 0
        linked.append(json.loads(jsonl.read_text()))
    for slot in ("subj", "rel", "obj"):
        merged, built = ([e["id"] for e in run["links"][slot]] for run in linked)
        assert merged == built, slot
        assert np.allclose([e["score"] for e in linked[0]["links"][slot]],
                           [e["score"] for e in linked[1]["links"][slot]], atol=1e-5)


def test_shards_of_another_encoder_are_refused(tiny_linker_ckpt, tmp_path, capsys):
    out = tmp_path / "index"
    base = ["encode-kg", "--ckpt", str(tiny_linker_ckpt), "--out", str(out), "--chunk", "5000", *FAST]
    assert main([*base, "--shard", "0/3"]) == 0
    state = torch.load(tiny_linker_ckpt, weights_only=True)
    key = next(k for k in state["state_dict"] if k.endswith("head.weight"))
    state["state_dict"][key] = state["state_dict"][key] + 0.01
    other = tmp_path / "other.ckpt"
    torch.save(state, other)
    capsys.readouterr()
    assert main(["encode-kg", "--ckpt", str(other), "--out", str(out), "--shard", "1/3", *FAST]) == 2
    err = capsys.readouterr().err
    assert "started with another encoder" in err and "Traceback" not in err
