"""The ``facts`` task declared to the trunk: open-IE surface facts → knowledge-graph facts (FaLB, thesis Ch. 5)."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin, Verb, add_precision_argument


def _prepare_arguments(p) -> None:
    p.add_argument("--wikidata", help="a Wikidata JSON dump (latest-all.json.bz2 / .gz) to convert, streamed, into "
                                      "<out>/kg/wikidata_processed[.shard-i-of-n].json (instead of indexing FaLB)")
    p.add_argument("--shard", default="0/1", help="with --wikidata: convert shard i of n ('i/n'; run n processes "
                                                  "for a parallel conversion; a finished shard is not redone)")
    p.add_argument("--language", default="en", help="with --wikidata: language of labels, descriptions, aliases")
    p.add_argument("--sitelink", help="with --wikidata: keep only items with this sitelink (enwiki: the BLINK "
                                      "entity set of entities with an English Wikipedia page)")
    p.add_argument("--no-brkg", dest="brkg", action="store_false",
                   help="do not write the benchmark-restricted KG (kg/brkg/) of the ids the facets reference")


def _link_arguments(p) -> None:
    p.add_argument("triples", nargs="*", help="surface triples 'subject | relation | object' (or a .jsonl / .txt "
                                              "file of them, one per line; FaLB records work too)")
    p.add_argument("--ckpt", required=True, help="a .ckpt of a slot_linker (or a fact_reranker) trained with "
                                                 "`modalbridge fit --config configs/facts/…`")
    p.add_argument("--sentence", action="append", default=[],
                   help="a sentence to extract triples from first (spaCy dependency open-IE; repeatable); with a "
                        "+Context model it is also the triples' context")
    p.add_argument("--context", help="the sentence the given triples come from (+Context models)")
    p.add_argument("--kg", help="the KG to link against (KG JSON, a folder of shards or a saved KG; default: the "
                                "checkpoint's training KG)")
    p.add_argument("--index", help="a saved index folder (faiss_index_entity, index2entity.json … as written by "
                                   "--save-index); refused when built by another encoder")
    p.add_argument("--save-index", help="write the encoded KG index to this folder for later runs")
    p.add_argument("--backend", default="faiss", choices=("faiss", "qdrant", "torch"),
                   help="vector index: FAISS in-process (exact), Qdrant (in-process, or --qdrant-url), torch")
    p.add_argument("--qdrant-url", help="serve the index from a Qdrant server/cluster at this URL")
    p.add_argument("-k", "--top", type=int, default=5, help="candidates printed per slot")
    p.add_argument("--rerank-k", type=int, default=3, help="with a fact_reranker checkpoint: top-k per slot "
                                                           "re-ranked as k³ facts")
    p.add_argument("--ookg", default="entropy", choices=("entropy", "confidence", "none"),
                   help="out-of-KG verdict per slot (thresholds tuned in the checkpoint's validation)")
    p.add_argument("--gold", action="store_true", help="the input file holds FaLB records: mark each link "
                                                      "correct/incorrect against their fact_ids")
    p.add_argument("--out", default="link.jsonl", help="one JSON line per triple: extraction, links, in_kg")
    p.add_argument("--report", default="link.html", help="an HTML table of the linked facts ('' to skip)")
    add_precision_argument(p)


def _encode_arguments(p) -> None:
    p.add_argument("--ckpt", required=True, help="a slot_linker (or fact_reranker) .ckpt whose encoder indexes the KG")
    p.add_argument("--out", required=True, help="the index folder (shards/ parts while encoding; the reference "
                                                "layout after the merge)")
    p.add_argument("--kg", help="the KG to encode (default: the checkpoint's training KG)")
    p.add_argument("--shard", help="encode only shard 'i/n' of the KG (one worker each, resumable); no merge")
    p.add_argument("--merge", action="store_true", help="merge the --shards n encoded shards into the index")
    p.add_argument("--shards", type=int, default=1, help="with --merge: how many shards were encoded")
    p.add_argument("--index-kind", default="flat", choices=("flat", "flat16", "ivfpq"),
                   help="FAISS index: exact fp32 (the reference's), exact fp16 (half the memory), IVF-PQ")
    p.add_argument("--chunk", type=int, default=65_536, help="entries encoded per part file")
    add_precision_argument(p)


PLUGIN = TaskPlugin(
    name="facts",
    doc="open-IE surface facts → knowledge-graph facts (FaLB: slot-linking bi-encoder, re-ranker, out-of-KG "
        "detection, FAISS/Qdrant indexes)",
    models=("modalbridge.tasks.facts.models",),
    worlds={"facts": "modalbridge.tasks.facts.world:facts_world"},
    datasets=(DatasetEntry("facts", check="modalbridge.tasks.facts.falb:check_facts",
                           prepare="modalbridge.tasks.facts.falb:prepare_facts",
                           prepare_arguments=_prepare_arguments,
                           doc="FaLB facet files (JSON arrays or JSON Lines, rebel/ synthie/ folders) and their KG "
                               "(wikidata_processed.json); prepare: summary + benchmark-restricted KG, or a "
                               "Wikidata dump → KG tables (--wikidata, --shard i/n)"),),
    benchmarks={"facts": "modalbridge.tasks.facts.bench:run"},
    demo="modalbridge.tasks.facts.demo:run_demo",
    verbs=(Verb("link", "link surface triples (or sentences, through open IE) to KG facts with a trained model: "
                        "ids, labels, scores and an out-of-KG verdict per slot",
                _link_arguments, "modalbridge.tasks.facts.infer:link_cli"),
           Verb("encode-kg", "encode a KG into a vector index with a trained pre-ranker as a batch job: --shard i/n "
                             "per worker (resumable), then --merge",
                _encode_arguments, "modalbridge.tasks.facts.encode:encode_kg_cli")),
)
