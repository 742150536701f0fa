"""The CIFAR-10 protocol (experiments.cifar) and notebooks 02 (Fig. 1) and 03 (LRN): configs, measurements, rules.

Fast: no real training except one NaN run on a few synthetic images.
"""

from __future__ import annotations

import math

import pytest
import torch

from replication import claims
from replication.experiments import cifar, relu_speedup
from replication.engine.config import config_diff, config_hash, HASH_BASE, TrainConfig
from replication.engine.trainer import Trainer
from replication.data.splits import synthetic_split
from replication.paths import DEFAULT_STORE

# The cpu-profile configs name the committed runs in runs/<hash>/: a change to a builder that moves
# one of these hashes orphans them (retrain, or keep the old config). Update only on purpose.
CPU_HASHES = {
    ("paper", "relu", 0.001): "82e13a3873316b8f",
    ("paper", "relu", 0.003): "8a416fe038d7f883",
    ("paper", "relu", 0.01): "d6663d32e3110ace",
    ("paper", "tanh", 0.001): "abf65bed32e60a43",
    ("paper", "tanh", 0.003): "9c3eebbd5e2c8ab3",
    ("paper", "tanh", 0.01): "37e59be1f72ddeef",
    ("modern", "relu", 0.003): "380237ffaef160f1",
    ("modern", "relu", 0.01): "a4ed932351f000d2",
    ("modern", "relu", 0.03): "5f81fe3afb1dffe5",
    ("modern", "tanh", 0.003): "1c9faa7a8c1622de",
    ("modern", "tanh", 0.01): "785a72253d786307",
    ("modern", "tanh", 0.03): "cded3e11cec1d83b",
}


# --------------------------------------------------------------------------- the input_scale option

def test_input_scale_default_leaves_every_existing_hash_alone():
    assert HASH_BASE["input_scale"] == 1.0
    assert "input_scale" not in config_diff(TrainConfig())
    assert config_hash(TrainConfig()) == config_hash(TrainConfig(input_scale=1))
    assert config_hash(TrainConfig(input_scale=64)) != config_hash(TrainConfig())
    with pytest.raises(ValueError, match="input_scale"):
        TrainConfig(input_scale=0)


def test_input_scale_divides_the_network_input():
    data = (synthetic_split("train", 4), synthetic_split("val", 2))
    base = TrainConfig(dataset="synthetic", lighting_std=0.0, flip=False, epochs=1)
    raw = Trainer(base, data=data, device="cpu").prepare(data[0].images[:8], None)
    scaled = Trainer(base.replace(input_scale=64.0), data=data, device="cpu").prepare(data[0].images[:8], None)
    torch.testing.assert_close(scaled * 64.0, raw)


# --------------------------------------------------------------------------- configs

def test_cpu_configs_are_served_by_the_committed_store():
    """The cpu configs hash to runs that are in runs/: a change that moves a hash without a
    migration (python -m replication.cli.migrate) would make CI retrain, and fails here."""
    configs = [cifar.fig1_config(setting, activation, lr, 0, "cpu") for setting, activation, lr in CPU_HASHES]
    missing = [config_hash(c) for c in configs if not (DEFAULT_STORE / config_hash(c) / "summary.json").exists()]
    assert not missing, f"cpu configs with no stored run: {missing}"


def test_fig1_settings_differ_only_in_init_and_input_scale():
    paper = cifar.fig1_config("paper", "tanh", 0.01, 1, "cpu")
    modern = cifar.fig1_config("modern", "tanh", 0.01, 1, "cpu")
    assert set(config_diff(paper)) ^ set(config_diff(modern)) == {"input_scale"}
    assert paper.model == {"arch": "fig1", "activation": "tanh"}
    assert modern.model == {"arch": "fig1", "activation": "tanh", "paper_init": False}
    assert modern.input_scale == cifar.MODERN_INPUT_SCALE and paper.input_scale == 1.0
    # "No regularization of any kind": no weight decay, no augmentation, constant lr
    for config in (paper, modern):
        assert config.weight_decay == 0.0 and not config.flip and config.lighting_std == 0.0
        assert config.schedule == "constant" and config.stop_at_train_error == 0.25 and config.crop is None
    with pytest.raises(ValueError, match="setting"):
        cifar.fig1_config("other", "relu", 0.01, 0, "cpu")


def test_sweep_has_three_rates_per_activation():
    for setting in cifar.SETTINGS:
        sweep = relu_speedup.sweep_configs(setting, "smoke", 0)
        assert len(relu_speedup.LR_GRID[setting]) >= 3
        assert sorted({a for a, _ in sweep}) == ["relu", "tanh"]
        assert len(sweep) == 2 * len(relu_speedup.LR_GRID[setting])


def rows(*errors):
    return [{"epoch": i + 1, "train_error": e} for i, e in enumerate(errors)]


def test_epochs_to_threshold_interpolates_between_epoch_ends():
    assert relu_speedup.epochs_to_threshold(rows(0.5, 0.3, 0.2)) == (pytest.approx(2.5), False)
    assert relu_speedup.epochs_to_threshold(rows(0.5, 0.25, 0.15)) == (pytest.approx(2.0), False)  # 0.25 is not below
    assert relu_speedup.epochs_to_threshold(rows(0.1)) == (pytest.approx(1 - 0.15 / 0.8), False)  # from chance at 0
    assert relu_speedup.epochs_to_threshold(rows(0.8, 0.6, 0.4)) == (3.0, True)  # censored at its last epoch
    assert relu_speedup.epochs_to_threshold([]) == (0.0, True)


class FakeRun:
    def __init__(self, *errors, epochs=30):
        self.history = rows(*errors)
        self.config = TrainConfig(epochs=epochs)
        self.hash = str(id(self))
        self.summary = {}


def test_choose_lr_takes_the_fastest_and_ranks_censored_runs_last():
    sweep = {("relu", 0.01): FakeRun(0.5, 0.2), ("relu", 0.03): FakeRun(0.3, 0.1),
             ("relu", 0.1): cifar.Diverged(TrainConfig(), "h", 1, []),
             ("tanh", 0.01): FakeRun(0.8, 0.6), ("tanh", 0.03): FakeRun(0.7, 0.5)}
    assert relu_speedup.choose_lr(sweep, "relu") == 0.03
    assert relu_speedup.choose_lr(sweep, "tanh") == 0.03  # both censored: the lower final error
    assert relu_speedup.run_epochs_to_threshold(sweep[("relu", 0.1)]) == (90.0, True)
    table = relu_speedup.sweep_table(sweep)
    assert table.loc[("relu", "0.1"), "epochs to 25%"] == "diverged (NaN)"
    assert table.loc[("tanh", "0.01"), "epochs to 25%"] == "> 2 (censored)"


def speedup(tanh, relu, censored_tanh=None, censored_relu=None):
    censored_tanh = censored_tanh or [False] * len(tanh)
    censored_relu = censored_relu or [False] * len(relu)
    return relu_speedup.speedup_measurement(list(zip(tanh, censored_tanh)), list(zip(relu, censored_relu)), range(len(tanh)))


@pytest.mark.parametrize("tanh, relu, ct, cr, status", [
    ([30, 33, 27], [5, 5.5, 4.5], None, None, claims.REPRODUCED),          # 6x
    ([60, 66, 54], [3, 3.3, 2.7], None, None, claims.PARTLY_REPRODUCED),   # 20x: above 1, outside factor 2
    ([30, 30, 30], [5, 6, 5], [True] * 3, None, claims.PARTLY_REPRODUCED),  # tanh censored: a lower bound
    ([6, 6.5, 5.5], [6, 5.5, 6.5], None, None, claims.INCONCLUSIVE),      # a quick modern-setting run: no speed-up
    ([3, 3.2, 2.8], [6, 6.3, 5.8], None, None, claims.NOT_REPRODUCED),    # tanh faster
    ([3, 3.2, 2.8], [6, 6.3, 5.8], [True, False, False], None, claims.INCONCLUSIVE),
    ([30, 33, 27], [5, 5.5, 30], None, [False, False, True], claims.INCONCLUSIVE),  # ReLU censored
    ([30], [5], None, None, claims.INCONCLUSIVE),                          # one seed: no interval
])
def test_censored_ratio_rule(tanh, relu, ct, cr, status):
    measurement = speedup(tanh, relu, ct, cr)
    assert claims.verdict("relu.speedup", measurement) == status
    assert claims.verdict("relu.speedup", claims.plain(measurement)) == status  # survives the JSON


@pytest.mark.parametrize("tanh, relu, ct, cr, reading", [
    ([30, 33, 27], [5, 5.5, 4.5], None, None, "ReLU faster, 6.0×"),
    ([30, 30, 30], [14, 15, 14.5], [True] * 3, None, "ReLU faster, 2.1× at least (tanh censored)"),
    ([6, 6.5, 5.5], [6, 5.5, 6.5], None, None, "no resolved difference (the interval spans 1)"),
    ([3, 3.2, 2.8], [6, 6.3, 5.8], None, None, "tanh faster, 2.0×"),
    ([30, 33, 27], [5, 5.5, 30], None, [False, False, True], "ReLU censored: its time, and so the speed-up, "
                                                              "is not measured"),
    ([30], [5], None, None, "ratio 6.00 from one seed: no interval"),
])
def test_speedup_reading_follows_the_interval_and_the_censoring(tanh, relu, ct, cr, reading):
    assert relu_speedup.speedup_reading(speedup(tanh, relu, ct, cr)) == reading


def test_settings_table_marks_censored_means():
    result = relu_speedup.SpeedupResult("paper", {}, {"relu": 0.003, "tanh": 0.01}, {}, [0, 1, 2],
                             speedup([30, 30, 30], [14, 15, 14.5], [True] * 3))
    row = relu_speedup.settings_table([result]).loc["paper"]
    assert row["tanh epochs to 25%"] == "> 30.0"
    assert row["relu epochs to 25%"] == "14.5"
    assert row["relu lr"] == "0.003"
    assert row["reading"].startswith("ReLU faster")


def test_speedup_measurement_is_the_geometric_mean_ratio():
    m = speedup([30, 20], [5, 5])
    assert m["value"] == pytest.approx(math.sqrt(30 * 20) / 5)
    assert m["censored"] == {"a": [False, False], "b": [False, False]}
    low, high = m["ci95"]
    assert low < m["value"] < high


def test_claims_are_registered_for_both_notebooks():
    assert [c.id for c in claims.claims_for("02_relu_speedup")] == ["relu.speedup", "relu.speedup_modern"]
    assert {c.id for c in claims.claims_for("03_lrn")} == {"lrn.cifar_without", "lrn.cifar_with",
                                                          "lrn.cifar_difference", "lrn.imagenet_top1",
                                                          "lrn.imagenet_top5"}
    assert claims.get_claim("relu.speedup").params == {"factor": 2.0}


# --------------------------------------------------------------------------- runs and figures

def test_a_diverged_run_is_recorded_and_counts_as_censored(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATION_STORE", str(tmp_path / "runs"))
    monkeypatch.setenv("REPLICATION_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("REPLICATION_STORE_READONLY", raising=False)
    config = TrainConfig(dataset="synthetic", train_per_class=2, val_per_class=1, lr=1e12, epochs=2,
                         lighting_std=0.0, schedule="constant", stop_at_train_error=0.25)
    run = cifar.get_run(config, "cpu")
    assert isinstance(run, cifar.Diverged)
    assert (tmp_path / "runs" / "_diverged" / f"{config_hash(config)}.json").exists()
    again = cifar.get_run(config, "cpu")  # read back, not retrained
    assert isinstance(again, cifar.Diverged) and again.hash == run.hash
    assert relu_speedup.run_epochs_to_threshold(again) == (2.0, True)


def test_figures_draw_from_runs():
    import matplotlib

    matplotlib.use("Agg")
    result = relu_speedup.SpeedupResult("paper", {("relu", 0.01): FakeRun(0.5, 0.2), ("tanh", 0.01): FakeRun(0.8, 0.6)},
                             {"relu": 0.01, "tanh": 0.01},
                             {"relu": [FakeRun(0.5, 0.2)], "tanh": [FakeRun(0.8, 0.6)]}, [0], {})
    fig = relu_speedup.plot_fig1([result])
    lines = fig.axes[0].get_lines()
    assert [line.get_linestyle() for line in lines[:2]] == ["-", "--"]  # tanh dashed, as in Fig. 1
    assert any(list(line.get_ydata()) == [0.25, 0.25] for line in lines)  # the 25% line
    relu_speedup.plot_sweep(result)


def test_the_fig1_grid_grows_until_the_best_rate_is_bracketed():
    """A fastest rate at the top of the grid asks for the next rate up the 1-3-10 ladder, at the
    bottom for the next one down; once slower rates lie on both sides (a diverged run counts as
    slower) the grid is closed."""
    from types import SimpleNamespace

    from replication.experiments import relu_speedup

    def run(*errors):
        return SimpleNamespace(history=[{"epoch": i + 1, "train_error": e} for i, e in enumerate(errors)])

    slow, fast, faster = run(0.8, 0.6, 0.4), run(0.5, 0.2), run(0.3, 0.2)
    sweep = {("tanh", 0.001): slow, ("tanh", 0.003): fast, ("tanh", 0.01): faster}
    assert relu_speedup.grid_extension(sweep, "tanh") == 0.03  # best at the top: grow upwards
    sweep[("tanh", 0.03)] = run(0.6, 0.5, 0.4)
    assert relu_speedup.grid_extension(sweep, "tanh") is None   # 0.01 now has slower rates both sides
    low = {("relu", 0.001): faster, ("relu", 0.003): fast, ("relu", 0.01): slow}
    assert relu_speedup.grid_extension(low, "relu") == 0.0003   # best at the bottom: grow downwards
    censored = {("tanh", lr): run(0.9 - lr, 0.8 - lr) for lr in (0.001, 0.003, 0.01)}  # all censored
    assert relu_speedup.grid_extension(censored, "tanh") == 0.03  # the lowest final error is at the top
