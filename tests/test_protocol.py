"""The paired protocol: arms as deltas on one baseline, paired by seed; the tuning split; the
stopping check; ensembles over complete predictions."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from replication.data.cache import ImageSplit
from replication.data.splits import hold_out, synthetic_split
from replication.engine import evaluate
from replication.engine.trainer import Trainer
from replication.experiments import protocol
from replication.seeds import STREAM_AUGMENT, STREAM_LIGHTING, generator

# A recipe the size of a unit test: the synthetic dataset, the 28 px family at width 1/8.
TOY = replace(protocol.CPU_NETTE, dataset="synthetic", data_variant=None, image_size=32, crop=28, width=0.125, epochs=3,
              lr_drop_epochs=(1, 2), train_eval_images=0, holdout_per_class=2)
TRAIN, VAL = synthetic_split("train", 8, 32, classes=10), synthetic_split("val", 2, 32, classes=10)


def trainer(arm: str, seed: int = 3) -> Trainer:
    return Trainer(TOY.config(seed, arm), data=(TRAIN, VAL))


@pytest.mark.parametrize("arm, changed", [("no_lrn", set()), ("non_overlapping", set()),
                                          ("lrn_scale_only", set())])
def test_arms_are_paired_with_the_baseline_by_seed(arm, changed):
    """Same seed: the same data order, the same augmentation draws, the same initial weights in
    every layer the arm leaves unchanged."""
    base, other = trainer("baseline"), trainer(arm)
    for epoch in (1, 2):
        assert torch.equal(base.epoch_indices(epoch), other.epoch_indices(epoch))
    batch = TRAIN.images[:16]
    drawn = [t.prepare(batch, generator(3, 1, STREAM_AUGMENT)) for t in (base, other)]
    assert torch.equal(drawn[0], drawn[1])
    weights = [dict(t.module.state_dict()) for t in (base, other)]
    for name, tensor in weights[0].items():
        if name in weights[1] and weights[1][name].shape == tensor.shape and name.split(".")[1] not in changed:
            assert torch.equal(tensor, weights[1][name]), name
    # and a different seed draws different weights
    assert not torch.equal(weights[0]["body.conv1.weight"], trainer("baseline", seed=4).module.body.conv1.weight)


def test_an_arm_without_lighting_keeps_every_crop_and_flip():
    """Lighting draws from its own stream (``lighting_stream``): turning it off leaves the crop and
    flip stream where the baseline's is, batch after batch. With one shared stream it would not."""
    for separate in (True, False):
        trainers = [Trainer(TOY.config(3, arm).replace(lighting_stream=separate), data=(TRAIN, VAL))
                    for arm in ("baseline", "no_lighting")]
        streams = [generator(3, 1, STREAM_AUGMENT) for _ in trainers]
        for t, stream in zip(trainers, streams):
            lighting = generator(3, 1, STREAM_LIGHTING) if separate else None
            for start in (0, 16, 32):
                t.prepare(TRAIN.images[start:start + 16], stream, lighting)
        assert torch.equal(streams[0].get_state(), streams[1].get_state()) is separate


def test_layer_seeds_keep_unchanged_layers_when_a_layer_changes_shape():
    """One stream per layer: one tower instead of two changes conv2, conv4 and conv5's shapes
    (they then see both halves) and leaves conv1, conv3 and FC6-FC8 at the same initial weights.
    With one stream for the whole net (He init redrawn after construction), every layer moves."""
    base = TOY.config(0)
    one_tower = base.replace(model={**base.model, "towers": 1})
    for layer_seeds, same in ((True, True), (False, False)):
        nets = [Trainer(c.replace(layer_seeds=layer_seeds), data=(TRAIN, VAL)).module for c in (base, one_tower)]
        assert nets[0].body.conv2.weight.shape != nets[1].body.conv2.weight.shape
        for layer in (nets[0].body.conv1, nets[0].body.conv3, nets[0].head.fc6, nets[0].head.fc8):
            name = [n for n, m in nets[0].named_modules() if m is layer][0]
            other = dict(nets[1].named_modules())[name]
            assert torch.equal(layer.weight, other.weight) is same, (layer_seeds, name)


def test_arm_deltas_and_tuning_configs():
    base = protocol.CPU_NETTE.config(0)
    assert base.layer_seeds and base.ten_crop and base.save_val_probs and base.holdout_per_class == 0
    assert protocol.CPU_NETTE.config(0, "no_lrn").model["lrn"] is None
    assert protocol.CPU_NETTE.config(0, "lrn_scale_only").model["lrn_alpha"] == 0.0
    assert protocol.CPU_NETTE.config(0, "non_overlapping").model["pooling"] == "non_overlapping"
    assert not protocol.CPU_NETTE.config(0, "no_lrn").save_val_probs  # only the baseline's feed ensembles
    assert protocol.CPU_NETTE.config(0, "no_lighting").lighting_std == 0.0
    assert protocol.CPU_NETTE.config(0, "no_dropout").model["dropout"] == 0.0
    assert protocol.CPU_NETTE.config(0).lighting_stream and not protocol.CPU_NETTE.config(0, tuning=True).lighting_stream
    with pytest.raises(ValueError, match="unknown arm 'no_dropout_typo'"):
        protocol.CPU_NETTE.config(0, "no_dropout_typo")
    tuning = protocol.CPU_NETTE.tuning_configs()
    assert len(tuning) == len(protocol.CPU_NETTE.tuning_grid)
    assert all(c.holdout_per_class == 100 and not c.ten_crop and not c.save_val_probs for c in tuning)
    assert {(c.model["width"], c.lr) for c in tuning} == {(p["width"], p["lr"]) for p in protocol.CPU_NETTE.tuning_grid}
    # the schedule divides by 10 at least twice, and the final fifth lies inside the last phase
    for recipe in protocol.RECIPES["cpu"]:
        assert len(recipe.lr_drop_epochs) >= 2
        assert recipe.lr_drop_epochs[-1] <= recipe.epochs - protocol.final_fifth(recipe.epochs)


def test_hold_out_draws_per_class_and_disjoint():
    labels = np.repeat(np.arange(4), 6)
    split = ImageSplit(np.arange(24, dtype=np.uint8).reshape(24, 1, 1, 1).repeat(3, axis=3), labels,
                       [f"c{i}" for i in range(4)], [f"c{i}" for i in range(4)], "toy", "train")
    rest, held = hold_out(split, 2, seed=0)
    assert np.bincount(held.labels).tolist() == [2, 2, 2, 2] and len(rest.labels) == 16
    pixels = lambda s: set(s.images[:, 0, 0, 0].tolist())  # noqa: E731
    assert pixels(rest) | pixels(held) == set(range(24)) and not pixels(rest) & pixels(held)
    assert pixels(hold_out(split, 2, seed=0)[1]) == pixels(held)  # deterministic
    assert pixels(hold_out(split, 2, seed=1)[1]) != pixels(held)
    with pytest.raises(ValueError, match="fewer than per_class=7"):
        hold_out(split, 7, seed=0)


def test_tuning_run_validates_on_the_held_out_training_images(monkeypatch):
    """With holdout_per_class the val split is never read: load_data serves held-out train images."""
    from replication.data import splits

    def fake_load_split(dataset, split, **kwargs):
        assert split == "train", "the tuning run read the validation split"
        return ImageSplit(np.zeros((30, 16, 16, 3), np.uint8), np.repeat(np.arange(3), 10), ["a", "b", "c"],
                          ["a", "b", "c"], dataset, split)

    monkeypatch.setattr(splits, "load_split", fake_load_split)
    config = protocol.CPU_NETTE.config(0, tuning=True).replace(holdout_per_class=3, image_size=16, crop=12)
    train, val = splits.load_data(config)
    assert (len(train), len(val)) == (21, 9) and val.split == "holdout"


@pytest.mark.parametrize("curve, passed", [
    ([0.9, 0.7, 0.6, 0.55, 0.50, 0.45, 0.42, 0.41, 0.409, 0.408], True),   # flat over the last two
    ([0.9, 0.7, 0.6, 0.55, 0.50, 0.45, 0.42, 0.41, 0.40, 0.39], False),    # still 2 points in two epochs
    ([0.9, 0.6, 0.5, 0.45, 0.42, 0.40, 0.39, 0.40, 0.385, 0.395, 0.39], True),  # noise around a plateau
])
def test_stopping_check_reads_the_trend_of_the_final_fifth(curve, passed):
    check = protocol.stopping_check(curve)
    assert check["window"] == 2 and check["passed"] is passed
    tail = np.asarray(curve[-3:])
    assert check["gain"] == pytest.approx(-np.polyfit([0, 1, 2], tail, 1)[0] * 2)
    with pytest.raises(ValueError, match="at least 3 epochs"):
        protocol.stopping_check([0.5, 0.4])


# The recipes' schedule: 30 epochs, the rate divided after epochs 15 and 24, so the final fifth (six
# epochs) is the last phase, and the epoch before it ran at the rate before.
RATES = [0.01] * 15 + [0.001] * 9 + [0.0001] * 6


def test_the_stopping_check_reads_the_last_phase_not_the_step_its_division_gives():
    before = list(np.linspace(0.60, 0.30, 24))
    stepped = before + [0.292, 0.293, 0.291, 0.292, 0.291, 0.292]  # 0.8 points in a step, then flat
    assert not protocol.stopping_check(stepped)["passed"]  # without the rates the step reads as a trend
    check = protocol.stopping_check(stepped, RATES)
    assert check["passed"] and check["phase_epochs_read"] == 6 and abs(check["gain"]) < 0.001
    falling = before + [0.295, 0.292, 0.289, 0.286, 0.283, 0.280]  # still 0.3 points an epoch at the last rate
    check = protocol.stopping_check(falling, RATES)
    assert not check["passed"] and check["gain"] == pytest.approx(0.018)
    short = protocol.stopping_check([0.9, 0.8, 0.7], [0.01, 0.001, 0.0001])  # the smoke schedule
    assert not short["passed"] and short["gain"] is None and "no trend" in short["why"]
    with pytest.raises(ValueError, match="3 learning rates for 30 epochs"):
        protocol.stopping_check(stepped, RATES[:3])


def test_runs_stopping_reads_the_mean_curve_of_an_arms_seeds():
    def run(curve):
        return SimpleNamespace(history=[{"val_top1": v, "lr": r} for v, r in zip(curve, RATES)])
    flat = [0.3] * 30
    wobbly = [0.3 + (0.01 if e % 2 else -0.01) for e in range(30)]  # each seed noisy, the mean flat
    assert protocol.runs_stopping([run(wobbly), run([2 * 0.3 - v for v in wobbly])])["gain"] == pytest.approx(0.0, abs=1e-12)
    assert protocol.runs_stopping([run(flat)])["passed"]
    assert not protocol.runs_stopping([SimpleNamespace(history=[{"val_top1": 0.5, "lr": 0.01}] * 2)])["passed"]


def test_ensemble_over_complete_predictions_equals_a_direct_average():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=40)
    members = [rng.dirichlet(np.ones(5), size=40) for _ in range(4)]
    effects = evaluate.ensemble_subset_effects(members, labels, size=3)
    assert len(effects) == 4  # every subset of 3 out of 4
    first = np.mean(members[:3], axis=0)  # members 0, 1, 2 by hand
    direct = np.mean(first.argmax(1) != labels) - np.mean([np.mean(m.argmax(1) != labels) for m in members[:3]])
    assert effects[0] == pytest.approx(direct)
    everyone = evaluate.ensemble_subset_effects(members, labels, size=4)
    assert everyone.shape == (1,)
    with pytest.raises(ValueError, match="2..4 members"):
        evaluate.ensemble_subset_effects(members, labels, size=5)


def test_the_one_tower_arm_is_footnote_2s_half_net():
    """Half the kernels in conv1-conv4 (all in one tower), conv5 and the FC layers as the baseline's."""
    base, half = (Trainer(TOY.config(0, arm), data=(TRAIN, VAL)).module for arm in ("baseline", "one_tower"))
    for layer, ratio in (("conv1", 2), ("conv2", 2), ("conv3", 2), ("conv4", 2), ("conv5", 1)):
        assert getattr(base.body, layer).out_channels == ratio * getattr(half.body, layer).out_channels, layer
    assert half.body.conv2.groups == 1 and base.body.conv2.groups == 2
    assert base.head.fc7.weight.shape == half.head.fc7.weight.shape
    assert torch.equal(base.head.fc7.weight, half.head.fc7.weight)  # paired: an unchanged layer, same start


def test_the_cifar_recipe_is_section_3_3s_net_and_its_arms_are_the_lrn_ones():
    base = protocol.CPU_CIFAR.config(0)
    assert base.model == {"arch": "conv_local"} and base.lighting_std == 0.0 and base.init == "model"
    assert protocol.CPU_CIFAR.config(0, "no_lrn").model == {"arch": "conv_local", "lrn": None}
    assert protocol.CPU_CIFAR.config(0, "lrn_scale_only").model == {"arch": "conv_local", "lrn_alpha": 0.0}
    with pytest.raises(ValueError, match="arm 'non_overlapping' changes alexnet nets"):
        protocol.CPU_CIFAR.config(0, "non_overlapping")


def test_a_finished_baseline_records_what_the_figures_and_errata_need():
    """Weights are not stored, so the baseline measures at the end what Figs. 3 and 4 and the
    dropout errata read: conv1, per-class errors, FC7 neighbours of seeded queries spread over the
    classes, and the error with dropout left on at test time."""
    from replication.engine.trainer import train

    config = TOY.config(0).replace(epochs=1, lr_drop_epochs=(), neighbour_queries=20, eval_dropout_draws=3)
    result = train(config, data=(TRAIN, VAL), progress=False)
    queries = result.artifacts["neighbour_queries"]
    assert len(set(VAL.labels[queries[:10]].tolist())) == 10  # the first ten queries: ten classes
    assert result.artifacts["neighbours"].shape == (20, 6) and result.artifacts["conv1"].ndim == 5
    assert result.artifacts["per_class_error"].shape == (10,)
    s = result.summary
    assert 0.0 <= s["val_top1_dropout_on_one_draw"] <= 1.0 and s["dropout_on_draws"] == 3
    again = train(config, data=(TRAIN, VAL), progress=False).summary
    assert again["val_top1_dropout_on_mean"] == s["val_top1_dropout_on_mean"]  # its own stream: it repeats
    arm = TOY.config(0, "no_lrn")
    assert arm.save_conv1 and arm.neighbours_k == 0 and arm.eval_dropout_draws == 0


def test_dropout_left_on_changes_the_predictions_and_eval_mode_restores_it():
    trainer = Trainer(TOY.config(0), data=(TRAIN, VAL))
    trainer.module.train()
    off = evaluate.predict_probs(trainer.module, VAL.images, trainer.augmenter)
    torch.manual_seed(0)
    on = evaluate.predict_probs(trainer.module, VAL.images, trainer.augmenter, keep_dropout=True)
    assert not np.allclose(off, on)  # dropout was on
    assert all(m.training for m in trainer.module.modules())  # every module's mode restored
    assert np.allclose(off, evaluate.predict_probs(trainer.module, VAL.images, trainer.augmenter))


def test_the_tutorial_departures_change_only_what_they_name():
    base = Trainer(TOY.config(0), data=(TRAIN, VAL)).module
    names = lambda net: [n for n, _ in net.body.named_children()] + [n for n, _ in net.head.named_children()]  # noqa: E731
    swapped = Trainer(TOY.config(0, "pool_before_lrn"), data=(TRAIN, VAL)).module
    order = names(swapped)
    assert order.index("pool1") < order.index("lrn1") and names(base).index("lrn1") < names(base).index("pool1")
    assert set(names(swapped)) == set(names(base))
    assert "drop5" in names(Trainer(TOY.config(0, "conv5_dropout"), data=(TRAIN, VAL)).module)
    relu_logits = Trainer(TOY.config(0, "fc8_relu"), data=(TRAIN, VAL)).module.eval()
    assert (relu_logits(torch.randn(4, 3, 28, 28)) >= 0).all()
    vision = Trainer(TOY.config(0, "torchvision_widths"), data=(TRAIN, VAL)).module
    assert vision.body.conv1.out_channels == round(64 * TOY.width) and vision.body.conv2.groups == 1
    assert vision.head.fc7.out_features == round(1024 * TOY.width) and isinstance(vision.body.lrn1, torch.nn.Identity)
    assert torch.equal(base.body.conv3.weight, swapped.body.conv3.weight)  # paired: same start elsewhere
