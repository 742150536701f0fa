"""Checkpoints: written atomically after every epoch, read back only as tensors.

A checkpoint is ``torch.save``d to a partial file, flushed to disk and renamed
over the old one, so a kill leaves the previous epoch's checkpoint intact. It is
loaded with ``weights_only=True`` (no pickled code runs) and refused, by name,
when it is corrupt, not ours, or from another configuration.
"""

from __future__ import annotations

from pathlib import Path

import torch

from replication.paths import atomic_file, remove_stale_partials


class CheckpointError(RuntimeError):
    """A checkpoint that is corrupt, not ours, or from another configuration."""


CHECKPOINT_FORMAT = "replication.train.checkpoint/1"  # a format id (the module was train.py then): kept


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a partial file in the same folder, fsync, then rename (atomic)."""
    path = Path(path)
    remove_stale_partials(path.parent, path.name)  # a killed writer's leftovers
    with atomic_file(path, fsync=True) as tmp:
        torch.save(state, tmp)


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
    if expected_hash is not None and state.get("config_hash") != expected_hash:
        raise CheckpointError(f"checkpoint {path} belongs to config {state.get('config_hash')}, "
                              f"not to this config {expected_hash}; refusing to resume from it")
    return state


