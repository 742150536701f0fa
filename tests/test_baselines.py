"""The non-convolutional baselines of notebook 04 (replication.experiments.baselines)."""

from __future__ import annotations

import json

import pytest
import torch

from replication.experiments import baselines
from replication.experiments.baselines import BaselineConfig


def synthetic(kind, **changes):
    settings = dict(train_per_class=40, val_per_class=20, epochs=15, centroids=24, kmeans_patches=3000,
                    kmeans_iters=5)
    return BaselineConfig(kind, "synthetic", 32, **{**settings, **changes})


def test_encoder_convolution_equals_the_patch_by_patch_definition():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 10, 9, 3), generator=generator, dtype=torch.uint8)
    config = BaselineConfig("kmeans_features", centroids=5, kmeans_patches=500, patch=4)
    encoder = baselines.fit_patch_encoder(images, config)
    codes = encoder.encode(images)
    p = config.patch
    for n in range(3):
        rows = []
        for top in range(10 - p + 1):
            for left in range(9 - p + 1):
                rows.append(images[n, top:top + p, left:left + p].permute(2, 0, 1).reshape(-1).float())
        z = (baselines.normalise_patches(torch.stack(rows)) - encoder.mean) @ encoder.whiten
        distance = torch.cdist(z, encoder.centroids)
        code = (distance.mean(1, keepdim=True) - distance).clamp_min(0).reshape(10 - p + 1, 9 - p + 1, -1)
        h, w = code.shape[:2]
        quads = [code[:h // 2, :w // 2], code[:h // 2, w // 2:], code[h // 2:, :w // 2], code[h // 2:, w // 2:]]
        expected = torch.cat([q.sum((0, 1)) for q in quads])
        torch.testing.assert_close(codes[n], expected, rtol=1e-3, atol=1e-2)


def test_kmeans_finds_separated_clusters():
    generator = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = centres.repeat_interleave(100, 0) + torch.randn(300, 2, generator=generator) * 0.3
    found = baselines.kmeans(points, 3, 10, torch.Generator().manual_seed(0))
    distances = torch.cdist(centres, found).min(1).values
    assert (distances < 0.5).all()


def test_zca_whitens():
    generator = torch.Generator().manual_seed(2)
    mixing = torch.randn(6, 6, generator=generator)
    x = torch.randn(5000, 6, generator=generator) @ mixing
    mean, matrix = baselines.zca(x, eps=0.0)
    white = (x - mean) @ matrix
    torch.testing.assert_close(white.T @ white / (len(x) - 1), torch.eye(6), atol=0.02, rtol=0)


@pytest.mark.parametrize("kind", baselines.KINDS)
def test_baselines_learn_synthetic_classes(kind):
    record = baselines.run(synthetic(kind))
    assert record["val_top1"] < 0.5  # 10 classes: chance is 0.9
    assert record["classes"] == 10 and record["train_images"] == 400 and record["val_images"] == 200
    assert record["kind"] == kind and record["hash"] == synthetic(kind).hash


def test_deterministic_in_seed():
    config = synthetic("kmeans_features", epochs=3, kmeans_patches=1000, train_per_class=20, val_per_class=5)
    a, b = baselines.run(config), baselines.run(config)
    assert a["val_top1"] == b["val_top1"] and a["val_top5"] == b["val_top5"]


def test_store_and_read_only(isolated_store, monkeypatch):
    config = synthetic("softmax_pixels", epochs=2)
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "1")
    with pytest.raises(baselines.BaselineNotStoredError, match="REPLICATION_STORE_READONLY"):
        baselines.get(config)
    scratch = baselines.get(config, scratch=True)  # the smoke store is not guarded
    assert baselines.record_path(config, scratch=True).is_file()
    monkeypatch.delenv("REPLICATION_STORE_READONLY")
    stored = baselines.get(config)
    path = baselines.record_path(config)
    assert path.parent.name == "baselines" and path.name.startswith("softmax_pixels-")
    assert json.loads(path.read_text())["val_top1"] == stored["val_top1"] == scratch["val_top1"]
    from replication.engine import runs

    assert runs.all_runs() == []  # baseline records do not confuse the run store


def test_config_is_validated_and_hash_changes():
    with pytest.raises(ValueError, match="kind"):
        BaselineConfig("sift")
    assert BaselineConfig().hash != BaselineConfig(epochs=31).hash


def test_a_changed_baseline_record_is_refused(tmp_path, monkeypatch):
    """A stored baseline carries its own sha256: a number edited in it no longer feeds a report."""
    from replication.engine import runs
    from replication.experiments import baselines

    path = tmp_path / "record.json"
    record = baselines.seal({"kind": "softmax_pixels", "val_top1": 0.9, "hash": "abc"})
    path.write_text(json.dumps(record))
    assert baselines.read_record(path) == record
    path.write_text(json.dumps({**record, "val_top1": 0.5}))
    with pytest.raises(runs.StoreError, match="not the record that was stored"):
        baselines.read_record(path)


def test_every_committed_baseline_record_verifies():
    from replication.experiments import baselines
    from replication.paths import DEFAULT_STORE

    records = sorted((DEFAULT_STORE / "baselines").glob("*.json"))
    assert records and all(baselines.read_record(p)["hash"] in p.name for p in records)
