"""The ``atlas`` task declared to the trunk: medical text → 3-D points in a human atlas (Text2Atlas, SOD loss)."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin, Verb, add_precision_argument


def _prepare_arguments(p) -> None:
    p.add_argument("--atlas", help="the atlas: SIO innerorgans/ folder, a labelled NIfTI (label table beside it) "
                                   "or an atlas.npz (default: found under root)")
    p.add_argument("--glossary", help="JSON file of SIO glossary rules replacing the built-in ones (keys drop, "
                                      "merges, renames, extra_aliases …; \"extend\": true adds to them)")
    p.add_argument("--bioasq", help="BioASQ allMeSH JSON or a folder of *.ndjson (default: found under root)")
    p.add_argument("--cap", type=int, default=500, help="articles kept per organ in each pool (paper: 500)")
    p.add_argument("--seed", type=int, default=0, help="shuffle and 70/15/15 split seed (the paper's had none)")
    p.add_argument("--tokenizer", default="minilm-l6",
                   help="WordPiece vocabulary of the length filter (paper: bert-base-uncased; same vocabulary)")
    p.add_argument("--max-tokens", type=int, default=512, help="keep articles shorter than this many ids "
                                                               "([CLS]/[SEP] included)")


def _ground_arguments(p) -> None:
    p.add_argument("text", nargs="?", default="", help="the text to ground (e.g. an abstract); with --retrieve, "
                                                       "the query text (or use --xyz / --organ)")
    p.add_argument("--ckpt", required=True, help="a .ckpt written by `modalbridge fit --config configs/atlas/…`")
    p.add_argument("--nearest", type=int, default=3, help="how many nearest organs to print")
    p.add_argument("--picture", default="ground.png", help="three orthogonal slices through the point (.png)")
    p.add_argument("--html", default="ground.html", help="interactive 3-D view (self-contained, opens offline); "
                                                         "'' to skip")
    p.add_argument("--retrieve", action="store_true",
                   help="return the corpus documents nearest the text's point, --xyz or --organ")
    p.add_argument("--xyz", help="with --retrieve: a point 'x,y,z' in centred mm")
    p.add_argument("--organ", help="with --retrieve: an organ name (its deep-inside centre is the query)")
    p.add_argument("--corpus", help="with --retrieve: a processed split JSON (default: the checkpoint's test split)")
    p.add_argument("-k", "--k", type=int, default=5, help="with --retrieve: documents to return")
    p.add_argument("--atlas", help="atlas to use instead of the checkpoint's training data (atlas.npz, SIO "
                                   "innerorgans/ or a labelled NIfTI)")
    add_precision_argument(p)


PLUGIN = TaskPlugin(
    name="atlas",
    doc="medical text → 3-D points in a human atlas (Text2Atlas: SOD loss and the thesis's baselines)",
    models=("modalbridge.tasks.atlas.models",),
    worlds={"atlas": "modalbridge.tasks.atlas.world:torso_world",
            "atlas_brain": "modalbridge.tasks.atlas.world:brain_world"},
    datasets=(DatasetEntry("atlas", check="modalbridge.tasks.atlas.prepare:check_atlas",
                           prepare="modalbridge.tasks.atlas.prepare:prepare_atlas",
                           prepare_arguments=_prepare_arguments,
                           doc="SIO atlas (labels/*.tif + objectlist.txt) or a labelled NIfTI, and BioASQ allMeSH "
                               "articles (prepare: atlas.npz + the organ-labelled corpus splits)"),),
    benchmarks={"atlas": "modalbridge.tasks.atlas.bench:run"},
    demo="modalbridge.tasks.atlas.demo:run_demo",
    verbs=(Verb("ground", "place a medical text in the 3-D atlas with a trained model (or retrieve the "
                          "documents nearest a point or organ), and draw it",
                _ground_arguments, "modalbridge.tasks.atlas.infer:ground_cli"),),
)
