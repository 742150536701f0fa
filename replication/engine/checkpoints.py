"""Checkpoints: written atomically after every epoch, read back only as tensors.

A checkpoint is ``torch.save``d to a partial file, flushed to disk and renamed
over the old one, so a kill leaves the previous epoch's checkpoint intact. It is
loaded with ``weights_only=True`` (no pickled code runs) and refused, by name,
when it is corrupt, not ours, from another configuration, or when a tensor no
longer matches the sha256 written beside it (a flipped bit in a weight would
otherwise resume silently from a wrong net).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from replication.paths import atomic_file, remove_stale_partials


class CheckpointError(RuntimeError):
    """A checkpoint that is corrupt, not ours, or from another configuration."""


CHECKPOINT_FORMAT = "replication.train.checkpoint/1"  # a format id (the module was train.py then): kept


def tensor_digest(value) -> str:
    """sha256 over every tensor in a nested state (dicts in key order, lists in order): names, shapes,
    dtypes and bytes."""
    digest = hashlib.sha256()

    def visit(item, name: str) -> None:
        if isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(item, dict):
            for key in sorted(item, key=str):
                visit(item[key], f"{name}/{key}")
        elif isinstance(item, (list, tuple)):
            for index, element in enumerate(item):
                visit(element, f"{name}/{index}")

    visit(value, "")
    return digest.hexdigest()


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save (with the tensors' sha256) to a partial file in the same folder, fsync, then rename."""
    path = Path(path)
    remove_stale_partials(path.parent, path.name)  # a killed writer's leftovers
    state = {key: value for key, value in state.items() if key != "tensor_sha256"}
    with atomic_file(path, fsync=True) as tmp:
        torch.save({**state, "tensor_sha256": tensor_digest(state)}, tmp)


def load_checkpoint(path: Path, expected_hash: str | None = None) -> dict:
    """Load with ``weights_only=True``; refuse corrupt, foreign or other-config files by name."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle of arbitrary objects, not a torch file ...
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safe torch checkpoint "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"delete it to train from scratch") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a replication training checkpoint "
                              f"(format {found!r}, expected {CHECKPOINT_FORMAT!r}); delete or move it")
    stored = state.pop("tensor_sha256", None)
    if stored is None:  # written before checkpoints carried a digest: resume, but say so
        warnings.warn(f"checkpoint {path} carries no sha256 of its tensors (an older checkpoint); "
                      "resuming from it unchecked", stacklevel=2)
    elif stored != tensor_digest(state):
        raise CheckpointError(f"checkpoint {path}: its tensors do not match the sha256 written with them; "
                              "delete it to train from scratch (or resume from an earlier copy)")
    if expected_hash is not None and state.get("config_hash") != expected_hash:
        raise CheckpointError(f"checkpoint {path} belongs to config {state.get('config_hash')}, "
                              f"not to this config {expected_hash}; refusing to resume from it")
    return state


