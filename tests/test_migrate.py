"""Migrating a run store when a run's identity grows: the numbers stay, the hashes move."""

from __future__ import annotations

import json

import pytest

from replication.cli import migrate
from replication.engine import runs
from replication.engine.config import TrainConfig, config_hash


def old_style_run(store, config: TrainConfig, threads: int, train_images: int, classes: int) -> str:
    """A run folder as the store held it before ``threads`` and ``data_variant`` joined the identity."""
    legacy = {k: v for k, v in config.to_dict().items() if k not in ("threads", "data_fingerprint")}
    digest = config_hash(config)
    folder = store / digest
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"hash": digest, "schema": 1, "config": legacy}))
    (folder / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_top1": 0.5}) + "\n")
    (folder / "summary.json").write_text(json.dumps({
        "config_hash": digest, "epochs": 1, "val_top1": 0.5, "train_images": train_images, "classes": classes,
        "hardware": {"torch_threads": threads}}))
    (folder / "conv1.npy").write_bytes(b"not really an array, but bytes that must survive the move")
    runs.seal(folder)
    return digest


def test_threads_and_release_move_the_hash_and_nothing_else(tmp_path):
    config = TrainConfig(dataset="cifar10-jpeg", epochs=1)
    old = old_style_run(tmp_path, config, threads=1, train_images=50_000, classes=10)
    before = {name: (tmp_path / old / name).read_bytes() for name in ("metrics.jsonl", "conv1.npy")}

    assert migrate.migrate_store(tmp_path, dry_run=True, log=lambda *_: None) == {old: config_hash(
        config.replace(threads=1, data_variant="mirror"))}
    assert (tmp_path / old).exists()  # a dry run moves nothing

    moved = migrate.migrate_store(tmp_path, log=lambda *_: None)
    new = config_hash(config.replace(threads=1, data_variant="mirror"))
    assert moved == {old: new} and not (tmp_path / old).exists()
    run = runs.Run.load(tmp_path / new)  # verified: manifest, history against epochs
    assert run.config.threads == 1 and run.config.data_variant == "mirror"
    assert run.summary["config_hash"] == new
    assert {name: (tmp_path / new / name).read_bytes() for name in before} == before
    assert json.loads((tmp_path / new / "config.json").read_text())["migrated_from"] == old
    assert migrate.migrate_store(tmp_path, log=lambda *_: None) == {}  # twice: nothing more moves


def test_a_run_that_does_not_match_its_release_is_not_migrated(tmp_path):
    old_style_run(tmp_path, TrainConfig(dataset="cifar10-jpeg", epochs=1), threads=2, train_images=1234,
                  classes=10)
    with pytest.raises(runs.StoreError, match="1234 training images is not the mirror release"):
        migrate.migrate_store(tmp_path, log=lambda *_: None)


def test_the_committed_store_is_migrated():
    assert migrate.migrate_store(dry_run=True, log=lambda *_: None) == {}
