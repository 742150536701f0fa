"""Notebooks 06-08 on the paired protocol (two towers, PCA lighting, dropout): each arm's config delta, each
claim measured on fabricated runs, and the statistic and rule they add, on constructed inputs. The
notebooks themselves run at the smoke profile under nbval."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from replication import claims, models
from replication.claims.rules import RULES
from replication.experiments import driver, dropout, lighting, paired, protocol, towers

CONV = ("conv1", "conv2", "conv3", "conv4", "conv5")
PARAMS = {"profile": "cpu", "precision": "fp32", "seeds": [0, 1, 2]}
# Imagenette's recipe with 200 classes: a stand-in whose top-5 error is the paper's measure.
MANY_CLASSES = replace(protocol.CPU_NETTE, classes=200)


def out_channels(spec: dict) -> dict[str, int]:
    return {r["layer"]: r["output_shape"][0] for r in models.layer_table(spec) if r["kind"] in ("conv", "fc")}


# ---------------------------------------------------------------------------
# The arms' config deltas
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("chosen", [protocol.CPU_NETTE, protocol.SMOKE_NETTE])
def test_one_tower_halves_conv1_to_conv4_and_keeps_conv5_and_the_fc_layers(chosen):
    two, one = towers.net_spec(chosen, "baseline"), towers.net_spec(chosen, "one_tower")
    assert (two["towers"], one["towers"], one["half"]) == (2, 1, True)
    a, b = out_channels(two), out_channels(one)
    assert [b[n] * 2 for n in CONV[:4]] == [a[n] for n in CONV[:4]]
    assert [b[n] for n in ("conv5", "fc6", "fc7", "fc8")] == [a[n] for n in ("conv5", "fc6", "fc7", "fc8")]
    other = {k: v for k, v in chosen.config(0, "one_tower").to_dict().items() if k != "model"}
    assert other == {k: v for k, v in chosen.config(0, "non_overlapping").to_dict().items() if k != "model"}


def test_the_papers_half_net_has_footnote_2s_kernels():
    assert out_channels(towers.paper_spec("one_tower")) == {
        "conv1": 48, "conv2": 128, "conv3": 192, "conv4": 192, "conv5": 256, "fc6": 4096, "fc7": 4096, "fc8": 1000}
    table = towers.layer_tables(towers.paper_spec("baseline"), towers.paper_spec("one_tower"))
    assert table.loc["total", "two towers: parameters"] == f"{models.PAPER_PARAMETERS:,}"
    half = sum(r["params"] for r in models.layer_table(towers.paper_spec("one_tower")) if r["kind"] in ("conv", "fc"))
    assert table.loc["total", "one tower: parameters"].startswith(f"{half:,} (")
    assert table.loc["conv2", "reads"] == "own tower" and table.loc["conv3", "reads"] == "both towers"


def test_multiply_adds_count_each_weight_once_per_output_position():
    rows = {r["layer"]: r for r in models.layer_table(towers.paper_spec("baseline"))}
    assert towers.multiply_adds(rows["conv1"]) == 96 * 11 * 11 * 3 * 55 * 55
    assert towers.multiply_adds(rows["conv2"]) == 256 * 5 * 5 * 48 * 27 * 27  # grouped: 48 maps a kernel
    assert towers.multiply_adds(rows["fc8"]) == 4096 * 1000


def test_no_lighting_turns_off_only_the_lighting():
    base, arm = protocol.CPU_NETTE.config(0), protocol.CPU_NETTE.config(0, "no_lighting")
    assert (base.lighting_std, arm.lighting_std) == (0.1, 0.0)
    assert base.lighting_eigen_scale == arm.lighting_eigen_scale == "lambda_unit"
    assert base.lighting_stream and arm.lighting_stream  # lighting from its own stream: same crops and flips
    baseline_only = {"save_val_probs", *protocol.FINAL_BASELINE_MEASUREMENTS}
    differ = {k for k, v in base.to_dict().items() if arm.to_dict()[k] != v}
    assert differ == {"lighting_std"} | (baseline_only & differ) and "lighting_std" in differ


def test_no_dropout_builds_fc6_and_fc7_without_dropout():
    def rates(arm: str) -> list[float]:
        net = models.build_model({**protocol.CPU_NETTE.config(0, arm).model, "num_classes": 10, "input_size": 112})
        return [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]

    assert rates("baseline") == [0.5, 0.5]
    assert rates("no_dropout") == [0.0, 0.0]


def test_the_driver_trains_the_three_arms_beside_imagenette_baselines_only():
    arms = ["one_tower", "no_lighting", "no_dropout"]
    assert driver.arms_of(protocol.CPU_NETTE, arms) == ["baseline", *arms]
    assert driver.arms_of(protocol.CPU_CIFAR, arms) == ["baseline"]  # AlexNet arms: not the conv-local net


# ---------------------------------------------------------------------------
# The statistic and the rule they add
# ---------------------------------------------------------------------------

def test_epochs_to_plateau_on_constructed_curves():
    falling = [60, 50, 44, 41, 40.5, 40.2, 40.1, 40.0, 40.1, 39.9]
    assert claims.epochs_to_plateau(falling, 1.0, 2) == 4  # 41 is within a point of the final 40.0
    assert claims.epochs_to_plateau(falling, 5.0, 2) == 3
    overfitting = [60, 45, 38, 37, 38, 39.5, 40, 40.5, 41, 41]  # its lowest error early, then rising
    assert claims.epochs_to_plateau(overfitting, 1.0, 2) == 3
    still_falling = [60, 55, 50, 45, 40]
    assert claims.epochs_to_plateau(still_falling, 1.0, 2) == 5  # the last epoch is above the band: unsettled
    assert claims.epochs_to_plateau([50.0], 1.0, 1) == 1
    with pytest.raises(ValueError, match="window"):
        claims.epochs_to_plateau(falling, 1.0, 11)
    with pytest.raises(ValueError, match="one epoch"):
        claims.epochs_to_plateau([], 1.0, 1)


def test_paired_ratio_measurement_is_a_geometric_mean_with_a_log_interval():
    m = claims.paired_ratio_measurement([10.0, 12.0, 9.0], [5.0, 5.0, 5.0], [0, 1, 2])
    logs = [math.log(2.0), math.log(2.4), math.log(1.8)]
    assert m["value"] == pytest.approx(math.exp(np.mean(logs)))
    low, high = claims.t_interval(logs)
    assert m["ci95"] == pytest.approx([math.exp(low), math.exp(high)])
    assert m["scale"] == "log" and m["paired"] and m["groups"] == {"a": [10.0, 12.0, 9.0], "b": [5.0, 5.0, 5.0]}
    assert m["detectable"] > 1.0
    assert claims.paired_ratio_measurement([4.0], [2.0], [0])["ci95"] is None
    with pytest.raises(ValueError, match="positive"):
        claims.paired_ratio_measurement([1.0, 0.0], [1.0, 1.0], [0, 1])


def judged(paper_value, **params):
    return SimpleNamespace(paper_value=paper_value, params=params)


def ratio(a, b):
    return claims.paired_ratio_measurement(a, b, list(range(len(a))))


def test_paired_ratio_direction_on_constructed_ratios():
    rule = RULES["paired_ratio_direction"]
    doubles = judged(2.0, factor=1.5)
    assert rule(doubles, ratio([10, 12, 9], [5, 5, 5])) == claims.REPRODUCED  # about 2x
    assert rule(doubles, ratio([11, 11, 11.5], [10, 10, 10])) == claims.PARTLY_REPRODUCED  # above 1, below 1.33
    assert rule(doubles, ratio([8, 8, 8.5], [10, 10, 10])) == claims.NOT_REPRODUCED  # below 1
    assert rule(doubles, ratio([12, 8, 10], [10, 10, 10])) == claims.INCONCLUSIVE  # spans 1
    assert rule(doubles, ratio([20], [10])) == claims.INCONCLUSIVE  # one seed: no interval
    faster = judged(None, sign=-1)
    assert rule(faster, ratio([9, 9.5, 9.2], [10, 10, 10])) == claims.REPRODUCED  # below 1, any size
    assert rule(faster, ratio([12, 12.5, 12.2], [10, 10, 10])) == claims.NOT_REPRODUCED


def test_at_least_widens_the_band_of_a_paired_difference_outwards_only():
    rule = RULES["paired_difference_direction"]
    m = claims.paired_measurement([50.0, 51.0, 52.0], [56.0, 57.2, 57.9], [0, 1, 2])  # about -6: 6x the paper's -1
    assert rule(judged(-1.0, factor=3.0), m) == claims.PARTLY_REPRODUCED
    assert rule(judged(-1.0, factor=3.0, at_least=True), m) == claims.REPRODUCED
    small = claims.paired_measurement([50.0, 51.0, 52.0], [50.1, 51.1, 52.12], [0, 1, 2])  # about -0.1
    assert rule(judged(-1.0, factor=3.0, at_least=True), small) == claims.PARTLY_REPRODUCED


# ---------------------------------------------------------------------------
# The claims on fabricated runs
# ---------------------------------------------------------------------------

def fabricated(seed: int, arm: str = "baseline", top1: float = 60.0, top5: float = 30.0, gap: float = 5.0,
               seconds: float = 100.0, curve=None, chosen=MANY_CLASSES):
    """A finished run: ``curve`` the val top-1 % per epoch (lr divided after epoch 15, as the recipe); by
    default falling by a fifth of what is left each epoch, flat by the end (it passes the stopping check)."""
    curve = curve or [top1 + 3 * 0.8 ** e for e in range(30)]
    history = [{"epoch": e, "val_top1": v / 100, "train_eval_top1": (v - gap) / 100, "lr": 0.01 if e <= 15 else 0.001,
                "seconds": seconds + (e % 3)} for e, v in enumerate(curve, 1)]
    summary = {"ten_crop_top1": top1 / 100, "ten_crop_top5": top5 / 100, "val_top1": (top1 + 1) / 100,
               "val_top5": (top5 + 1) / 100}
    return SimpleNamespace(config=chosen.config(seed, arm), summary=summary, history=history, hash=f"{arm}{seed}")


def arms_of(chosen, arm: str, base: list, other: list) -> dict:
    return {paired.IMAGENET: paired.Arms(chosen, {"baseline": base, arm: other})}


def test_towers_claims_on_fabricated_runs():
    base = [fabricated(s, top1=60.0 + s, top5=30.0 + s, seconds=120.0) for s in range(3)]
    one = [fabricated(s, "one_tower", top1=61.5 + s + 0.1 * s, top5=31.0 + s, seconds=100.0 + s) for s in range(3)]
    got = towers.claims_of(arms_of(MANY_CLASSES, "one_tower", base, one), PARAMS)
    assert got["towers.top1"]["measurement"]["value"] == pytest.approx(-1.6)  # two minus one tower
    assert claims.verdict("towers.top1", got["towers.top1"]["measurement"]) == claims.REPRODUCED
    assert got["towers.top5"]["measurement"]["value"] == pytest.approx(-1.0)
    assert got["towers.train_time"]["measurement"] is None
    assert "one device" in got["towers.train_time"]["scale"]["variant"]
    assert claims.verdict("towers.train_time", None) == claims.NOT_EVALUATED
    timing = got["towers.train_time_one_device"]["measurement"]  # median seconds: 121 vs 101, 102, 103
    assert timing["value"] == pytest.approx(math.exp(np.mean([math.log(121 / (101 + s)) for s in range(3)])))
    assert claims.verdict("towers.train_time_one_device", timing) == claims.NOT_REPRODUCED  # slower on one device
    ten = towers.claims_of(arms_of(protocol.CPU_NETTE, "one_tower", base, one), PARAMS)
    assert ten["towers.top5"]["measurement"] is None and "10" in ten["towers.top5"]["scale"]["variant"]


def test_lighting_claim_on_fabricated_runs():
    base = [fabricated(s, top1=60.0 + s) for s in range(3)]
    off = [fabricated(s, "no_lighting", top1=61.8 + s + 0.2 * (s % 2)) for s in range(3)]
    got = lighting.claims_of(arms_of(protocol.CPU_NETTE, "no_lighting", base, off), PARAMS)
    m = got["lighting.top1"]["measurement"]
    assert m["value"] == pytest.approx(-(1.8 + 0.2 / 3))
    assert claims.verdict("lighting.top1", m) == claims.REPRODUCED
    worse = lighting.claims_of(arms_of(protocol.CPU_NETTE, "no_lighting", off, base), PARAMS)
    assert claims.verdict("lighting.top1", worse["lighting.top1"]["measurement"]) == claims.NOT_REPRODUCED


def plateau_curve(settles_at: int) -> list[float]:
    """Val top-1 % falling by 4 points an epoch until ``settles_at``, flat at 40 after it, in a 15-epoch first
    phase; then 36 after the rate's division."""
    return [40.0 + 4.0 * max(0, settles_at - e) for e in range(1, 16)] + [36.0] * 15


def test_dropout_claims_on_fabricated_runs():
    base = [fabricated(s, gap=5.0 + 0.1 * s, curve=plateau_curve(settle)) for s, settle in zip(range(3), (8, 10, 9))]
    off = [fabricated(s, "no_dropout", gap=15.0 + 0.3 * s, curve=plateau_curve(settle))
           for s, settle in zip(range(3), (4, 5, 4))]
    assert [paired.epochs_to_converge(r) for r in base] == [8, 10, 9]  # the first epoch at the level: 40
    assert len(paired.first_phase(base[0])) == 15
    got = dropout.claims_of(arms_of(protocol.CPU_NETTE, "no_dropout", base, off), PARAMS)
    gap = got["dropout.overfitting"]["measurement"]
    assert gap["value"] == pytest.approx(10.2)  # gaps 15, 15.3, 15.6 without and 5, 5.1, 5.2 with dropout
    assert gap["groups"]["a"][0] == pytest.approx(15.0)  # without dropout first
    assert claims.verdict("dropout.overfitting", gap) == claims.REPRODUCED
    speed = got["dropout.convergence"]["measurement"]
    assert speed["value"] == pytest.approx((8 / 4 * 10 / 5 * 9 / 4) ** (1 / 3))
    assert claims.verdict("dropout.convergence", speed) == claims.REPRODUCED
    table = dropout.convergence_table(arms_of(protocol.CPU_NETTE, "no_dropout", base, off)[paired.IMAGENET])
    assert table.loc[("no_dropout", 1), "converged at epoch"] == 5
    same = dropout.claims_of(arms_of(protocol.CPU_NETTE, "no_dropout", base, base), PARAMS)
    assert claims.verdict("dropout.convergence", same["dropout.convergence"]["measurement"]) == claims.INCONCLUSIVE


def test_interval_sentences_of_a_ratio_speak_of_one():
    spans = {"measured": ratio([12, 8, 10], [10, 10, 10])}
    assert "spans 1" in paired.interval_sentence(spans, "the ratio")
    above = {"measured": ratio([20, 24, 18], [10, 10, 10])}
    assert "excludes 1" in paired.interval_sentence(above, "the ratio") and "above 1" in \
        paired.interval_sentence(above, "the ratio")


# ---------------------------------------------------------------------------
# PCA lighting's record, tables and figure
# ---------------------------------------------------------------------------

def record(eigvals=(9000.0, 900.0, 100.0)) -> dict:
    return {"eigvals": list(eigvals), "eigvecs": np.eye(3).tolist()}


def test_pca_table_gives_each_readings_shift_along_each_axis():
    table = lighting.pca_table(record())
    assert table.loc["p1", "shift sd, lambda_unit (levels)"] == f"{0.1 * 9000 / 255:,.1f}"
    assert table.loc["p2", "shift sd, sqrt (levels)"] == f"{0.1 * 30:,.1f}"
    assert table.loc["p3", "shift sd, lambda (levels)"] == f"{0.1 * 100:,.1f}"
    assert list(lighting.readings_table(record()).index) == ["lambda_unit", "sqrt", "lambda"]


def test_plot_lighting_draws_the_same_alphas_under_every_reading():
    images = np.full((2, 8, 8, 3), 128, dtype=np.uint8)
    fig = lighting.plot_lighting(images, record(), draws=2)
    assert len(fig.axes) == 2 * (1 + 3 * 2)
    alphas = torch.tensor([[1.0, 0.0, 0.0]])
    eigvals, eigvecs = lighting.eigen(record())
    unit, literal = (lighting.lit(images[:1], alphas, eigvals, eigvecs, r) for r in ("lambda_unit", "lambda"))
    assert int(unit[0, 0, 0, 0]) == 128 + round(9000 / 255) and int(literal[0, 0, 0, 0]) == 255  # clipped


@pytest.fixture
def synthetic_stand_in(monkeypatch, tmp_path):
    """The stand-in's recipe on generated images, with the stores in ``tmp_path``."""
    monkeypatch.setenv("REPLICATION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPLICATION_STORE", str(tmp_path / "runs"))
    chosen = replace(protocol.SMOKE_NETTE, dataset="synthetic", data_variant=None, image_size=32, crop=28)
    monkeypatch.setattr(lighting, "recipe", lambda params, key: chosen)
    return chosen


def test_pca_record_is_computed_once_then_read_from_the_store(synthetic_stand_in, monkeypatch):
    smoke = {**PARAMS, "profile": "smoke"}
    first = lighting.pca_record(smoke)
    assert first["n_images"] == 320 and len(first["eigvals"]) == 3 and first["eigvals"][0] >= first["eigvals"][1]
    assert lighting.pca_path(lighting.pca_key(synthetic_stand_in.config(0)), True).is_file()
    monkeypatch.setattr(lighting, "compute_pca", lambda config: pytest.fail("computed again"))
    assert lighting.pca_record(smoke) == first
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "1")
    with pytest.raises(LookupError, match="notebook 07"):
        lighting.pca_record(PARAMS)  # cpu: the committed store, read-only, and no record in it
