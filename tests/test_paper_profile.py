"""The paper profile (issue 8): the ILSVRC-2012 recipe, and the streaming path users with GPUs take.

A small ImageNet-layout folder of 256 px JPEGs (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG)
is generated here; the paper profile's own config, narrowed and shortened, trains a few
steps on it on the CPU through DataLoader workers, so the code path is exercised.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from replication.profiles import REPO  # the repository root
from replication import profiles
from replication.experiments import protocol
from replication.engine import trainer
from replication.engine import runs
from replication.engine.config import config_diff, config_hash, HASH_BASE, TrainConfig

WNIDS = ["n01440764", "n02102040"]


def make_imagenet(root, train_per_class=6, val_per_class=3, size=(256, 300)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = (rng.random((*size, 3)) * 60 + 120 * c).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root


@pytest.fixture
def imagenet(tmp_path, monkeypatch, isolated_store):
    root = make_imagenet(tmp_path / "imagenet")
    monkeypatch.setenv("REPLICATION_IMAGENET", str(root))
    monkeypatch.setenv("REPLICATION_WORKERS", "2")
    return root


def small(config: TrainConfig, **changes) -> TrainConfig:
    """The paper's config, narrow and short enough for a CPU test (same code path)."""
    model = dict(config.model, width=0.0625)
    return config.replace(**{"model": model, "epochs": 1, "batch_size": 4, "stats_images": 8,
                             "train_eval_images": 4, **changes})


# --------------------------------------------------------------------------- the recipe

def test_paper_config_is_the_papers_recipe():
    config = protocol.PAPER_IMAGENET.config(0)
    assert config.dataset == "imagenet" and config.stream
    assert config.image_size == 256 and config.crop == 224  # Section 2 and 4.1; 224 with the ceil rule
    assert config.model == {"arch": "alexnet", "width": 1.0, "towers": 2}
    assert (config.epochs, config.batch_size, config.lr, config.momentum, config.weight_decay) == (
        90, 128, 0.01, 0.9, 5e-4)
    assert (config.schedule, config.max_lr_drops) == ("plateau", 3)
    assert config.optimizer == "paper" and config.flip and config.lighting_std == 0.1 and config.mean_subtraction
    assert config.ten_crop and config.save_val_probs and config.stats_images is None
    assert config.init == "model" and config.input_scale == 1.0  # Section 5's init on raw 0..255 pixels
    from replication import models

    model = models.build_model({**config.model, "input_size": config.crop, "num_classes": 1000})
    assert models.count_parameters(model) == models.PAPER_PARAMETERS  # 224 + ceil rule = Fig. 2's net


def test_paper_yaml_states_the_recipe_the_code_uses():
    text = (REPO / "profiles" / "paper.yaml").read_text()
    recipe = dict(re.findall(r"^#\s+recipe\.(\w+):\s*(.+?)\s*$", text, flags=re.M))
    assert recipe, "profiles/paper.yaml lists the recipe as '#   recipe.<field>: <value>' lines"
    config = protocol.PAPER_IMAGENET.config(0).to_dict()
    for name, value in recipe.items():
        import yaml

        expected = config["model"] if name == "model" else config[name]
        assert yaml.safe_load(value) == (list(expected) if isinstance(expected, tuple) else expected), name
    assert profiles.load_profile("paper")["profile"] == "paper"


def test_new_config_fields_keep_old_hashes():
    for name in ("stream", "stats_images", "train_eval_images", "save_val_topk", "init"):
        assert name in HASH_BASE
    assert config_diff(TrainConfig()) == {}
    old_style = TrainConfig(model={"arch": "alexnet", "width": 0.5}, dataset="cifar10-jpeg", epochs=3)
    assert set(config_diff(old_style)) == {"model", "epochs"}
    assert config_hash(old_style.replace(stream=True)) != config_hash(old_style)


# --------------------------------------------------------------------------- the streaming path

def test_paper_profile_code_path_trains_on_a_generated_imagenet_folder(imagenet):
    config = small(protocol.PAPER_IMAGENET.config(0))
    run = runs.get(config, progress=False, device="cpu")
    assert run.summary["classes"] == 2 and run.summary["train_images"] == 12 and run.summary["val_images"] == 6
    assert run.summary["epochs"] == 1 and 0.0 <= run.summary["ten_crop_top1"] <= 1.0
    row = run.history[0]
    assert {"train_eval_top1", "val_top1", "images_per_s"} <= set(row)
    assert run.artifact("val_probs").shape == (6, 2)  # complete predictions, for ensembles
    assert "val_top1_dropout_on_mean" not in run.summary  # the dropout errata reads in-memory splits only
    # the run is named with its data: the release and the folder's fingerprint join the hash
    assert run.config.data_variant == "ilsvrc2012" and run.config.data_fingerprint is not None
    assert run.hash == config_hash(runs.identify(config)) != config_hash(config)
    assert (runs.cache_dir() / run.hash / "checkpoint.pt").is_file()


def test_two_folders_never_share_a_run(imagenet, tmp_path, monkeypatch):
    """Pointing REPLICATION_IMAGENET at another folder is another run (and another decoded cache)."""
    import shutil

    config = small(protocol.PAPER_IMAGENET.config(0))
    first = runs.identify(config)
    other = tmp_path / "other-imagenet"
    shutil.copytree(imagenet, other)
    next((other / "train").rglob("*.JPEG")).unlink()  # one image fewer
    monkeypatch.setenv("REPLICATION_IMAGENET", str(other))
    assert runs.identify(config).data_fingerprint != first.data_fingerprint


def test_streaming_equals_the_in_memory_path_on_square_images(tmp_path, monkeypatch, isolated_store):
    """Workers only decode; crops, flips, lighting and the shuffle are the in-memory path's."""
    root = make_imagenet(tmp_path / "square", train_per_class=4, val_per_class=2, size=(256, 256))
    monkeypatch.setenv("REPLICATION_IMAGENET", str(root))
    monkeypatch.setenv("REPLICATION_WORKERS", "2")
    base = small(protocol.PAPER_IMAGENET.config(1), stats_images=None, train_eval_images=0, save_val_topk=0)
    streamed = trainer.train(base, progress=False, device="cpu")
    monkeypatch.setenv("REPLICATION_WORKERS", "0")
    in_memory = trainer.train(base.replace(stream=False), progress=False, device="cpu")
    for a, b in zip(streamed.metrics, in_memory.metrics):
        for key in ("train_loss", "val_loss", "val_top1"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    assert streamed.summary["ten_crop_top1"] == in_memory.summary["ten_crop_top1"]


def test_stream_workers_do_not_change_the_numbers(imagenet, monkeypatch):
    config = small(protocol.PAPER_IMAGENET.config(2))
    first = trainer.train(config, progress=False, device="cpu")
    monkeypatch.setenv("REPLICATION_WORKERS", "0")
    second = trainer.train(config, progress=False, device="cpu")
    assert first.metrics[0]["train_loss"] == second.metrics[0]["train_loss"]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_stream_rejects_synthetic():
    with pytest.raises(ValueError, match="synthetic"):
        TrainConfig(dataset="synthetic", stream=True)
