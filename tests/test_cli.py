"""The command line: help, world, data check (real EK-100 annotations and a broken copy), models, data flow
(sharded stride-1 optical flow extraction for SSv2)."""

import shutil
from pathlib import Path

import pytest

from modalbridge.cli import main

EK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "epic_kitchens_100"


def test_help_lists_every_verb(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for verb in ("fit", "validate", "test", "predict", "demo", "world", "data", "recognize", "bench", "models"):
        assert verb in out


def test_world_prints_an_ek_folder(capsys):
    assert main(["world", "actions"]) == 0
    root = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert (root / "ek100" / "EPIC_100_train.csv").exists() and (root / "ssv2").is_dir()


def test_models_lists_registered_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "swin3d_t" in out and "language_teacher" in out


@pytest.mark.skipif(not EK.exists(), reason="../shared/data not present")
def test_data_check_real_epic_kitchens_passes_and_broken_copy_fails(tmp_path, capsys):
    assert main(["data", "check", "epic-kitchens-100", str(EK)]) == 0
    capsys.readouterr()
    broken = tmp_path / "ek"
    shutil.copytree(EK, broken)
    csv = broken / "EPIC_100_validation.csv"
    lines = csv.read_text().splitlines()
    fields = lines[5].split(",")
    fields[10] = "seven"  # verb_class of the 5th data row (line 6 of the file)
    lines[5] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    assert main(["data", "check", "epic-kitchens-100", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "EPIC_100_validation.csv" in out and "row 6" in out
    assert "verb_class" in out


def test_fit_with_a_missing_init_from_checkpoint_names_it_before_building_anything(tmp_path, capsys, monkeypatch):
    from modalbridge.core.errors import WeightsNotFoundError

    config = Path(__file__).resolve().parents[1] / "configs" / "layouts" / "world_cacnf.yaml"
    missing = tmp_path / "no_such_stlt.ckpt"
    argv = ["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "run"),
            "--model.init_args.init_from", f"{{layout: {missing}, appearance: {missing}}}"]
    monkeypatch.delenv("MODALBRIDGE_DEBUG", raising=False)
    assert main(argv) == 2  # one line naming the checkpoint, no traceback
    err = capsys.readouterr().err
    assert "modalbridge: error:" in err and "no_such_stlt.ckpt" in err and "Traceback" not in err
    monkeypatch.setenv("MODALBRIDGE_DEBUG", "1")  # the exception itself
    with pytest.raises(WeightsNotFoundError, match="no_such_stlt.ckpt"):
        main(argv)
    assert not (tmp_path / "run").exists()


def _summary(out: str) -> dict[str, int]:
    """``done 2, skipped 0, failed 0 of 2 videos in …`` → {"done": 2, "skipped": 0, "failed": 0}."""
    line = next(x for x in out.splitlines() if x.startswith("done "))
    return {key: int(value) for key, value in (part.split()[:2] for part in line.split(" of ")[0].split(", "))}


def test_data_flow_shards_cover_every_video_once_then_skip_and_report_failures(tiny_ssv2, capsys):
    from modalbridge.io.flow import count_flow_frames
    from modalbridge.io.video import probe

    videos = sorted(p.stem for p in (tiny_ssv2 / "videos").iterdir())
    assert main(["data", "flow", "--root", str(tiny_ssv2), "--shard", "0/2"]) == 0
    first = _summary(capsys.readouterr().out)
    assert main(["data", "flow", "--root", str(tiny_ssv2), "--shard", "1/2", "--split", "train, validation"]) == 0
    second = _summary(capsys.readouterr().out)
    assert first["done"] + second["done"] == 4 and first["skipped"] == second["skipped"] == 0
    flow = tiny_ssv2 / "flow"
    assert sorted(p.name for p in flow.iterdir()) == videos
    for video in videos:  # one flow frame per decoded frame
        assert count_flow_frames(flow / video) == probe(tiny_ssv2 / "videos" / f"{video}.webm").num_frames

    assert main(["data", "flow", "--root", str(tiny_ssv2)]) == 0
    assert _summary(capsys.readouterr().out) == {"done": 0, "skipped": 4, "failed": 0}

    broken = videos[0]
    (tiny_ssv2 / "videos" / f"{broken}.webm").write_bytes(b"not a video")
    out_dir = tiny_ssv2.parent / "other_flow"
    assert main(["data", "flow", "--root", str(tiny_ssv2), "--out", str(out_dir), "--split", "train,validation"]) == 1
    out = capsys.readouterr().out
    assert _summary(out) == {"done": 3, "skipped": 0, "failed": 1}
    assert f"failed videos:\n  {broken}: " in out and f"{broken}.webm" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [v for v in videos if v != broken]


@pytest.mark.parametrize("shard", ["2/2", "1", "a/b"])
def test_data_flow_rejects_a_bad_shard(shard, capsys):
    with pytest.raises(SystemExit):
        main(["data", "flow", "--root", "unused", "--shard", shard])
    assert "i/n" in capsys.readouterr().err


def test_distill_cache_on_ssv2_shards_and_serves_a_training_set_with_held_out_videos(tiny_ssv2, tmp_path, capsys):
    """``distill-cache --dataset ssv2`` over the whole train split (2 shards + merge); a student whose data module
    holds one video out finds each remaining clip's row by its video id, not by its position."""
    import torch

    from modalbridge.core.classifier import ModalityClassifierModule
    from modalbridge.core.data import collate_skipping
    from modalbridge.datasets.datamodules import SomethingDataModule
    from modalbridge.tasks.distill.module import DistillModule

    assert main(["data", "flow", "--root", str(tiny_ssv2)]) == 0
    # seed 2 holds out the FIRST training video, so the training positions of the other two shift by one
    dm = SomethingDataModule(str(tiny_ssv2), modalities=("rgb", "flow"), num_segments=4, size=32, holdout=1, seed=2)
    ckpts = []
    for seed, modality in enumerate(("rgb", "flow")):
        torch.manual_seed(seed)
        m = ModalityClassifierModule("r3d_tiny", dm.heads, modality=modality)
        ckpts.append(str(tmp_path / f"{modality}.ckpt"))
        torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict(),
                    "modalbridge_class": "ModalityClassifierModule"}, ckpts[-1])
    common = ["distill-cache", "--dataset", "ssv2", "--root", str(tiny_ssv2), "--teachers", *ckpts,
              "--num-frames", "4", "--size", "32", "--num-workers", "0", "--precision", "32-true"]
    for i in range(2):
        assert main([*common, "--shard", f"{i}/2", "--out", str(tmp_path / f"part{i}.safetensors")]) == 0
    merged = tmp_path / "train.safetensors"
    assert main(["distill-cache", "--merge", str(tmp_path / "part0.safetensors"), str(tmp_path / "part1.safetensors"),
                 "--out", str(merged)]) == 0
    capsys.readouterr()

    live = DistillModule("r3d_tiny", dm.heads, teachers=ckpts, weighting="uniform")
    cached = DistillModule("r3d_tiny", dm.heads, teachers=ckpts, weighting="uniform", teacher_cache=str(merged))
    train = dm.make_dataset("train", train=False, part="train")  # 2 of the 3 training videos
    full = dm.make_dataset("train", train=False, part="all")
    assert len(train) == 2 and train.clip_ids() == full.clip_ids()[1:]
    batch = collate_skipping([train[i] for i in range(len(train))])
    assert torch.allclose(cached.teacher_logits(batch)["action"], live.teacher_logits(batch)["action"], atol=1e-5)

    # the same cache computed under bf16 autocast: fp32 logits in the file, within bf16 rounding of the fp32 ones
    bf16 = tmp_path / "bf16.safetensors"
    assert main([*common[:-2], "--precision", "bf16-mixed", "--out", str(bf16)]) == 0
    from safetensors.torch import load_file

    z16, z32 = load_file(str(bf16))["action"], load_file(str(merged))["action"]
    assert z16.dtype == torch.float32 and torch.allclose(z16, z32, atol=0.05, rtol=0.05)
    assert not torch.equal(z16, z32)  # it did run in bf16


def test_distill_cache_for_an_object_teacher_reads_layouts_without_video(tmp_path, capsys):
    """RGB&OBJ caching: a layouts-task STLT checkpoint as teacher → the layout data module's batches (boxes only,
    no video decoded), rows keyed by video id, equal to the live teacher; a teacher with other classes is refused."""
    import torch

    from modalbridge.datasets.datamodules import SomethingLayoutDataModule
    from modalbridge.tasks.distill.module import DistillModule
    from modalbridge.tasks.layouts.module import LayoutModule

    dm = SomethingLayoutDataModule("world://kitchen/ssv2", modalities=("layout",), layout_frames=8)
    torch.manual_seed(0)
    stlt = LayoutModule("stlt", dm.heads, model_kwargs={"preset": "tiny"})
    ckpt = tmp_path / "stlt.ckpt"
    torch.save({"state_dict": stlt.state_dict(), "hyper_parameters": dict(stlt.hparams),
                "modalbridge_class": "LayoutModule"}, ckpt)
    out = tmp_path / "val.safetensors"
    assert main(["distill-cache", "--dataset", "something-else", "--root", "world://kitchen/ssv2", "--split",
                 "validation", "--teachers", str(ckpt), "--layout-frames", "8", "--num-workers", "0", "--precision", "32-true",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    val = dm.make_dataset("validation", train=False)
    batch = dm.collate_fn([val[i] for i in (5, 0, 7)])
    live = DistillModule("r3d_tiny", dm.heads, teachers=[str(ckpt)], weighting="uniform")
    cached = DistillModule("r3d_tiny", dm.heads, teachers=[str(ckpt)], weighting="uniform", teacher_cache=str(out))
    assert torch.allclose(cached.teacher_logits(batch)["action"], live.teacher_logits(batch)["action"], atol=1e-5)

    other = LayoutModule("stlt", {"action": dm.heads["action"] + 1}, model_kwargs={"preset": "tiny"})
    torch.save({"state_dict": other.state_dict(), "hyper_parameters": dict(other.hparams),
                "modalbridge_class": "LayoutModule"}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="predicts"):
        main(["distill-cache", "--dataset", "something-else", "--root", "world://kitchen/ssv2", "--teachers",
              str(tmp_path / "other.ckpt"), "--out", str(tmp_path / "x.safetensors")])
