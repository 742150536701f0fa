"""The run store: config -> hash -> runs/<hash>/, trained once, read back without training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replication.engine import runs
from replication.engine.checkpoints import load_checkpoint, save_checkpoint
from replication.engine.config import config_hash, TrainConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> TrainConfig:
    values = dict(model={"arch": "fig1", "paper_init": False}, dataset="synthetic", image_size=16,
                  train_per_class=4, val_per_class=2, batch_size=20, epochs=2, lr=0.001,
                  save_conv1=True, per_class_error=True)
    values.update(overrides)
    return TrainConfig(**values)


def forbid_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("runs.get trained although the run is stored")

    monkeypatch.setattr(runs, "train", refuse)


def test_get_trains_stores_and_then_only_reads(isolated_store, monkeypatch):
    cfg = tiny()
    run = runs.get(cfg, progress=False)
    folder = isolated_store / "runs" / config_hash(cfg)
    assert run.path == folder and run.hash == config_hash(cfg)
    assert {p.name for p in folder.iterdir()} == {"config.json", "metrics.jsonl", "summary.json",
                                                  "conv1.npy", "per_class_error.npy", "manifest.json"}
    record = json.loads((folder / "config.json").read_text())
    assert record["hash"] == run.hash and TrainConfig.from_dict(record["config"]) == cfg
    assert record["differs_from_defaults"]["dataset"] == "synthetic"
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 2
    # the checkpoint lives in the cache, not in the store
    assert load_checkpoint(isolated_store / "cache" / run.hash / "checkpoint.pt", run.hash)["epoch"] == 2
    assert not [p for p in (isolated_store / "runs").iterdir() if p.name.startswith(".")]

    forbid_training(monkeypatch)
    again = runs.get(TrainConfig.from_dict(cfg.to_dict()), progress=False)
    assert again.history == run.history and again.summary == run.summary and again.config == cfg
    assert list(again.metrics["epoch"]) == [1, 2]
    assert again.artifact("conv1").shape == (1, 32, 3, 5, 5)
    np.testing.assert_array_equal(again.artifact("per_class_error"), run.artifact("per_class_error"))
    assert again.artifact_names == ["conv1", "per_class_error"]
    with pytest.raises(KeyError, match="no artifact 'neighbours'"):
        again.artifact("neighbours")
    assert [r.hash for r in runs.all_runs()] == [run.hash]


def test_get_lists_the_runs_it_returned_for_a_report(isolated_store):
    runs.forget_runs_read()
    first = runs.get(tiny(), progress=False)  # trained
    assert runs.runs_read() == {first.hash: round(first.summary["train_seconds"], 1)}
    second = runs.get(tiny(seed=1), progress=False)
    runs.get(tiny(), progress=False)  # read back from the store: listed once
    assert list(runs.runs_read()) == sorted([first.hash, second.hash])
    runs.forget_runs_read()
    assert runs.runs_read() == {}


def test_summary_records_numbers_and_provenance(isolated_store):
    summary = runs.get(tiny(epochs=1), progress=False).summary
    for key in ("val_top1", "val_top5", "wall_seconds", "train_seconds", "precision", "torch", "hardware",
                "config_hash", "epochs"):
        assert key in summary, key
    assert summary["hardware"]["torch_threads"] == 2  # the config's thread count, whatever the caller's


def test_thread_count_and_data_release_are_part_of_the_identity(isolated_store, tmp_path):
    """Two thread counts sum in two orders: two runs, two hashes. A config that names no release is
    named by the one this machine has before it is hashed, so two releases never share a run."""
    assert runs.config_hash(tiny(threads=1)) != runs.config_hash(tiny(threads=2))
    assert runs.identify(tiny()) == tiny()  # synthetic data: nothing to name
    named = TrainConfig(dataset="cifar10-jpeg", data_variant="sample")
    assert runs.identify(named) == named  # a named release needs no data
    assert runs.identify(TrainConfig(dataset="tiny-imagenet-200", data_variant="sample")).data_variant == "sample"


def test_read_only_store_refuses_to_train_and_says_how(isolated_store, monkeypatch):
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "1")
    cfg = tiny(seed=11)
    with pytest.raises(runs.RunNotStoredError) as error:
        runs.get(cfg, progress=False)
    message = str(error.value)
    assert config_hash(cfg) in message and '"seed": 11' in message
    assert "python -m replication train" in message and "REPLICATION_STORE_READONLY" in message
    assert not (isolated_store / "runs").exists() or not any((isolated_store / "runs").iterdir())


def test_read_only_store_serves_stored_runs(isolated_store, monkeypatch):
    cfg = tiny(epochs=1)
    runs.get(cfg, progress=False)
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "1")
    forbid_training(monkeypatch)
    assert runs.get(cfg).summary["epochs"] == 1


def test_get_resumes_from_the_cached_checkpoint(isolated_store, monkeypatch):
    """A run interrupted after epoch 1 (its checkpoint in the cache) is finished, not restarted."""
    from replication.engine.trainer import train

    cfg = tiny(epochs=2)
    stopped = cfg.replace(epochs=1)
    train(stopped, checkpoint=isolated_store / "one.pt", progress=False)
    state = load_checkpoint(isolated_store / "one.pt")
    state["config_hash"] = config_hash(cfg)  # pretend the 2-epoch run was killed after epoch 1
    runs.checkpoint_path(cfg).parent.mkdir(parents=True)
    save_checkpoint(runs.checkpoint_path(cfg), state)
    epochs_trained = []
    real_train = runs.train

    def counting_train(*args, **kwargs):
        kwargs["after_epoch"] = lambda trainer, epoch, row: epochs_trained.append(epoch)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runs, "train", counting_train)
    run = runs.get(cfg, progress=False)
    assert epochs_trained == [2] and len(run.history) == 2


def test_incomplete_record_is_retrained_and_unreadable_one_is_reported(isolated_store):
    cfg = tiny(epochs=1)
    folder = runs.run_dir(cfg)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # no summary.json: an interrupted write
    assert runs.get(cfg, progress=False).summary["epochs"] == 1
    (folder / "metrics.jsonl").write_text("not json\n")
    with pytest.raises(runs.StoreError, match="metrics.jsonl is not the file that was stored"):
        runs.get(cfg)


@pytest.mark.parametrize("damage", ["cut_history", "flip_artifact", "drop_manifest", "extra_file", "lie_consistently"])
def test_a_damaged_stored_run_is_refused_naming_the_file_and_the_repair(isolated_store, damage):
    """A store that was cut, bit-flipped or edited must not feed a report: every load checks the
    manifest's sha256 of each file, and the history against the summary's epoch count."""
    cfg = tiny(epochs=2)
    folder = runs.get(cfg, progress=False).path
    if damage == "cut_history":
        lines = (folder / "metrics.jsonl").read_text().splitlines(keepends=True)
        (folder / "metrics.jsonl").write_text(lines[0])
        expected = "metrics.jsonl is not the file that was stored"
    elif damage == "flip_artifact":
        raw = bytearray((folder / "conv1.npy").read_bytes())
        raw[-1] ^= 0x40
        (folder / "conv1.npy").write_bytes(bytes(raw))
        expected = "conv1.npy is not the file that was stored"
    elif damage == "drop_manifest":
        (folder / "manifest.json").unlink()
        expected = "has no readable manifest.json"
    elif damage == "extra_file":
        (folder / "planted.npy").write_bytes(b"x")
        expected = "files its manifest does not list"
    else:  # a history cut and the manifest re-sealed to match: the epoch count still disagrees
        lines = (folder / "metrics.jsonl").read_text().splitlines(keepends=True)
        (folder / "metrics.jsonl").write_text(lines[0])
        runs.seal(folder)
        expected = "has 1 rows for the 2 epochs"
    with pytest.raises(runs.StoreError, match=expected) as caught:
        runs.get(cfg)
    assert "git checkout -- runs/<hash>" in str(caught.value)


def test_every_committed_run_verifies():
    from replication.paths import DEFAULT_STORE

    folders = [p for p in DEFAULT_STORE.iterdir() if (p / "summary.json").exists()]
    assert folders and all(runs.Run.load(p).hash == p.name for p in folders)


def test_store_and_cache_locations_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("REPLICATION_STORE", raising=False)
    monkeypatch.delenv("REPLICATION_CACHE", raising=False)
    assert runs.store_dir() == runs.REPO / "runs"
    assert runs.checkpoint_path(TrainConfig()).parent == runs.REPO / ".cache" / "replication" / config_hash(TrainConfig())
    monkeypatch.setenv("REPLICATION_STORE", str(tmp_path / "s"))
    assert runs.run_dir(TrainConfig()) == tmp_path / "s" / config_hash(TrainConfig())


def test_scratch_runs_train_under_read_only_and_stay_out_of_the_committed_store(isolated_store, monkeypatch):
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "1")
    cfg = tiny(epochs=1, seed=5)
    run = runs.get(cfg, progress=False, scratch=True)
    assert run.path.parent == runs.scratch_store_dir()
    assert runs.lookup(cfg) is None  # the committed store is untouched
    forbid_training(monkeypatch)
    assert runs.get(cfg, progress=False, scratch=True).hash == run.hash  # second call reads
