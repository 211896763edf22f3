"""Vector indexes of the fact-linking task: FAISS / Qdrant / torch agree with numpy brute force, removal keeps the
id map consistent, −1 padding never becomes an id, save/load (our layout and the reference's), fingerprints."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from modalbridge.core.errors import DataError
from modalbridge.tasks.facts import bench
from modalbridge.tasks.facts.index import (
    FaissIndex,
    IdMap,
    QdrantIndex,
    TorchIndex,
    VectorIndex,
    encoder_fingerprint,
    index_files,
    load_index,
    make_index,
)

faiss = pytest.importorskip("faiss")


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """FAISS's OpenMP threads spin-wait badly on busy shared cores (IVF-PQ training 7× slower with 2)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, d: int, clusters: int = 40, spread: float = 0.3) -> np.ndarray:
    """Unit vectors around ``clusters`` centres (embeddings have structure; uniform random data has none)."""
    centres = unit(rng, clusters, d)
    x = centres[rng.integers(0, clusters, n)] + spread * unit(rng, n, d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(x: np.ndarray, ids: list[str], q: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
    s = q @ x.T
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, top, 1), [[ids[j] for j in row] for row in top]


def ids_of(n: int, start: int = 0) -> list[str]:
    return [f"Q{i}" for i in range(start, start + n)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = unit(rng, 2000, 64)
    return x, ids_of(len(x)), unit(rng, 25, 64)


def well_separated(scores: np.ndarray, k: int) -> np.ndarray:
    """Queries whose k-th and (k+1)-th exact scores differ clearly (top-k sets well defined)."""
    return scores[:, k - 1] - scores[:, k] > 1e-4


def test_faiss_flat_equals_numpy_brute_force(data):
    x, ids, q = data
    ix = FaissIndex(64)
    for a in range(0, len(x), 700):  # several adds: rows continue across batches
        ix.add(ids[a:a + 700], x[a:a + 700])
    scores, got = ix.search(q, 10)
    want_s, want = brute(x, ids, q, 11)
    np.testing.assert_allclose(scores, want_s[:, :10], atol=1e-5)
    ok = well_separated(want_s, 10)
    assert ok.sum() >= 20
    assert [g for g, o in zip(got, ok) if o] == [w[:10] for w, o in zip(want, ok) if o]
    assert isinstance(ix, VectorIndex) and len(ix) == 2000 and ix.ids[:3] == ["Q0", "Q1", "Q2"]
    assert ix.nbytes == 2000 * 64 * 4 + ix._map.nbytes


def test_backends_agree_on_top10(data):
    x, ids, q = data
    faiss_ix, qdrant_ix, torch_ix = FaissIndex(64), QdrantIndex(64, ":memory:", batch_size=500), TorchIndex(
        64, block_rows=300)  # several torch slices: the running top-k merge is exercised
    for ix in (faiss_ix, qdrant_ix, torch_ix):
        ix.add(ids, x)
    f_s, f_ids = faiss_ix.search(q, 10)
    q_s, q_ids = qdrant_ix.search(q, 10)
    t_s, t_ids = torch_ix.search(q, 10)
    np.testing.assert_allclose(q_s, f_s, atol=1e-5)
    np.testing.assert_allclose(t_s, f_s, atol=1e-5)
    ok = well_separated(brute(x, ids, q, 11)[0], 10)
    for a, b, c, o in zip(f_ids, q_ids, t_ids, ok):
        if o:
            assert a == b == c
    qdrant_ix.close()


@pytest.mark.parametrize("backend, options", [("faiss", {}), ("faiss", {"kind": "flat16"}),
                                              ("faiss", {"kind": "ivfpq", "nlist": 8, "m": 8, "nprobe": 8}),
                                              ("torch", {}), ("qdrant", {})])
def test_remove_keeps_ids_consistent(data, backend, options):
    x, ids, q = data
    ix = make_index(backend, 64, **options)
    ix.add(ids, x)
    rng = np.random.default_rng(1)
    gone = sorted(rng.choice(len(ids), 300, replace=False).tolist())
    gone_ids = [ids[i] for i in gone]
    # queries that are the removed vectors themselves: before removal each finds itself first
    q_gone = x[gone[:20]]
    assert [r[0] for r in ix.search(q_gone, 1)[1]] == gone_ids[:20]
    assert ix.remove(gone_ids) == 300
    keep = np.setdiff1d(np.arange(len(ids)), gone)
    assert ix.ids == [ids[i] for i in keep] and len(ix) == len(keep)
    _, got = ix.search(np.concatenate([q, q_gone]), 10)
    assert not set(gone_ids) & {i for row in got for i in row}
    if options.get("kind", "flat") == "flat":  # exact back-ends: still brute force over what is left
        want = brute(x[keep], [ids[i] for i in keep], q, 11)
        ok = well_separated(want[0], 10)
        assert [g for g, o in zip(got, ok) if o] == [w[:10] for w, o in zip(want[1], ok) if o]
    # a removed id can come back, and is found again
    ix.add(gone_ids[:5], x[gone[:5]])
    assert [r[0] for r in ix.search(x[gone[:5]], 1)[1]] == gone_ids[:5]
    with pytest.raises(DataError, match="already in the index"):
        ix.add([gone_ids[0]], x[:1])
    with pytest.raises(DataError, match="'Q999999' is not in the index"):
        ix.remove(["Q999999"])
    assert ix.remove(["Q999999", gone_ids[0]], missing_ok=True) == 1


def test_id_map_renumbering_and_duplicates():
    m = IdMap()
    assert m.add(["b", "a", "c"]).tolist() == [0, 1, 2]
    assert m.add(["é", "d"]).tolist() == [3, 4]  # a non-ASCII id switches the storage to unicode
    assert m.remove(["a", "é"], renumber=True).tolist() == [1, 3]
    assert m.ids() == ["b", "c", "d"] and m.find(["d", "c", "x"])[0].tolist() == [2, 1, -1]
    ids, valid = m.lookup(np.array([[2, -1, 0], [-1, -1, -1]]))
    assert ids == [["d", "b"], []] and valid.tolist() == [[True, False, True], [False] * 3]
    m.remove(["b"], renumber=False)
    m.add(["b"])
    m.remove(["b"], renumber=False)
    m.add(["b"])  # several dead entries with one id, one alive
    assert m.find(["b"])[0].tolist() == [4]
    with pytest.raises(DataError, match="appears more than once"):
        m.add(["x", "x"])
    with pytest.raises(DataError, match="empty id"):
        m.add(["y", ""])


def test_k_larger_than_index_and_minus_one_padding():
    rng = np.random.default_rng(2)
    x = unit(rng, 5, 16)
    ix = FaissIndex(16)
    ix.add(ids_of(5), x)
    scores, got = ix.search(x, 10)
    assert scores.shape == (5, 5) and all(sorted(r) == sorted(ids_of(5)) for r in got)
    assert [r[0] for r in got] == ids_of(5)  # row 0 ("Q0") is an answer like any other (the idx > 0 bug)
    assert np.isfinite(scores).all()
    # IVF with one probed list out of many: FAISS pads with −1, which must never turn into an id
    x = clustered(rng, 2000, 16, clusters=32, spread=0.1)
    ivf = FaissIndex(16, "ivfpq", nlist=64, m=4, nprobe=1)
    ivf.add(ids_of(2000), x)
    scores, got = ivf.search(x[:50], 200)
    short = [len(r) for r in got]
    assert min(short) < 200 and scores.shape == (50, 200)
    for row, s in zip(got, scores):
        assert len(set(row)) == len(row) and np.isfinite(s[:len(row)]).all() and np.isinf(s[len(row):]).all()
    assert make_index("torch", 16).search(x[:2], 3)[0].shape == (2, 0)  # empty index: nothing


def test_wrong_dimension_and_bad_vectors(data):
    x, ids, q = data
    ix = FaissIndex(64, fingerprint="minilm-l6@0123456789abcdef")
    ix.add(ids[:10], x[:10])
    with pytest.raises(DataError, match=r"queries are 32-d .* 64-d vectors \(built by encoder 'minilm-l6@"):
        ix.search(q[:, :32], 5)
    with pytest.raises(DataError, match=r"vectors must be \(n, 64\)"):
        ix.add(["Z"], x[:1, :10])
    bad = x[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(DataError, match="vector 1 of this batch is not finite"):
        ix.add(["Z1", "Z2"], bad)
    assert len(ix) == 10 and "Z1" not in ix  # nothing half-added
    with pytest.raises(DataError, match="2 ids for 1 vectors"):
        TorchIndex(64).add(["a", "b"], x[:1])
    with pytest.raises(KeyError, match="unknown index backend 'milvus'"):
        make_index("milvus", 64)


@pytest.mark.parametrize("backend, options", [("faiss", {}), ("faiss", {"kind": "flat16"}),
                                              ("faiss", {"kind": "ivfpq", "nlist": 8, "m": 8, "nprobe": 3}),
                                              ("torch", {"dtype": "float16"}), ("qdrant", {})])
def test_save_load_round_trip(tmp_path, data, backend, options):
    x, ids, q = data
    fp = encoder_fingerprint("minilm-l6", {"w": np.arange(6, dtype=np.float32)})
    ix = make_index(backend, 64, fingerprint=fp, **options)
    ix.add(ids, x)
    ix.remove(ids[:7])  # gaps in the labels of IVF / Qdrant
    before = ix.search(q, 10)
    ix.save(tmp_path, kind="rel")
    ix.save(tmp_path, kind="entity")  # both kinds in one folder: one meta.json with two entries
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["entity"]["count"] == meta["rel"]["count"] == 1993 and meta["entity"]["fingerprint"] == fp
    loaded = load_index(tmp_path, kind="rel", expect_fingerprint=fp)
    assert type(loaded) is type(ix) and loaded.ids == ix.ids and loaded.fingerprint == fp
    if backend == "faiss":
        assert loaded.kind == ix.kind and loaded.nprobe == ix.nprobe
    after = loaded.search(q, 10)
    np.testing.assert_allclose(after[0], before[0], atol=1e-6)
    assert after[1] == before[1]
    with pytest.raises(DataError, match=rf"built by encoder '{fp}', but the encoder in use is 'other@1'"):
        load_index(tmp_path, kind="entity", expect_fingerprint="other@1")


def test_reference_layout_read_and_written(tmp_path, data):
    x, ids, q = data
    # a folder as the reference writes it: IndexFlatIP, {"0": "Q…"}, the embeddings, no meta.json
    flat = faiss.IndexFlatIP(64)
    flat.add(x[:300])
    faiss.write_index(flat, str(tmp_path / "faiss_index_entity"))
    (tmp_path / "index2entity.json").write_text(json.dumps({str(i): ids[i] for i in range(300)}))
    np.save(tmp_path / "entity_embeddings.npy", x[:300])
    want = brute(x[:300], ids[:300], q, 5)[1]
    for cls in (FaissIndex, TorchIndex, QdrantIndex):
        ix = cls.load(tmp_path, expect_fingerprint="minilm-l6@x")  # no fingerprint to check: a warning only
        assert ix.search(q, 5)[1] == want and ix.fingerprint is None
    # without the npy, torch rebuilds from the FAISS flat file
    (tmp_path / "entity_embeddings.npy").unlink()
    assert TorchIndex.load(tmp_path).search(q, 5)[1] == want
    # ours, kind="rel", with embeddings: exactly the reference's files
    out = tmp_path / "ours"
    ix = FaissIndex(64)
    ix.add(ids[:300], x[:300])
    ix.remove(ids[:2])
    ix.save(out, kind="rel", embeddings=True)
    faiss_path, map_path, npy_path = index_files(out, "rel")
    assert (faiss_path.name, map_path.name, npy_path.name) == ("faiss_index_rel", "index2rel.json",
                                                                "relation_embeddings.npy")
    raw = faiss.read_index(str(faiss_path))
    assert isinstance(raw, faiss.IndexFlatIP) and raw.ntotal == 298
    mapping = json.loads(map_path.read_text())
    assert list(mapping) == [str(i) for i in range(298)] and mapping["0"] == "Q2"
    np.testing.assert_array_equal(np.load(npy_path), x[2:300])
    _, rows = raw.search(q, 3)
    assert [[mapping[str(r)] for r in row] for row in rows] == brute(x[2:300], ids[2:300], q, 3)[1]


def test_bad_folders(tmp_path, data):
    x, ids, _ = data
    ix = FaissIndex(64)
    ix.add(ids[:20], x[:20])
    ix.save(tmp_path)
    (tmp_path / "index2entity.json").write_text(json.dumps({str(i): ids[i] for i in range(19)}))
    with pytest.raises(DataError, match="holds 20 vectors but the id map has 19 ids"):
        FaissIndex.load(tmp_path)
    (tmp_path / "index2entity.json").write_text('{"0": "Q0", "x": "Q1"}')
    with pytest.raises(DataError, match="index2entity.json: field x: keys must be integer labels"):
        FaissIndex.load(tmp_path)
    with pytest.raises(DataError, match="no 'rel' index in this folder \\(has: entity\\)"):
        FaissIndex.load(tmp_path, kind="rel")
    with pytest.raises(FileNotFoundError):
        FaissIndex.load(tmp_path / "missing")


def test_fingerprint_hashes_weights():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(3, 2)
    a = encoder_fingerprint("slot-linker", lin)
    assert a.startswith("slot-linker@") and a == encoder_fingerprint("slot-linker", lin.state_dict())
    with torch.no_grad():
        lin.weight[0, 0] += 1
    assert encoder_fingerprint("slot-linker", lin) != a
    b = encoder_fingerprint("slot-linker", lin)
    assert encoder_fingerprint("slot-linker", copy.deepcopy(lin).to(torch.bfloat16)) != b
    assert encoder_fingerprint("other", lin) == "other@" + b.split("@")[1]
    assert encoder_fingerprint("minilm-l6") == "minilm-l6"


def test_approximate_recall_floor():
    rng = np.random.default_rng(3)
    x = clustered(rng, 5000, 64)
    q = clustered(rng, 100, 64)
    ids = ids_of(len(x))
    exact = FaissIndex(64)
    exact.add(ids, x)
    truth = exact.search(q, 10)[1]
    recalls = {}
    for name, ix in {"flat16": FaissIndex(64, "flat16"),
                     "ivfpq": FaissIndex(64, "ivfpq", nlist=32, m=16, nprobe=8)}.items():
        ix.add(ids, x)
        recalls[name] = bench.recall_at_k(ix.search(q, 10)[1], truth)
    print("recall@10 vs exact:", recalls)
    assert recalls["flat16"] > 0.97
    assert recalls["ivfpq"] > 0.5
    assert FaissIndex(64, "flat16").index.code_size == 128  # fp16: half of flat's 256 bytes per vector


def test_bench_helpers_stream_exactly():
    """The benchmark's chunked data and streamed exact top-k equal brute force on the whole matrix."""
    n, d, chunk = 2500, 32, 1000
    x = np.concatenate([c for _, c in bench.chunks(n, d, seed=5, chunk=chunk)])
    assert x.shape == (n, d) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(bench.unit_chunk(5, 1, chunk, d), x[chunk:2 * chunk])  # deterministic
    q, gold = bench.planted_queries(n, d, seed=5, count=12, chunk=chunk)
    scores, rows = bench.exact_topk(q, n, d, seed=5, k=10, chunk=chunk)
    want_s, want = brute(x, [str(i) for i in range(n)], q, 10)
    np.testing.assert_allclose(scores, want_s, atol=1e-5)
    assert rows[:, 0].tolist() == gold.tolist()  # the planted vector is every query's nearest
    assert bench.recall_at_k([["a", "b"], ["c"]], [["b", "a"], ["d"]]) == pytest.approx(0.5)


def test_reserve_and_compact_id_storage(data):
    x, _, q = data
    ids = bench.row_ids(0, 300)  # np.char.add output: 22 bytes per id, narrowed to the longest id ("Q299")
    assert ids.dtype.itemsize == 22
    ix = FaissIndex(64, "flat16")
    ix.reserve(1000)
    assert len(ix) == 0 and ix.index.ntotal == 0
    ix.add(ids, x[:300])
    assert ix.id_map_nbytes == 300 * (4 + 1 + 8)  # id bytes + alive flag + sort order
    ref = FaissIndex(64)
    ref.add(ids, x[:300])
    assert ix.search(q, 5)[1] == ref.search(q, 5)[1] == brute(x[:300], [f"Q{i}" for i in range(300)], q, 5)[1]
