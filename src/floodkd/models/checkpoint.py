"""Checkpoints: weights in safetensors plus a JSON of the config beside them; never pickle.

Loading rebuilds the model from the JSON config and loads the weights strictly, so a
checkpoint from another architecture or version fails loudly instead of half-loading.

A checkpoint's identity is a hash of its tensors (names, dtypes, shapes and bytes, in name
order), never of the file: safetensors writes its metadata keys in a random order, so two
files of identical tensors differ in their bytes. The JSON records that hash, and loading
checks it, so a weights file swapped under its JSON is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from floodkd.atomic import atomic_path
from floodkd.errors import InputError

__all__ = ["save_checkpoint", "load_checkpoint", "config_path_for", "tensors_sha256",
           "weights_sha256", "FORMAT"]

FORMAT = "floodkd-checkpoint/1"
ModelT = TypeVar("ModelT", bound=nn.Module)


def config_path_for(weights_path: str | Path) -> Path:
    """The JSON beside a weights file: ``x.safetensors`` -> ``x.json``."""
    return Path(weights_path).with_suffix(".json")


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """The tensor-content hash (``tensors_sha256``) of a safetensors file."""
    return tensors_sha256(_read_weights(Path(path)))


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    fix = "retrain the model or point at the checkpoint written with it"
    if not path.is_file():
        raise InputError(path, "checkpoint file does not exist", fix)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise InputError(path, f"unreadable safetensors file ({error})", fix) from error


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    meta: dict[str, Any],
    config_path: str | Path | None = None,
) -> Path:
    """Write ``model``'s weights to ``path`` (safetensors) and its config + ``meta`` to JSON.

    ``model`` must carry a ``config`` with ``to_dict()``. ``meta`` must be JSON-serialisable
    (training config, metrics, calibration temperature, ...). The JSON goes to
    ``config_path`` (default: beside the weights, same stem). Both files are written
    atomically. Returns the JSON path.
    """
    path = Path(path)
    config_path = Path(config_path) if config_path is not None else config_path_for(path)
    document = {
        "format": FORMAT,
        "model_class": type(model).__name__,
        "config": model.config.to_dict(),
        "weights_file": path.name,
        "meta": meta,
    }
    json.dumps(document)  # not serialisable: fails before anything is written
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    document["weights_sha256"] = tensors_sha256(tensors)
    text = json.dumps(document, indent=2, sort_keys=True)
    header = {"format": FORMAT, "model_class": document["model_class"]}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    with atomic_path(config_path) as tmp:
        tmp.write_text(text + "\n")
    return config_path


def load_checkpoint(
    cls: type[ModelT], path: str | Path, config_path: str | Path | None = None
) -> tuple[ModelT, dict[str, Any]]:
    """Rebuild a ``cls`` model from the JSON beside ``path`` and load its weights strictly.

    Returns ``(model in eval mode, meta)``. Raises ``InputError`` for a missing or
    mismatched checkpoint.
    """
    path = Path(path)
    config_path = Path(config_path) if config_path is not None else config_path_for(path)
    fix = "retrain the model or point at the checkpoint written with it"
    for required in (path, config_path):
        if not required.is_file():
            raise InputError(required, "checkpoint file does not exist", fix)
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(config_path, f"not valid JSON ({error})", fix) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(config_path, f"not a {FORMAT} checkpoint description", fix)
    if document.get("model_class") != cls.__name__:
        raise InputError(
            config_path,
            f"holds a {document.get('model_class')} but a {cls.__name__} was asked for",
            "load it with the matching model class",
        )
    try:
        config = cls.config_class.from_dict(document["config"])  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(config_path, f"invalid model config ({error})", fix) from error
    model = cls(config)
    state = _read_weights(path)
    recorded = document.get("weights_sha256")
    if recorded is not None and recorded != tensors_sha256(state):
        raise InputError(path, f"its tensors are not the ones {config_path.name} was written "
                         "with (tensor hash differs)", fix)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(path, f"weights do not match the config ({error})", fix) from error
    model.eval()
    return model, document.get("meta", {})

