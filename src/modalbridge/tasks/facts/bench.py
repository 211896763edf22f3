"""Fact-linking scale benchmark: the entity index at the thesis's Large-KG size (card §10), measured side by side
(:func:`~modalbridge.core.benchmark.interleaved_ms`; the ratios are the claims, absolute times are this
machine's, 2 threads).

1. **index** — N = 5,794,782 random unit float32 vectors × 200 (the Large KG × the pre-ranker's D; generated in
   chunks, never whole; quick: 200k). Queries: one fact = 3 slot queries, each a KG vector plus as much noise
   again (cosine ≈ 0.71 to its "gold" row — uniform random queries have no meaningful neighbours).

   a. *compressed* (≈ 2.7 GB of index): FAISS fp16 scalar quantizer (``flat16``) and IVF-PQ (``ivfpq``,
      ``IVF4096,PQ50``) — index bytes, build time, per-fact top-10 latency at batch 1 and 64 facts, recall@10
      against the exact top-10 (streamed over the chunks) and gold@1, next to a plain ``torch.matmul`` top-k
      over the same fp16 storage (shared with the FAISS index, no copy);
   b. *exact* fp32 ``IndexFlatIP`` (4.6 GB at full size) and ``torch.matmul`` over the same fp32 storage, with
      IVF-PQ again as the common reference — only when the machine's available memory allows, else reported
      skipped with the reason.

   Memory: flat storage is reserved up front (:meth:`~.index.FaissIndex.reserve`, no reallocation peak) and
   freed heap is handed back after each chunk (:func:`_trim_heap`); the process's baseline (≈ 0.5 GB, mostly
   the torch import) is reported next to its peak.

2. **encoding** — KG entries (``"label <ENT> description"``, 32 tokens) encoded per second by MiniLM-L6, fp32 vs
   bf16 autocast (quick: the tiny random BERT), and what that means for encoding the Large KG.

``quick``: small sizes, a smoke run of the benchmark, not a measurement.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import time
from collections.abc import Callable, Iterator

import faiss
import numpy as np
import torch

from modalbridge.core.benchmark import interleaved_ms
from modalbridge.core.precision import autocast, cpu_computes_bf16
from modalbridge.tasks.facts.index import FaissIndex, matmul_topk

__all__ = ["DIM", "LARGE_KG", "chunks", "exact_topk", "planted_queries", "recall_at_k", "run", "unit_chunk"]

#: the thesis's Large KG (Wikidata entities with a Wikipedia page, BigGraph-filtered) and the pre-ranker's D
LARGE_KG, DIM = 5_794_782, 200
K = 10


# ----------------------------------------------------------------------------------------------------- data
def unit_chunk(seed: int, index: int, rows: int, dim: int) -> np.ndarray:
    """Chunk ``index`` of the benchmark matrix: ``(rows, dim)`` float32 unit vectors, a function of
    ``(seed, index)`` alone (regenerated, never stored)."""
    x = np.random.default_rng([seed, index]).standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def chunks(n: int, dim: int, seed: int = 0, chunk: int = 100_000) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, (≤ chunk, dim) float32)`` covering rows ``0..n-1`` of the benchmark matrix."""
    for i, start in enumerate(range(0, n, chunk)):
        yield start, unit_chunk(seed, i, min(chunk, n - start), dim)


def row_ids(start: int, rows: int) -> np.ndarray:
    """``"Q<row>"`` ids of rows ``start..start+rows-1`` (bytes array)."""
    return np.char.add(b"Q", np.arange(start, start + rows).astype("S"))


def planted_queries(n: int, dim: int, seed: int = 0, count: int = 3 * 64, chunk: int = 100_000,
                    noise: float = 1.0, max_chunks: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``(queries (count, dim), gold rows (count,))``: each query = a matrix row + a random vector of norm
    ``noise``, normalised (cosine 1/√(1+noise²) to its gold row). Gold rows come from ≤ ``max_chunks`` chunks
    (only those are regenerated)."""
    rng = np.random.default_rng([seed, 1_000_003])
    n_chunks = -(-n // chunk)
    picked = np.sort(rng.choice(n_chunks, min(max_chunks, n_chunks), replace=False))
    which = picked[rng.integers(0, len(picked), count)]
    sizes = np.minimum(chunk, n - which * chunk)
    gold = which * chunk + (rng.random(count) * sizes).astype(np.int64)
    x = np.empty((count, dim), dtype=np.float32)
    for c in picked:
        sel = which == c
        x[sel] = unit_chunk(seed, int(c), int(min(chunk, n - c * chunk)), dim)[gold[sel] - c * chunk]
    noise_dir = rng.standard_normal((count, dim)).astype(np.float32)
    q = x + noise * noise_dir / np.linalg.norm(noise_dir, axis=1, keepdims=True)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), gold


class StreamingTopK:
    """Exact top-``k`` of ``queries (q, d)`` over a matrix seen one chunk at a time (torch matmul)."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.q, self.k = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)), k
        self.scores = torch.empty((len(queries), 0))
        self.rows = torch.empty((len(queries), 0), dtype=torch.int64)

    def update(self, x: np.ndarray, start: int) -> None:
        s, r = matmul_topk(self.q, [torch.from_numpy(x)], self.k)
        s, r = torch.cat([self.scores, s], 1), torch.cat([self.rows, r + start], 1)
        self.scores, keep = s.topk(min(self.k, s.shape[1]), dim=1)
        self.rows = r.gather(1, keep)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scores.numpy(), self.rows.numpy()


def exact_topk(queries: np.ndarray, n: int, dim: int, seed: int = 0, k: int = K,
               chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (q, k), rows (q, k))``: the exact top-``k`` over the benchmark matrix, streamed."""
    top = StreamingTopK(queries, k)
    for start, x in chunks(n, dim, seed, chunk):
        top.update(x, start)
    return top.result()


def recall_at_k(found: list[list[str]], exact: list[list[str]]) -> float:
    """Mean over queries of |found ∩ exact| / |exact| (recall@k of an approximate index vs the exact top-k)."""
    return float(np.mean([len(set(f) & set(e)) / max(len(e), 1) for f, e in zip(found, exact)]))


def _gold_at(found: list[list[str]], gold: np.ndarray, k: int) -> float:
    return float(np.mean([f"Q{g}" in row[:k] for row, g in zip(found, gold)]))


# --------------------------------------------------------------------------------------------------- memory
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _available_mb() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 1024


def _trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; no-op elsewhere): IVF lists grow by
    reallocation and glibc keeps the freed buffers (≈ +80% of the IVF-PQ index's memory at Large-KG size)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _storage_view(index: FaissIndex) -> torch.Tensor:
    """The rows of a FAISS flat (fp32) or fp16 scalar-quantizer index as a torch tensor sharing its memory
    (valid while the index lives unchanged)."""
    raw = index.index
    n, d = raw.ntotal, raw.d
    if isinstance(raw, faiss.IndexFlat):
        return torch.from_numpy(faiss.rev_swig_ptr(raw.get_xb(), n * d).reshape(n, d))
    codes = faiss.rev_swig_ptr(raw.codes.data(), n * raw.code_size)
    return torch.from_numpy(codes.view(np.float16).reshape(n, d))  # SQfp16 codes are IEEE half floats


# ---------------------------------------------------------------------------------------------------- index
def _latency(indexes: dict, torch_name: str, storage: torch.Tensor, q: np.ndarray, repeats: int,
             warmup: int = 1) -> tuple[dict[str, float], dict[str, list[list[str]]]]:
    """``({name: ms per fact}, {name: top-10 ids of the last call})`` of each index's search and of
    :func:`matmul_topk` over ``storage``, interleaved; one call = ``len(q) / 3`` facts."""
    last: dict = {}

    def search(name: str, ix: FaissIndex) -> Callable[[], None]:
        def run() -> None:
            last[name] = ix.search(q, K)[1]
        return run

    def baseline() -> None:
        last[torch_name] = matmul_topk(q, [storage], K)[1]

    fns = {name: search(name, ix) for name, ix in indexes.items()}
    fns[torch_name] = baseline
    ms = interleaved_ms(fns, repeats=repeats, warmup=warmup)
    last[torch_name] = [[f"Q{r}" for r in row] for row in last[torch_name].tolist()]
    return {name: row["median_ms"] / (len(q) / 3) for name, row in ms.items()}, last


def compressed(n: int, dim: int, queries: np.ndarray, gold: np.ndarray, *, seed: int, chunk: int, nlist: int,
               m: int, nprobe: int, repeats: tuple[int, int]) -> tuple[dict, FaissIndex, list[list[str]]]:
    """Part a: fp16 and IVF-PQ built side by side in one pass over the chunks (plus the exact top-10 of the
    queries); returns ``(results, the IVF-PQ index, exact top-10 ids)``."""
    rss0 = _rss_mb()
    fp16 = FaissIndex(dim, "flat16")
    pq = FaissIndex(dim, "ivfpq", nlist=nlist, m=m, nprobe=nprobe)
    t0 = time.perf_counter()
    fp16.reserve(n)  # no reallocation peak while it grows
    build = {"flat16": time.perf_counter() - t0, "ivfpq": 0.0}
    sample = []
    for _, x in chunks(min(n, pq.train_size), dim, seed, chunk):
        sample.append(x)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # k-means of 4-d PQ slices: OpenMP spin-waits dominate on shared cores
    t0 = time.perf_counter()
    pq.train(np.concatenate(sample))
    build["ivfpq_train"] = time.perf_counter() - t0
    faiss.omp_set_num_threads(threads)
    del sample
    truth = StreamingTopK(queries, K)
    for start, x in chunks(n, dim, seed, chunk):
        ids = row_ids(start, len(x))
        for name, ix in (("flat16", fp16), ("ivfpq", pq)):
            t0 = time.perf_counter()
            ix.add(ids, x)
            build[name] += time.perf_counter() - t0
        truth.update(x, start)
        _trim_heap()
    build["ivfpq"] += build["ivfpq_train"]
    exact = [[f"Q{r}" for r in row] for row in truth.result()[1]]
    storage = _storage_view(fp16)
    out: dict = {"n": n, "dim": dim, "rss_before_mb": rss0, "ivfpq_train_s": build["ivfpq_train"]}
    indexes = {"flat16": fp16, "ivfpq": pq}
    lat1, _ = _latency(indexes, "torch-fp16", storage, queries[:3], repeats[0])
    # batch 64 = all the queries (memory already warm from batch 1); its results give the recalls
    lat64, found = _latency(indexes, "torch-fp16", storage, queries, repeats[1], warmup=0)
    for name in ("flat16", "ivfpq", "torch-fp16"):
        ix = indexes.get(name)
        out[name] = {"index_bytes": ix.nbytes - ix.id_map_nbytes if ix else int(storage.nelement() * 2),
                     "id_map_bytes": ix.id_map_nbytes if ix else 0,
                     "build_s": build.get(name), "fact_ms_b1": lat1[name], "fact_ms_b64": lat64[name],
                     "recall@10": recall_at_k(found[name], exact), "gold@1": _gold_at(found[name], gold, 1)}
        out[name]["bytes_per_vector"] = out[name]["index_bytes"] / n
    for name in ("flat16", "ivfpq"):
        out[name]["speedup_vs_torch_b1"] = lat1["torch-fp16"] / lat1[name]
        out[name]["speedup_vs_torch_b64"] = lat64["torch-fp16"] / lat64[name]
    sweep = {}
    for probe in (max(nprobe // 4, 1), nprobe, nprobe * 4):
        pq.nprobe = probe
        t0 = time.perf_counter()
        res = pq.search(queries, K)[1]
        sweep[probe] = {"recall@10": recall_at_k(res, exact), "gold@1": _gold_at(res, gold, 1),
                        "fact_ms_b64": (time.perf_counter() - t0) * 1e3 / (len(queries) / 3)}
    pq.nprobe = nprobe
    out["ivfpq_nprobe"] = sweep
    out["peak_rss_mb"], out["rss_mb"] = _peak_rss_mb(), _rss_mb()
    del storage, fp16
    gc.collect()
    return out, pq, exact


def exact_flat(n: int, dim: int, queries: np.ndarray, exact: list[list[str]], pq: FaissIndex, *, seed: int,
               chunk: int, repeats: tuple[int, int]) -> dict:
    """Part b: exact fp32 ``IndexFlatIP`` vs ``torch.matmul`` on the same memory (+ IVF-PQ), if memory allows."""
    need_mb, avail_mb = n * dim * 4 / 2**20, _available_mb()
    if avail_mb < 1.25 * need_mb + 1024:
        return {"skipped": f"the fp32 matrix needs {need_mb:.0f} MB and only {avail_mb:.0f} MB are available"}
    flat = FaissIndex(dim, "flat")
    t0 = time.perf_counter()
    flat.reserve(n)
    for start, x in chunks(n, dim, seed, chunk):
        flat.add(row_ids(start, len(x)), x)
    build = time.perf_counter() - t0  # includes generating the random chunks
    storage = _storage_view(flat)
    indexes = {"flat": flat, "ivfpq": pq}
    lat1, _ = _latency(indexes, "torch-fp32", storage, queries[:3], repeats[0])
    lat64, found = _latency(indexes, "torch-fp32", storage, queries, repeats[1], warmup=0)
    out = {"flat": {"index_bytes": flat.nbytes - flat.id_map_nbytes, "build_s_incl_generation": build,
                    "fact_ms_b1": lat1["flat"], "fact_ms_b64": lat64["flat"],
                    "same_top10_as_streamed": recall_at_k(found["flat"], exact)},
           "torch-fp32": {"fact_ms_b1": lat1["torch-fp32"], "fact_ms_b64": lat64["torch-fp32"],
                          "same_top10_as_streamed": recall_at_k(found["torch-fp32"], exact)},
           "ivfpq": {"fact_ms_b1": lat1["ivfpq"], "fact_ms_b64": lat64["ivfpq"]}}
    for name in ("flat", "ivfpq"):
        out[name]["speedup_vs_torch_b1"] = lat1["torch-fp32"] / lat1[name]
        out[name]["speedup_vs_torch_b64"] = lat64["torch-fp32"] / lat64[name]
    out["peak_rss_mb"], out["rss_mb"] = _peak_rss_mb(), _rss_mb()
    del storage, flat
    gc.collect()
    return out


# ------------------------------------------------------------------------------------------------- encoding
def encoding(quick: bool, batch: int = 128, length: int = 32, repeats: int = 5) -> dict:
    """KG entries/s of the text encoder, fp32 vs bf16 autocast, and the two precisions' agreement."""
    from modalbridge.nn.bert import TINY_BERT, load_bert, load_tokenizer

    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = load_bert(bert_config=TINY_BERT if quick else None).eval()
    rng = np.random.default_rng(0)
    words = ("river city county village football club album song film novel politician painter species "
             "family language mountain island station school university company band district").split()
    texts = [f"{' '.join(rng.choice(words, 2))} {i} <ENT> {' '.join(rng.choice(words, 24))}" for i in range(batch)]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt")

    def encode(precision: str):
        def run() -> torch.Tensor:
            with torch.inference_mode(), autocast(precision, "cpu"):
                h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            return torch.nn.functional.normalize(h[:, 0].float(), dim=-1)
        return run

    fns = {"fp32": encode("32-true")}
    if cpu_computes_bf16():
        fns["bf16"] = encode("bf16-mixed")
    ms = interleaved_ms(fns, repeats=repeats)
    out = {"encoder": "tiny random BERT" if quick else "MiniLM-L6", "batch": batch, "tokens": length}
    for name in fns:
        out[f"{name}_entities_per_s"] = batch / ms[name]["median_ms"] * 1e3
    if "bf16" in fns:
        out["bf16_speedup"] = ms["fp32"]["median_ms"] / ms["bf16"]["median_ms"]
        out["bf16_min_cosine_to_fp32"] = float((fns["fp32"]() * fns["bf16"]()).sum(-1).min())
    best = max(v for k, v in out.items() if k.endswith("_entities_per_s"))
    out["large_kg_hours"] = LARGE_KG / best / 3600
    return out


# ---------------------------------------------------------------------------------------------------------- run
def run(quick: bool = False) -> dict:
    threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads[0])
        faiss.omp_set_num_threads(threads[1])


def _run(quick: bool) -> dict:
    n = 200_000 if quick else LARGE_KG
    chunk = 50_000 if quick else 100_000
    nlist, m, nprobe = (256, 50, 16) if quick else (4096, 50, 64)
    repeats = (3, 1) if quick else (5, 3)
    seed = 0
    results: dict = {}
    queries, gold = planted_queries(n, DIM, seed, count=3 * 64, chunk=chunk)
    print(f"[bench facts] index of {n:,} × {DIM} random unit vectors, 3 slot queries per fact, top-{K}, "
          f"2 threads", flush=True)
    a, pq, exact = compressed(n, DIM, queries, gold, seed=seed, chunk=chunk, nlist=nlist, m=m, nprobe=nprobe,
                              repeats=repeats)
    results["compressed"] = a
    for name, label in (("flat16", "FAISS fp16 SQ"), ("ivfpq", f"FAISS IVF{nlist},PQ{m} nprobe {nprobe}"),
                        ("torch-fp16", "torch.matmul (fp16 storage)")):
        r = a[name]
        speed = (f"; vs torch {r['speedup_vs_torch_b1']:.2f}× (b1) {r['speedup_vs_torch_b64']:.2f}× (b64)"
                 if "speedup_vs_torch_b1" in r else "")
        build = f", built in {r['build_s']:.1f} s" if r["build_s"] is not None else ""
        print(f"  {label}: {r['index_bytes'] / 2**20:.0f} MB ({r['bytes_per_vector']:.0f} B/vector; id map "
              f"{r['id_map_bytes'] / 2**20:.0f} MB){build}; "
              f"per fact {r['fact_ms_b1']:.1f} ms (batch 1), {r['fact_ms_b64']:.2f} ms (batch 64){speed}; "
              f"recall@10 {r['recall@10']:.3f}, gold@1 {r['gold@1']:.3f}", flush=True)
    print("  IVF-PQ nprobe sweep: " + ", ".join(
        f"{p}: recall@10 {s['recall@10']:.3f} gold@1 {s['gold@1']:.3f} {s['fact_ms_b64']:.2f} ms/fact"
        for p, s in a["ivfpq_nprobe"].items()), flush=True)
    print(f"  process memory: peak {a['peak_rss_mb']:.0f} MB (before building {a['rss_before_mb']:.0f} MB); "
          f"IVF-PQ training (single-threaded) {a['ivfpq_train_s']:.1f} s of its build", flush=True)
    results["exact"] = b = exact_flat(n, DIM, queries, exact, pq, seed=seed, chunk=chunk, repeats=repeats)
    if "skipped" in b:
        print(f"[bench facts] exact fp32 flat: skipped — {b['skipped']}", flush=True)
    else:
        f, t, p = b["flat"], b["torch-fp32"], b["ivfpq"]
        print(f"[bench facts] exact fp32 IndexFlatIP: {f['index_bytes'] / 2**20:.0f} MB; per fact "
              f"{f['fact_ms_b1']:.1f} ms (batch 1) / {f['fact_ms_b64']:.2f} ms (batch 64) vs torch.matmul fp32 "
              f"{t['fact_ms_b1']:.1f} / {t['fact_ms_b64']:.2f} ms → FAISS {f['speedup_vs_torch_b1']:.2f}× / "
              f"{f['speedup_vs_torch_b64']:.2f}×; IVF-PQ {p['fact_ms_b1']:.2f} / {p['fact_ms_b64']:.3f} ms "
              f"({p['speedup_vs_torch_b1']:.0f}× / {p['speedup_vs_torch_b64']:.0f}×); top-10 equal to the "
              f"streamed exact one: FAISS {f['same_top10_as_streamed']:.3f}, torch "
              f"{t['same_top10_as_streamed']:.3f}; peak memory {b['peak_rss_mb']:.0f} MB",
              flush=True)
    del pq
    gc.collect()
    results["encoding"] = e = encoding(quick, batch=16 if quick else 128, repeats=2 if quick else 5)
    line = ", ".join(f"{k.split('_')[0]} {v:.0f}" for k, v in e.items() if k.endswith("_entities_per_s"))
    extra = (f" → bf16 {e['bf16_speedup']:.2f}× (min cosine to fp32 {e['bf16_min_cosine_to_fp32']:.6f})"
             if "bf16_speedup" in e else " (this CPU does not compute bf16 natively: bf16 not measured)")
    print(f"[bench facts] encoding {e['encoder']} ({e['tokens']} tokens, batch {e['batch']}): entities/s {line}"
          f"{extra}; the Large KG would take {e['large_kg_hours']:.1f} h on these cores", flush=True)
    return results
