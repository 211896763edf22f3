"""``modalbridge demo atlas``: Text2Atlas on the atlas world — the thesis's Table 4.1 and 4.3 claims measured with
their uncertainty, in a few minutes on 2 CPU cores.

Per seed, through the library's Lightning pipeline (``Trainer.fit`` / ``Trainer.test`` of
:class:`~modalbridge.tasks.atlas.module.AtlasModule`), all on one small BERT recipe (:class:`DemoConfig`):

1. the SOD regressor, the MSE regressor and the multi-label organ classifier trained on the world's documents
   (MeSH organ targets) and tested on its test documents, beside the centre, random and frequency baselines;
2. per held-out organ, an SOD regressor trained without any document about that organ alone (and the organ
   stripped from the others), tested on the documents about it alone, beside the centre baseline.

Claims, each the seed-mean per-document difference with a 95 % paired bootstrap over test documents and Student's t
over seeds: SOD beats the MSE regressor on IOR (points) and NVD (cm), SOD beats the classifier on NVD-O (cm), and
held-out organs land closer to their organ than the centre baseline (NVD, cm). The report opens with the claim table,
then the results beside the thesis's numbers, the one-sided Wilcoxon tests, and pictures of predictions in the atlas.
"""

from __future__ import annotations

import dataclasses
import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from modalbridge.core.claims import Claim, choose_config, demo_finish, demo_start, measure_claim, paired_claim
from modalbridge.core.precision import describe_precision
from modalbridge.core.report import table_html, write_report
from modalbridge.core.trainer import Trainer
from modalbridge.nn.bert import bert_kwargs, describe_bert

SOD, MSE, CLASSIFIER = "SOD", "MSE regressor", "classifier"
CENTRE, RANDOM, FREQUENCY = "centre", "random", "frequency"
#: trained systems: (registered model, loss)
TRAINED = {SOD: ("sod_regressor", "sod"), MSE: ("sod_regressor", "mse"), CLASSIFIER: ("organ_classifier", "bce")}
#: naive systems: registered model (nothing to train)
NAIVE = {CENTRE: "centre", RANDOM: "random_organ", FREQUENCY: "frequency"}
#: thesis Table 4.1 (IOR %, NVD cm, NVD-O cm)
THESIS = {RANDOM: (8.9, 17.9, 19.0), CENTRE: (6.7, 13.3, 13.3), FREQUENCY: (10.9, 13.9, 15.4),
          MSE: (9.9, 6.8, 7.0), CLASSIFIER: (90.8, 0.9, 8.2), SOD: (89.4, 0.8, 2.5)}

#: the demo's encoder: a 2-layer, 64-d BERT initialised at random over MiniLM's WordPiece vocabulary (the world's
#: templated abstracts need no pretraining, and a CPU run of a few minutes affords thousands of its steps)
DEMO_BERT = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128}


@dataclass(frozen=True)
class DemoConfig:
    """The demo's recipe: every trained system on :data:`DEMO_BERT` (``bert_config``; ``None`` = the pretrained
    ``bert``), AdamW ``lr`` constant with weight decay 0.01, clip 2.0, batch 32, SOD at the paper's best setting
    (γp 0.1, γo 1.0, N = 100); ``held_out``: the organs of the held-out protocol (one model each; ``("*",)``: every
    organ of the atlas, the thesis's protocol — ``--long``)."""

    bert: str = "minilm-l6"
    bert_config: dict | None = dataclasses.field(default_factory=lambda: dict(DEMO_BERT))
    epochs: int = 6
    lr: float = 1e-3
    batch_size: int = 32
    held_out: tuple[str, ...] = ("kidney", "pancreas")
    max_records: int | None = None  # the first documents of each split only (smoke tests)
    seeds: tuple[int, ...] = (0,)
    precision: str = "auto"
    bootstrap: int = 1000
    world: str = "atlas"  # or "atlas_brain": the real MNI152 atlas with its templated corpus

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        return dataclasses.replace(cls(epochs=1, max_records=160, held_out=("kidney",), bootstrap=200), **overrides)

    @classmethod
    def long(cls, **overrides: Any) -> DemoConfig:
        return dataclasses.replace(cls(epochs=10, seeds=(0, 1, 2), held_out=("*",)), **overrides)

    def model_kwargs(self) -> dict[str, Any]:
        return bert_kwargs(self.bert, self.bert_config)

    def encoder(self) -> str:
        return describe_bert(self.bert, self.bert_config)


def held_out_organs(cfg: DemoConfig, atlas) -> tuple[str, ...]:
    """The organs of the held-out protocol: ``cfg.held_out``, or every organ of ``atlas`` for ``("*",)``."""
    return tuple(atlas.organs) if cfg.held_out == ("*",) else cfg.held_out


def _data(cfg: DemoConfig, seed: int, held_out: str | None = None):
    from modalbridge.tasks.atlas.data import AtlasDataModule

    return AtlasDataModule(root=f"world://{cfg.world}/processed", tokenizer=cfg.bert, batch_size=cfg.batch_size,
                           seed=seed, held_out=held_out,
                           max_records=cfg.max_records)


def _trainer(cfg: DemoConfig, epochs: int = 1) -> L.Trainer:
    return Trainer(max_epochs=epochs, accelerator="cpu", devices=1, precision=cfg.precision, logger=False,
                   enable_checkpointing=False, gradient_clip_val=2.0, limit_val_batches=0, num_sanity_val_steps=0,
                   enable_progress_bar=False, enable_model_summary=False)


def _module(cfg: DemoConfig, dm, model: str, loss: str, seed: int):
    from modalbridge.tasks.atlas.module import AtlasModule

    kwargs = cfg.model_kwargs() if loss != "none" else {}
    return AtlasModule(model, kwargs, heads=dm.heads, loss=loss, lr=cfg.lr, eval_seed=seed)


def _test(cfg: DemoConfig, module, dm) -> dict[str, Any]:
    _trainer(cfg).test(module, datamodule=dm, verbose=False)
    rows = next(iter(module.last_eval_rows.values()))
    return {"metrics": {k.partition("/")[2]: v for k, v in module.last_eval_metrics.items()},
            "distance": rows["distance"].double(), "point": rows["point"].double(), "eval_organs": rows["eval_organs"]}


def _fit_and_test(cfg: DemoConfig, dm, model: str, loss: str, seed: int, label: str) -> dict[str, Any]:
    L.seed_everything(seed, workers=True, verbose=False)
    module = _module(cfg, dm, model, loss, seed)
    t0 = time.time()
    _trainer(cfg, cfg.epochs).fit(module, datamodule=dm)
    fitted = time.time() - t0
    result = _test(cfg, module.eval(), dm)
    result["seconds"] = {"fit": fitted, "test": time.time() - t0 - fitted}
    m = result["metrics"]
    print(f"[demo] seed {seed}: {label} trained {cfg.epochs} epochs in {fitted:.0f} s: IOR {m['ior']:.1f} %, "
          f"NVD {m['nvd']:.2f} cm, NVD-O {m['nvdo']:.2f} cm", flush=True)
    return result


def _train_seed(cfg: DemoConfig, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"held_out": {}}
    dm = _data(cfg, seed)
    for name, (model, loss) in TRAINED.items():
        out[name] = _fit_and_test(cfg, dm, model, loss, seed, name)
    for name, model in NAIVE.items():
        L.seed_everything(seed, workers=True, verbose=False)
        out[name] = _test(cfg, _module(cfg, dm, model, "none", seed), dm)
    out["atlas"] = dm.atlas
    out["texts"] = [r["text"] for r in dm.records("test")]
    for organ in held_out_organs(cfg, dm.atlas):
        held = _data(cfg, seed, held_out=organ)
        sod = _fit_and_test(cfg, held, "sod_regressor", "sod", seed, f"SOD without {organ}")
        L.seed_everything(seed, workers=True, verbose=False)
        centre = _test(cfg, _module(cfg, held, "centre", "none", seed), held)
        out["held_out"][organ] = {SOD: sod, CENTRE: centre}
    return out


def _nvdo(dist: torch.Tensor) -> torch.Tensor:
    """NVD-O (cm) along the last axis: Σ dist / #{dist > 0} / 10."""
    return dist.sum(-1) / (dist > 0).sum(-1).clamp(min=1) / 10


def claims(per_seed: list[dict[str, Any]], cfg: DemoConfig) -> list[Claim]:
    """Table 4.1 and 4.3 claims, paired over test documents (and held-out documents), seed-averaged."""
    def stacked(name):
        return torch.stack([s[name]["distance"] for s in per_seed])  # (seeds, docs) mm

    sod, mse, clf = stacked(SOD), stacked(MSE), stacked(CLASSIFIER)
    hits = {k: (v < 10).double() * 100 for k, v in (("sod", sod), ("mse", mse))}
    found = []
    ior_gain = hits["sod"] - hits["mse"]
    found.append(paired_claim("SOD > MSE regressor, IOR", "Table 4.1: 89.4 vs 9.9 %", ior_gain,
                              resamples=cfg.bootstrap, unit="points", item_name="documents"))
    nvd_gain = (mse - sod) / 10
    found.append(paired_claim("SOD < MSE regressor, NVD", "Table 4.1: 0.8 vs 6.8 cm", nvd_gain,
                              resamples=cfg.bootstrap, unit="cm", item_name="documents"))
    found.append(measure_claim("SOD < classifier, NVD-O", "Table 4.1: 2.5 vs 8.2 cm",
                               lambda idx: (_nvdo(clf[:, idx]) - _nvdo(sod[:, idx])).mean(0), sod.shape[1],
                               [float(_nvdo(c) - _nvdo(s)) for c, s in zip(clf, sod)], resamples=cfg.bootstrap,
                               unit="cm", item_name="documents"))
    organs = list(per_seed[0]["held_out"])
    if organs:
        # every held-out organ's documents, concatenated (paired per document), seed-averaged
        gain = torch.stack([torch.cat([(s["held_out"][o][CENTRE]["distance"] - s["held_out"][o][SOD]["distance"]) / 10
                                       for o in organs]) for s in per_seed])
        named = ", ".join(organs) if len(organs) <= 4 else f"{len(organs)} organs"
        found.append(paired_claim(f"held-out organs: SOD < centre, NVD ({named})", "Table 4.3: 7.5 vs 15.8 cm",
                                  gain, resamples=cfg.bootstrap, unit="cm", item_name="documents"))
    return found


def wilcoxon_rows(per_seed: list[dict[str, Any]], cfg: DemoConfig) -> list[dict[str, Any]]:
    """One-sided Wilcoxon signed-rank tests on paired per-document distances (the thesis's test), first seed."""
    from modalbridge.tasks.atlas.metrics import wilcoxon_less

    seed = per_seed[0]
    pairs = [("SOD < MSE regressor (NVD)", seed[SOD]["distance"], seed[MSE]["distance"]),
             ("SOD < classifier (NVD)", seed[SOD]["distance"], seed[CLASSIFIER]["distance"])]
    for organ in seed["held_out"]:
        pairs.append((f"SOD < centre, held-out {organ} (NVD)", seed["held_out"][organ][SOD]["distance"],
                      seed["held_out"][organ][CENTRE]["distance"]))
    rows = []
    for name, a, b in pairs:
        p = wilcoxon_less(a.numpy(), b.numpy())
        rows.append({"test": name, "documents": len(a), "p (one-sided)": f"{p:.2g}", "p < 0.01": "yes" if p < 0.01
                     else "no"})
    return rows


def run_demo(quick: bool = False, out: str | Path | None = None, config: DemoConfig | None = None, *,
             seeds: list[int] | None = None, long: bool = False) -> Path:
    """Run the demo; returns the path of ``report.html``."""
    cfg = choose_config(DemoConfig, config, quick=quick, long=long, seeds=seeds)
    out, t_start = demo_start("atlas", cfg, out, f"world://{cfg.world}", f"{cfg.epochs} epochs")
    per_seed = [_train_seed(cfg, s) for s in cfg.seeds]
    found = claims(per_seed, cfg)
    elapsed = time.time() - t_start
    report = _write(cfg, out, per_seed, found, elapsed)
    demo_finish(found, t_start, report)
    return report


# -- report --------------------------------------------------------------------------------------------------
def _results_rows(per_seed: list[dict], cfg: DemoConfig) -> list[dict[str, Any]]:
    from modalbridge.metrics.uncertainty import seed_interval

    rows = []
    for name in (*TRAINED, *NAIVE):
        row: dict[str, Any] = {"system": name}
        for metric, label in (("ior", "IOR %"), ("nvd", "NVD cm"), ("nvdo", "NVD-O cm")):
            mean, low, high = seed_interval([s[name]["metrics"][metric] for s in per_seed])
            se = per_seed[0][name]["metrics"][f"{metric}_se"]
            row[label] = f"{mean:.1f} ± {se:.1f}" if low != low else f"{mean:.1f} ± {(high - low) / 2:.1f}"
        for k in (1, 5, 10):
            if f"r@{k}" in per_seed[0][name]["metrics"]:
                row[f"R@{k}"] = f"{np.mean([s[name]['metrics'][f'r@{k}'] for s in per_seed]):.1f}"
        thesis = THESIS[name]
        row["thesis IOR / NVD / NVD-O"] = f"{thesis[0]} / {thesis[1]} / {thesis[2]}"
        rows.append(row)
    return rows


def _held_out_rows(per_seed: list[dict], cfg: DemoConfig) -> list[dict[str, Any]]:
    from modalbridge.tasks.atlas.glossary import FUNCTIONAL_GROUPS
    from modalbridge.tasks.atlas.metrics import igr

    rows = []
    atlas = per_seed[0]["atlas"]
    for organ in per_seed[0]["held_out"]:
        group = next((g for g, members in FUNCTIONAL_GROUPS.items() if organ in members), None)
        members = [atlas.organ_index(o) for o in FUNCTIONAL_GROUPS.get(group, []) if o in atlas.organs]
        hull = np.concatenate([atlas.points_mm(o) for o in members]) if len(members) else None
        for name in (SOD, CENTRE):
            results = [s["held_out"][organ][name] for s in per_seed]
            row = {"held-out organ": organ, "system": name, "documents": len(results[0]["distance"]),
                   "NVD cm": f"{np.mean([r['metrics']['nvd'] for r in results]):.1f}",
                   "median cm": f"{np.median(results[0]['distance'].numpy()) / 10:.1f}"}
            if hull is not None and len(hull) >= 4:
                row[f"IGR % ({group})"] = f"{np.mean([igr(r['point'].numpy(), hull) for r in results]):.1f}"
            rows.append(row)
    return rows


def _figures(per_seed: list[dict], cfg: DemoConfig, figs: Path) -> list[str]:
    from modalbridge.tasks.atlas.render import slices_figure

    seed, parts = per_seed[0], []
    atlas, texts = seed["atlas"], seed["texts"]
    for k in range(min(2, len(texts))):
        points = np.stack([seed[name]["point"][k].numpy() for name in (SOD, MSE, CLASSIFIER)])
        png = slices_figure(atlas, points, figs / f"document_{k}.png", labels=[SOD, MSE, CLASSIFIER],
                            title=texts[k][:90])
        organs = [atlas.organs[o] for o in seed[SOD]["eval_organs"][k].tolist() if o >= 0]
        parts.append(f"<p>Test document {k} (MeSH organs: {html.escape(', '.join(organs))}): "
                     f"{html.escape(texts[k][:300])}</p><img src=\"figures/{png.name}\">")
    return parts


def _write(cfg: DemoConfig, out: Path, per_seed: list[dict], found: list[Claim], elapsed: float) -> Path:
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    results, held, wilcoxon = _results_rows(per_seed, cfg), _held_out_rows(per_seed, cfg), wilcoxon_rows(per_seed, cfg)
    sections = [
        ("Claims", "<p>Thesis Tables 4.1 and 4.3 on the atlas world. Differences per test document (IOR in points, "
                   "distances in cm), averaged over seeds; intervals: 95 % paired bootstrap over documents and "
                   "Student's t over seeds.</p>" + table_html([c.row() for c in found])),
        ("Results beside the thesis (Table 4.1)",
         "<p>Mean ± standard error over test documents (± half the 95 % seed interval with several seeds). The "
         "thesis column is 3.8k BioASQ abstracts in the SIO male torso with BERT-base; the world is ours, so only "
         "the orderings compare. R@K: retrieval by location among the test documents (Table 4.5's protocol).</p>"
         + table_html(results)),
        ("Held-out organs (Table 4.3)",
         "<p>Documents about the held-out organ alone, from a model that never saw it as a target; IGR: share of "
         "predictions inside the convex hull of the organ's functional group (ours: the thesis does not publish "
         "the groups).</p>" + table_html(held)),
        ("Wilcoxon signed-rank tests (the thesis's significance test)", table_html(wilcoxon)),
        ("Pictures", "".join(_figures(per_seed, cfg, figs))),
        ("What ran", "<p>" + html.escape(
            f"{describe_precision(cfg.precision, 'cpu')}; {len(cfg.seeds)} seed(s); {cfg.encoder()}, "
            f"{cfg.epochs} epochs, AdamW lr {cfg.lr}, batch {cfg.batch_size}; held-out organs: "
            f"{', '.join(per_seed[0]['held_out']) or 'none'}; {elapsed / 60:.1f} min in all. Longer: modalbridge demo atlas "
            "--long; the paper's recipe on the world: modalbridge fit --config configs/atlas/world.yaml.") + "</p>"
         + table_html([{"seed": s, "system": name, "fit (s)": f"{r[name]['seconds']['fit']:.0f}"}
                       for s, r in zip(cfg.seeds, per_seed) for name in TRAINED])),
    ]
    summary = {"claims": [c.row() for c in found], "results": results, "held_out": held, "wilcoxon": wilcoxon,
               "config": dataclasses.asdict(cfg), "minutes": elapsed / 60}
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=str))
    return write_report(out / "report.html", "modalbridge demo — Text2Atlas text → 3-D atlas (thesis Ch. 4)", sections)
