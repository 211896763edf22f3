"""Packed HDF5 files (spec distillation.md §2.4): JPEG bytes survive HDF5 exactly in both storages the
reference used, the EK flow interleaving follows ceil(i/2), packed clips match raw clips, bad input is
named, and ``modalbridge data pack`` feeds a data module."""

import pickle

import h5py
import numpy as np
import pytest
import torch

from modalbridge.cli import main
from modalbridge.core.errors import DataError, MediaError
from modalbridge.core.worlds import resolve_root
from modalbridge.datasets import clips as clips_module
from modalbridge.datasets.clips import EpicClips, SomethingClips
from modalbridge.datasets.datamodules import EpicKitchensDataModule
from modalbridge.datasets.epic_kitchens import EpicKitchens100
from modalbridge.datasets.packed import PackedEpic, epic_key, pack_epic, pack_something
from modalbridge.datasets.something import SomethingSomething
from modalbridge.io.audio import load_audio
from modalbridge.io.flow import extract_flow_tree, flow_frame_path, read_flow_frames, rgb_to_flow_index
from modalbridge.io.video import read_frames

NUM_SEGMENTS = 3


@pytest.fixture(scope="module")
def ek():
    return EpicKitchens100(resolve_root("world://kitchen/ek100"))


@pytest.fixture(scope="module")
def packed(ek, tmp_path_factory):
    """The first training segments of the kitchen world packed (rgb, flow, audio)."""
    out = tmp_path_factory.mktemp("packed")
    summary = pack_epic(ek, out, segments=ek.segments("train")[:NUM_SEGMENTS])
    assert summary.datasets == {"rgb": NUM_SEGMENTS, "flow": NUM_SEGMENTS, "audio": 1}
    return out


def _key(seg):
    return epic_key(seg.video_id, seg.narration_id)


def test_flow_pairs_are_the_release_jpegs_interleaved(ek, packed):
    np.testing.assert_array_equal(rgb_to_flow_index(np.arange(1, 8)), [1, 1, 2, 2, 3, 3, 4])  # ceil(i / 2)
    seg = ek.segments("train")[0]
    assert seg.start_frame == 15  # golden below: RGB 15, 16, 17, 18 → flow 8, 8, 9, 9
    with h5py.File(packed / "flow.hdf5") as f:
        elements = f[_key(seg)]
        assert len(elements) == 2 * seg.num_frames
        for k, flow_index in enumerate([8, 8, 9, 9]):
            for c, component in enumerate("uv"):  # [u0, v0, u1, v1, ...], byte for byte the release's files
                expected = flow_frame_path(ek.flow_dir(seg.video_id), component, flow_index).read_bytes()
                assert elements[2 * k + c].tobytes() == expected
    offsets = np.array([0, 1, 2, 5, 2])
    np.testing.assert_array_equal(PackedEpic(packed).read_flow(_key(seg), offsets).numpy(),
                                  read_flow_frames(ek.flow_dir(seg.video_id), rgb_to_flow_index(15 + offsets)))


def test_fixed_length_bytes_read_like_vlen(ek, packed, tmp_path):
    """The reference stored JPEGs as ``|S<max>`` byte strings: same bytes, same frames."""
    seg = ek.segments("train")[1]
    with h5py.File(packed / "rgb.hdf5") as f:
        jpegs = [element.tobytes() for element in f[_key(seg)]]
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    with h5py.File(fixed / "rgb.hdf5", "w") as f:
        f[_key(seg)] = np.array(jpegs)  # numpy picks |S<longest>
        assert f[_key(seg)].dtype.kind == "S"
    with h5py.File(fixed / "rgb.hdf5") as f:
        assert [bytes(b) for b in f[_key(seg)][()]] == jpegs  # byte-exact round trip
    offsets = np.array([3, 0, 7, 7])
    torch.testing.assert_close(PackedEpic(fixed).read_rgb(_key(seg), offsets),
                               PackedEpic(packed).read_rgb(_key(seg), offsets), rtol=0, atol=0)


def test_packed_frames_match_the_raw_readers(ek, packed):
    seg = ek.segments("train")[2]
    reader = PackedEpic(packed)
    offsets = np.arange(0, seg.num_frames, 5)
    _, decode = ek.frame_times(seg.video_id, seg.start_frame + offsets)
    raw = read_frames(ek.video_path(seg.video_id), decode)
    rgb = reader.read_rgb(_key(seg), offsets)
    assert rgb.shape == raw.shape and rgb.dtype == torch.uint8
    diff = (rgb.float() - raw.float()).abs()
    assert diff.mean() < 3 and diff.max() < 96  # JPEG q90 4:2:0 re-encoding of a 128×96 world
    wave = reader.read_audio(seg.video_id, 16000)
    expected = load_audio(ek.video_path(seg.video_id), 16000)
    assert wave.dtype == torch.float32 and abs(len(wave) - len(expected)) <= 16
    n = min(len(wave), len(expected))
    assert (wave[:n] - expected[:n]).abs().mean() < 0.05 * expected.abs().mean()  # 24 kHz round trip, aligned


def test_packed_clips_equal_raw_clips(ek, packed):
    args = dict(modalities=("rgb", "flow", "audio", "text"), num_frames=4, stride=4, size=48, audio_size=32,
                train=True, seed=1)
    raw = EpicClips(ek, ek.segments("train")[:NUM_SEGMENTS], **args)
    fast = EpicClips(ek, ek.segments("train")[:NUM_SEGMENTS], packed=packed, **args)
    for i in range(NUM_SEGMENTS):
        a, b = raw[i], fast[i]
        assert a.keys() == b.keys() and a["text"] == b["text"] and a["verb"] == b["verb"]
        for m in ("rgb", "flow", "audio"):
            assert a[m].shape == b[m].shape and a[m].dtype == b[m].dtype
        torch.testing.assert_close(b["flow"], a["flow"], rtol=0, atol=0)  # flow JPEGs are copied, not re-encoded
        assert (a["rgb"] - b["rgb"]).abs().mean() < 0.05  # normalised units (~3 grey levels)
        assert (a["audio"] - b["audio"]).abs().mean() < 0.05  # standardised log-mel


def test_reader_survives_pickling_after_use(ek, packed):
    seg = ek.segments("train")[0]
    reader = PackedEpic(packed)
    before = reader.read_rgb(_key(seg), [0, 1])
    clone = pickle.loads(pickle.dumps(reader))  # what a DataLoader worker receives: no open handle
    assert clone.files["rgb"]._file is None
    assert torch.equal(clone.read_rgb(_key(seg), [0, 1]), before)


def test_errors_name_the_file_the_key_and_the_expectation(ek, packed, tmp_path):
    seg = ek.segments("train")[0]
    reader = PackedEpic(packed)
    with pytest.raises(MediaError, match="no dataset at key 'P01_101/P01_101_999'") as info:
        reader.read_rgb(epic_key(seg.video_id, "P01_101_999"), [0])
    assert str(packed / "rgb.hdf5") in str(info.value)
    with pytest.raises(MediaError, match=rf"element {seg.num_frames} of dataset '{_key(seg)}' is out of range: "
                                         rf"it holds {seg.num_frames} elements") as info:
        reader.read_rgb(_key(seg), [0, seg.num_frames])
    assert str(packed / "rgb.hdf5") in str(info.value)
    with pytest.raises(MediaError, match="out of range"):
        reader.read_flow(_key(seg), [seg.num_frames])
    with pytest.raises(MediaError, match="no dataset at key 'P99_01'"):
        reader.read_audio("P99_01")
    broken = tmp_path / "broken"
    broken.mkdir()
    with h5py.File(broken / "rgb.hdf5", "w") as f:
        f.create_dataset("v/n", (1,), dtype=h5py.vlen_dtype(np.uint8))[0] = np.frombuffer(b"not a jpeg", np.uint8)
        f["v/floats"] = np.zeros(3, np.float32)
    with pytest.raises(MediaError, match="element 0 of dataset 'v/n' is not a decodable JPEG"):
        PackedEpic(broken).read_rgb("v/n", [0])
    with pytest.raises(MediaError, match="expected a 1-D array of JPEGs"):
        PackedEpic(broken).read_rgb("v/floats", [0])
    with pytest.raises(DataError, match="no flow.hdf5 in this packed folder"):
        PackedEpic(broken).read_flow("v/n", [0])
    with pytest.raises(DataError, match="modalbridge data pack"):
        PackedEpic(tmp_path / "empty")


def test_cli_pack_then_train_from_packed_files(tiny_ek, tmp_path, capsys, forbid_video):
    out = tmp_path / "packed"
    assert main(["data", "pack", "--dataset", "epic-kitchens-100", "--root", str(tiny_ek), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rgb: " in printed and "5 datasets" in printed and "audio: " in printed
    assert sorted(p.name for p in out.iterdir()) == ["audio.hdf5", "flow.hdf5", "rgb.hdf5"]
    with h5py.File(out / "rgb.hdf5") as f:
        segments = [s for split in ("train", "validation") for s in EpicKitchens100(tiny_ek).segments(split)]
        assert {f"{v}/{n}" for v in f for n in f[v]} == {_key(s) for s in segments}
    dm = EpicKitchensDataModule(str(tiny_ek), packed=str(out), modalities=("rgb", "flow", "audio"), num_frames=4,
                                stride=4, size=32, audio_size=32, batch_size=2, num_workers=1)
    forbid_video(clips_module, dataset=dm.dataset)  # everything comes from the HDF5 files
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))  # one worker: the files are opened in it
    assert batch["rgb"].shape == batch["flow"].shape == (2, 3, 4, 32, 32)
    assert batch["audio"].shape == (2, 3, 4, 32, 32) and batch["verb"].shape == (2,)


def test_something_pack_rgb_and_flow(tiny_ssv2, tmp_path, forbid_video):
    data = SomethingSomething(tiny_ssv2)
    ids = [v.id for split in data.splits if split != "test" for v in data.videos(split)]
    extract_flow_tree(ids, data.video_path, data.flow_root)
    out = tmp_path / "packed"
    summary = pack_something(data, out, modalities=("rgb", "flow"))  # every split present: train, validation
    assert summary.datasets == {"rgb": 4, "flow": 4} and summary.elements["rgb"] == summary.elements["flow"]
    args = dict(modalities=("rgb", "flow"), num_segments=4, size=32, train=False)
    raw = SomethingClips(data, data.videos("train"), **args)
    expected = [raw[i] for i in range(len(raw))]
    forbid_video(clips_module, dataset=data)
    fast = SomethingClips(data, data.videos("train"), packed=out, **args)
    for a, b in zip(expected, (fast[i] for i in range(len(fast)))):
        assert a["rgb"].shape == b["rgb"].shape == b["flow"].shape == (3, 4, 32, 32)
        assert (a["rgb"] - b["rgb"]).abs().mean() < 0.05
        assert (a["flow"] - b["flow"]).abs().mean() < 0.02 and torch.all(b["flow"][2] == 0)
