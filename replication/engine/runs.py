"""The run store: a training config -> its hash -> ``runs/<hash>/``.

Every report asks ``runs.get(config)`` for the runs it needs. A stored run is
returned at once (no training); a missing one is trained, resuming from the
checkpoint in the git-ignored cache when a previous attempt was interrupted,
and then stored. What is stored is small and meant to be committed:

    runs/<hash>/config.json     the full config, the hash and the fields it covers
    runs/<hash>/metrics.jsonl   one line per epoch (train loss/error, val top-1/top-5, lr, seconds, images/s)
    runs/<hash>/summary.json    final metrics, wall time, precision, hardware, torch version
    runs/<hash>/<name>.npy      artifacts figures need (conv1 kernels, neighbour indices, per-class errors)

Checkpoints (large) live in ``$REPLICATION_CACHE/<hash>/checkpoint.pt``.

Settings: ``REPLICATION_STORE`` (default ``<repo>/runs``; ``python -m replication train`` stores
elsewhere unless told ``--project-store``: ``paths.user_store_dir``), ``REPLICATION_CACHE``
(default ``<repo>/.cache/replication``), and ``REPLICATION_STORE_READONLY=1``
(CI): a miss is then an error naming the config and how to train it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from replication import data

from replication.engine.config import config_diff, config_hash, HASH_SCHEMA, TrainConfig
from replication.engine.trainer import train, TrainResult

from replication.paths import (REPO, atomic_dir, atomic_write_text, cache_dir, env_flag,  # noqa: F401
                               remove_stale_partials, scratch_store_dir, store_dir)

RunConfig = TrainConfig
def read_only() -> bool:
    """``REPLICATION_STORE_READONLY`` (CI): a run missing from the store is an error, not a training run.
    (The scratch store of the smoke profile is never read-only: smoke reports train in CI on purpose.)"""
    return env_flag("REPLICATION_STORE_READONLY")


def run_dir(config: TrainConfig, store: Path | None = None) -> Path:
    return (store or store_dir()) / config_hash(config)


def checkpoint_path(config: TrainConfig) -> Path:
    return cache_dir() / config_hash(config) / "checkpoint.pt"


# The runs this process asked ``get`` for, {run id: training seconds}: a report lists them in its
# provenance, so that a reader sees which stored runs stand behind its numbers and what they cost.
_RUNS_READ: dict[str, float | None] = {}


def note_read(run: "Run") -> None:
    """Add ``run`` to this process's list of runs read (``runs_read``)."""
    seconds = run.summary.get("train_seconds")
    _RUNS_READ[run.hash] = None if seconds is None else round(float(seconds), 1)


def runs_read() -> dict[str, float | None]:
    """{run id: training seconds} of every run ``get`` returned in this process since ``forget_runs_read``."""
    return dict(sorted(_RUNS_READ.items()))


def forget_runs_read() -> None:
    _RUNS_READ.clear()


class RunNotStoredError(LookupError):
    """The store is read-only and does not hold the requested run."""


class StoreError(RuntimeError):
    """A stored run is incomplete or does not match the config that asked for it."""


class UnknownRunError(LookupError):
    """A run id, id prefix or folder that names no stored run (or more than one)."""


@dataclass
class Run:
    """A finished run: its config, per-epoch metrics, summary and small artifacts."""

    config: TrainConfig
    hash: str
    summary: dict
    history: list[dict]
    path: Path | None = None
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def metrics(self):
        """Per-epoch metrics as a pandas DataFrame (one row per epoch)."""
        return pd.DataFrame(self.history)

    @property
    def artifact_names(self) -> list[str]:
        names = set(self._arrays)
        if self.path is not None:
            names |= {p.stem for p in self.path.glob("*.npy")}
        return sorted(names)

    def artifact(self, name: str) -> np.ndarray:
        """A stored array, e.g. ``run.artifact("conv1")``."""
        if name in self._arrays:
            return self._arrays[name]
        if self.path is not None and (self.path / f"{name}.npy").exists():
            return np.load(self.path / f"{name}.npy", allow_pickle=False)
        raise KeyError(f"run {self.hash} has no artifact {name!r}; it has {self.artifact_names}. "
                       "Artifacts are chosen by config fields (save_conv1, per_class_error, neighbours_k).")

    @classmethod
    def load(cls, path: Path) -> "Run":
        """Read ``runs/<hash>/`` from disk, verified against its manifest (every file's sha256)
        and with one metrics row per epoch of its summary."""
        path = Path(path)
        verify(path)
        record = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text())
        history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line]
        if len(history) != summary.get("epochs"):
            raise StoreError(f"{path / 'metrics.jsonl'} has {len(history)} rows for the {summary.get('epochs')} "
                             f"epochs of its summary; {_REPAIR}")
        config = TrainConfig.from_dict(record["config"])
        return cls(config, record["hash"], summary, history, path)


MANIFEST = "manifest.json"
_REPAIR = ("restore the folder from git (`git checkout -- runs/<hash>`) if it is a committed run, "
           "or delete it to train the run again")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _data_files(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.is_file() and p.name != MANIFEST
                  and not p.name.startswith("."))


def seal(folder: Path) -> Path:
    """Write ``manifest.json``: the sha256 of every file of a stored run, checked on every load."""
    manifest = {"algorithm": "sha256", "files": {name: _sha256(Path(folder) / name) for name in _data_files(folder)}}
    return atomic_write_text(Path(folder) / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def verify(folder: Path) -> None:
    """Raise StoreError, naming the file and the repair, unless every file of a stored run is
    present, unchanged since it was stored, and listed in its manifest."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StoreError(f"stored run {folder} has no readable {MANIFEST} ({type(error).__name__}); {_REPAIR}") from None
    for name in ("config.json", "metrics.jsonl", "summary.json"):
        if name not in listed:
            raise StoreError(f"stored run {folder}: {MANIFEST} does not list {name}; {_REPAIR}")
    for name, digest in listed.items():
        try:
            actual = _sha256(folder / name)
        except OSError:
            raise StoreError(f"stored run {folder} lacks {name}; {_REPAIR}") from None
        if actual != digest:
            raise StoreError(f"{folder / name} is not the file that was stored (sha256 {actual[:12]}..., "
                             f"the manifest says {digest[:12]}...); {_REPAIR}")
    extra = sorted(set(_data_files(folder)) - set(listed))
    if extra:
        raise StoreError(f"stored run {folder} holds files its manifest does not list: {extra}; {_REPAIR}")


def describe(config: TrainConfig) -> str:
    """The config's hash and the fields where it differs from the defaults, for messages."""
    return f"{config_hash(config)} {json.dumps(config_diff(config), sort_keys=True)}"


def identify(config: TrainConfig) -> TrainConfig:
    """The config with its data named as a run's identity records it: the concrete release
    (``data_variant``), and for a folder you supply a fingerprint of its contents. A release the
    config already names needs no data (a report re-executed from the store reads no images)."""
    if config.dataset == "synthetic":
        return config
    dataset = data.canonical_name(config.dataset)  # folder:PATH with PATH absolute
    variant, fingerprint = data.identify(dataset, config.data_variant)
    return config.replace(dataset=dataset, data_variant=variant, data_fingerprint=fingerprint)


def lookup(config: TrainConfig, store: Path | None = None) -> Run | None:
    """The stored run of ``config`` (already identified), or None (never trains). A run in the
    uncommitted scratch store that no longer verifies is dropped, to be trained again."""
    path = run_dir(config, store)
    if not (path / "summary.json").exists():
        return None
    try:
        run = Run.load(path)
    except StoreError:
        if store is not None and Path(store) == scratch_store_dir():
            shutil.rmtree(path, ignore_errors=True)
            return None
        raise
    if run.hash != config_hash(config) or config_hash(run.config) != run.hash:
        raise StoreError(f"{path} holds run {run.hash} whose config hashes to {config_hash(run.config)}, "
                         f"but was asked for {config_hash(config)}; the store is inconsistent")
    return run


def get(config: TrainConfig, progress: bool = True, device=None, scratch: bool = False,
        store: Path | None = None) -> Run:
    """The stored run of ``config``, training (resumably) and storing it first when missing.

    The config is identified first (``identify``): its hash covers the data release and, for a
    folder you supply, its contents, as well as the thread count and precision it names.
    ``device`` (default: the GPU when there is one) only matters when it trains. ``scratch=True``
    uses the uncommitted scratch store (smoke runs), which ``REPLICATION_STORE_READONLY`` does
    not guard. ``store``: another folder than the run store (``python -m replication train``'s user
    store). With ``progress``, a store hit says so in one line.
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    config = identify(config)
    store = scratch_store_dir() if scratch else store
    run = lookup(config, store)
    if run is not None:
        if progress:
            print(f"run {run.hash}: stored in {run.path}, not trained again")
        note_read(run)
        return run
    if read_only() and not scratch:
        raise RunNotStoredError(
            f"run {describe(config)} is not in the run store {store or store_dir()} and "
            "REPLICATION_STORE_READONLY=1 forbids training it here. Train it with "
            f"`python -m replication train --config <file.yaml> --project-store` (the fields above; "
            f"`--print-config` shows the hash, expect {config_hash(config)}) and commit runs/{config_hash(config)}/")
    result = train(config, checkpoint=checkpoint_path(config), progress=progress, device=device)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 writes
        return Run(config, result.hash, result.summary, result.metrics, None, result.artifacts)
    run = Run.load(write(result, store))
    note_read(run)
    return run


def write(result: TrainResult, store: Path | None = None) -> Path:
    """Store a finished run atomically: fill a partial folder, then rename it to ``<hash>``
    (a complete record that another process stored meanwhile is kept)."""
    target = (store or store_dir()) / result.hash
    remove_stale_partials(target.parent)  # folders of writers that were killed
    with atomic_dir(target, complete_marker="summary.json") as tmp:
        record = {"hash": result.hash, "schema": HASH_SCHEMA, "differs_from_defaults": config_diff(result.config),
                  "config": result.config.to_dict()}
        # allow_nan=False: stored JSON is valid JSON; a non-finite number is an error, not a record
        (tmp / "config.json").write_text(json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n")
        (tmp / "metrics.jsonl").write_text("".join(json.dumps(row, sort_keys=True, allow_nan=False) + "\n"
                                                   for row in result.metrics))
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=1, sort_keys=True, allow_nan=False)
                                          + "\n")
        for name, array in result.artifacts.items():
            np.save(tmp / f"{name}.npy", np.asarray(array), allow_pickle=False)
        seal(tmp)
    return target


def all_runs() -> list[Run]:
    """Every run in the store (for indexes and notebooks)."""
    store = store_dir()
    if not store.exists():
        return []
    return [Run.load(p) for p in sorted(store.iterdir()) if (p / "summary.json").exists()]


def find(reference: str | Path) -> Run:
    """The stored run a person names: a run folder's path, or a run id or unique prefix of one in
    the store (``REPLICATION_STORE``). Raises UnknownRunError naming the store and the fix."""
    path = Path(reference).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return Run.load(path)
    store = store_dir()
    ids = sorted(p.name for p in store.iterdir() if not p.name.startswith(".") and (p / "summary.json").exists()) \
        if store.is_dir() else []
    matches = [name for name in ids if name.startswith(str(reference))]
    if len(matches) == 1:
        return Run.load(store / matches[0])
    if matches:
        raise UnknownRunError(f"{str(reference)!r} is the start of {len(matches)} runs in the run store {store}: "
                              f"{', '.join(matches[:6])}{' ...' if len(matches) > 6 else ''}; give more of the id")
    raise UnknownRunError(f"no run {str(reference)!r} in the run store {store} ({len(ids)} runs; "
                          "`ls` that folder lists their ids), and no run folder at that path. Give a run id or "
                          "a unique prefix of one, or a run folder's path, or set REPLICATION_STORE to the store "
                          "that holds it")
