"""The ImageNet protocol (experiments.imagenet) and notebooks 03, 04 and 05: configs per profile, measurements, rules, the driver.

Everything here runs on fabricated runs or a few synthetic images; the notebooks
themselves run at the smoke profile under nbval (reports/smoke).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from replication import claims, data, profiles
from replication.experiments import driver, error_rates, imagenet, lrn, pooling, scales
from replication.engine import runs
from replication.experiments.baselines import BaselineConfig
from replication.engine.config import config_diff, config_hash, TrainConfig
from replication.engine.trainer import train
from replication.provenance import describe_machines


def params(profile="cpu", **changes):
    return {**profiles.load_profile(profile), **changes}


# --------------------------------------------------------------------------- configs

@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_every_config_follows_the_papers_recipe(profile):
    p = params(profile)
    for key, configs in error_rates.plan(p).items():
        for config in configs:
            if isinstance(config, BaselineConfig):
                continue
            assert (config.lr, config.momentum, config.weight_decay, config.batch_size) == (0.01, 0.9, 5e-4, 128)
            assert config.optimizer == "paper" and config.flip and config.mean_subtraction
            assert config.lighting_std == 0.1 and config.model["arch"] == "alexnet"
            assert config.crop == round(config.image_size * 224 / 256)  # 7/8 of the side (Section 4.1)
            assert config.ten_crop and config.save_val_topk == 10 and config.precision == p["precision"]
            assert config.model["towers"] == 2  # the paper's two towers, grouped on one device


def test_cpu_profile_trains_five_seeds_and_reuses_04_runs_in_05():
    p = params("cpu")
    assert scales.seeds_for(p) == [0, 1, 2, 3, 4]
    plan4, plan5 = error_rates.plan(p), pooling.plan(p)
    assert len(plan4["tiny"]) == len(plan4["imagenette"]) == 5 and len(plan4["baselines"]) == 2
    assert [config_hash(c) for c in plan5["overlapping"]] == [config_hash(c) for c in plan4["tiny"]]
    for over, non in zip(plan5["overlapping"], plan5["non_overlapping"]):
        assert set(config_diff(over)) == set(config_diff(non))  # the same fields differ from the defaults ...
        assert {k for k in config_diff(over) if config_diff(over)[k] != config_diff(non)[k]} == {"model"}
        assert over.model == {**non.model, "pooling": "overlapping"}
    assert scales.scale_for("cpu").family("tiny").stream is False


def test_cpu_budget_fits_twenty_minutes_a_tiny_imagenet_run():
    family = scales.scale_for("cpu").family("tiny")
    rate = imagenet.THROUGHPUT[f"tiny 28px width {family.width:g}, 2 towers"]["wall"]
    train_images, val_images = 100_000, 10_000
    per_epoch = train_images / rate + 2 * val_images / (2 * rate)  # evaluation is ~2x faster than training
    ten_crop = 10 * val_images / (2 * rate)
    assert (family.epochs * per_epoch + ten_crop) / 60 <= 21
    assert family.epochs >= 3 and family.train_eval_images == 10_000


def test_smoke_profile_is_small_and_seeds_stay_as_given():
    p = params("smoke")
    assert scales.seeds_for(p) == [0]
    for family in scales.scale_for("smoke").families:  # the committed sample, all of it: at most 16 a class
        assert family.data_variant == "sample" and family.train_per_class is None
        assert max(data.get_spec(family.dataset).variant("sample").counts.values()) <= 16 * 200
    for baseline in scales.scale_for("smoke").baselines:
        assert baseline.data_variant == "sample"
    tiny = error_rates.plan(p)["tiny"][0]
    assert tiny.epochs == 1 and tiny.lr_drop_epochs == () and tiny.data_variant == "sample"
    for config in error_rates.plan(params("cpu"))["tiny"]:  # the cpu runs name the 32 px mirror, never the sample
        assert config.data_variant == "32px"


def test_seeds_are_extended_without_repeats():
    assert scales.seeds_for(params("cpu", seeds=[3, 0])) == [3, 0, 1, 2, 4]
    assert scales.seeds_for(params("cpu", seeds=[0, 1, 2, 3, 4, 5])) == [0, 1, 2, 3, 4, 5]


def test_drop_epoch():
    assert [imagenet.drop_epoch(e) for e in (2, 3, 5, 10, 15)] == [1, 2, 4, 8, 12]


def test_training_order_covers_both_notebooks_once_shared_runs_first():
    p = params("cpu")
    order = driver.training_order(p)
    plan4, plan5 = error_rates.plan(p), pooling.plan(p)
    expected = {config_hash(c) for k, cs in plan4.items() if k != "baselines" for c in cs}
    expected |= {config_hash(c) for cs in plan5.values() for c in cs}
    got = [config_hash(c) for c in order if isinstance(c, TrainConfig)]
    assert len(got) == len(set(got)) == len(expected) == 16 and set(got) == expected
    assert got[:5] == [config_hash(c) for c in plan4["tiny"]]
    assert got[-1] == config_hash(plan4["budget_check"][0])  # the one long run comes last
    assert sum(isinstance(c, BaselineConfig) for c in order) == 2


def test_lrn_study_shares_the_paper_nets_and_adds_an_lrn_off_arm():
    p = params("cpu")
    plan3, plan4 = lrn.imagenet_plan(p), error_rates.plan(p)
    assert [config_hash(c) for c in plan3["lrn"]] == [config_hash(c) for c in plan4["tiny"]]
    for on, off in zip(plan3["lrn"], plan3["no_lrn"]):
        assert on.seed == off.seed and on.model == {k: v for k, v in off.model.items() if k != "lrn"}
        assert off.model["lrn"] is None and "lrn" not in on.model
    order = driver.training_order(p, ["03"])
    assert [config_hash(c) for c in order] == [config_hash(c) for c in
                                               plan3["lrn"] + plan3["no_lrn"] + plan3["lrn_scale_only"]]
    assert "no LRN" in driver.describe(plan3["no_lrn"][0]) and "no LRN" not in driver.describe(plan3["lrn"][0])
    for on, control in zip(plan3["lrn"], plan3["lrn_scale_only"]):  # the control: alpha = 0, nothing else
        assert control.seed == on.seed and control.model == {**on.model, "lrn_alpha": 0.0}
    assert "lrn_scale_only" not in lrn.imagenet_plan(params("paper"))
    with pytest.raises(ValueError, match="lrn must be one of"):
        imagenet.cnn_config(scales.CPU_TINY, 0, lrn="off")


def test_lrn_arms_build_the_nets_they_name():
    import torch

    from replication import models

    plan = lrn.imagenet_plan(params("cpu"))
    spec = {"num_classes": 200, "input_size": 28}
    nets = {arm: models.build_model({**plan[arm][0].model, **spec}) for arm in plan}
    norms = {arm: [m for m in net.modules() if isinstance(m, models.LocalResponseNorm)] for arm, net in nets.items()}
    assert len(norms["lrn"]) == 2 and norms["no_lrn"] == [] and len(norms["lrn_scale_only"]) == 2
    control = norms["lrn_scale_only"][0]
    x = torch.rand(2, 16, 5, 5) * 50
    assert torch.allclose(control(x), x / 2.0 ** 0.75)  # alpha = 0: a constant rescaling, k^-beta
    assert not torch.allclose(norms["lrn"][0](x), x / 2.0 ** 0.75)


def test_driver_lists_the_runs(capsys):
    assert driver.main(["--profile", "cpu", "--only", "04", "05", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 18 and all("/18]" in line for line in lines)


def test_budget_check_is_one_longer_net_of_the_claims_recipe():
    p = params("cpu")
    plan4 = error_rates.plan(p)
    (check,) = plan4["budget_check"]
    first = plan4["tiny"][0]
    assert check.epochs > first.epochs and check.lr_drop_epochs == (imagenet.drop_epoch(check.epochs),)
    changed = {k for k in set(config_diff(check)) | set(config_diff(first))
               if config_diff(check).get(k) != config_diff(first).get(k)}
    assert changed == {"epochs", "lr_drop_epochs"}  # same seed, pooling, width, recipe: only the budget differs
    assert error_rates.plan(params("paper"))["budget_check"] == []
    assert len(error_rates.plan(params("smoke"))["budget_check"]) == 1


# --------------------------------------------------------------------------- measurements on fabricated runs

def fake_run(seed, centre=(0.6, 0.3), ten=(0.58, 0.29), probs=None, labels=None, pooling="overlapping",
             history=None, classes=5):
    config = imagenet.cnn_config(scales.scale_for("cpu").family("tiny"), seed, pooling)
    summary = {"val_top1": centre[0], "val_top5": centre[1], "ten_crop_top1": ten[0], "ten_crop_top5": ten[1],
               "classes": classes}
    arrays = {}
    if probs is not None:
        from replication.engine.evaluate import topk_artifacts

        arrays = topk_artifacts(probs, 10, labels)
    history = history or [{"epoch": 1, "val_top1": centre[0], "train_eval_top1": centre[0] - 0.1}]
    return runs.Run(config, config_hash(config), summary, history, None, arrays)


def random_probs(rng, n, classes):
    logits = rng.normal(size=(n, classes)) * 2
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def test_ensemble_from_topk_matches_the_full_average():
    from replication.engine import evaluate

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, size=200)
    probs = [random_probs(rng, 200, 8) for _ in range(3)]
    members = [fake_run(s, probs=p, labels=labels, classes=8) for s, p in enumerate(probs)]
    averaged, got_labels = imagenet.ensemble_probs_from_topk(members)  # k = 8 = every class: exact up to float16
    np.testing.assert_allclose(averaged, evaluate.ensemble_probs(probs), atol=2e-3)
    assert np.array_equal(got_labels, labels)
    one = error_rates.ensemble_errors(members[:1])
    exact = evaluate.results_from_probs(probs[0], labels)
    assert one == pytest.approx((exact.top1, exact.top5))


def test_ensemble_refuses_runs_on_other_images():
    rng = np.random.default_rng(1)
    a = fake_run(0, probs=random_probs(rng, 10, 5), labels=np.zeros(10, int))
    b = fake_run(1, probs=random_probs(rng, 10, 5), labels=np.ones(10, int))
    with pytest.raises(ValueError, match="other validation images"):
        imagenet.ensemble_probs_from_topk([a, b])


def test_claims_of_04_and_05_on_fabricated_runs():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, size=50)
    tiny = [fake_run(s, centre=(0.60 + 0.01 * s, 0.30), ten=(0.58 + 0.01 * s, 0.29),
                     probs=random_probs(rng, 50, 5), labels=labels) for s in range(5)]
    got = {"tiny": tiny, "imagenette": tiny,
           "baselines": [{"kind": "softmax_pixels", "val_top1": 0.9, "val_top5": 0.6, "train_top1": 0.8},
                         {"kind": "kmeans_features", "val_top1": 0.85, "val_top5": 0.5,
                          "train_top1": 0.7}]}
    measured = error_rates.claims_of(got, params("cpu"))
    ten = measured["imagenet.ten_crop_top1"]["measurement"]
    assert ten["value"] == pytest.approx(-2.0) and ten["paired"]
    assert claims.verdict("imagenet.ten_crop_top1", ten) == claims.REPRODUCED  # -2.0 vs -1.5, zero spread
    base = measured["imagenet.cnn_vs_baselines"]
    assert base["measurement"]["value"] == pytest.approx(100 * (1 - 29 / 50))
    assert "kmeans_features" in base["scale"]["variant"]
    assert claims.verdict("imagenet.cnn_vs_baselines", base["measurement"]) == claims.REPRODUCED
    assert measured["imagenet.ilsvrc2012_top1"]["measurement"] is None  # only the paper profile measures it
    assert "paper profile" in measured["imagenet.ilsvrc2012_top1"]["scale"]["variant"]
    assert measured["imagenet.ten_crop_top1"]["scale"]["image_size"] == 28
    non = [fake_run(s, ten=(0.59 + 0.01 * s, 0.295), pooling="non_overlapping",
                    history=[{"epoch": 1, "val_top1": 0.6, "train_eval_top1": 0.45}]) for s in range(5)]
    over = [fake_run(s, ten=(0.585 + 0.01 * s + 0.001 * (s % 2), 0.29),
                     history=[{"epoch": 1, "val_top1": 0.6, "train_eval_top1": 0.48 + 0.001 * s}]) for s in range(5)]
    five = pooling.claims_of({"overlapping": over, "non_overlapping": non}, params("cpu"))
    assert five["pooling.top1"]["measurement"]["value"] == pytest.approx(-0.4, abs=0.1)
    assert five["pooling.overfitting"]["measurement"]["value"] == pytest.approx(-3.2, abs=0.1)
    assert claims.verdict("pooling.overfitting", five["pooling.overfitting"]["measurement"]) == claims.REPRODUCED
    assert imagenet.interval_sentence({"measured": five["pooling.top1"]["measurement"]}).startswith("-0.")
    pooling.pooling_table({"overlapping": over, "non_overlapping": non})
    error_rates.error_table(got, params("cpu"))
    error_rates.baseline_table(got, params("cpu"))



def test_lrn_measurement_on_fabricated_runs():
    import matplotlib

    matplotlib.use("Agg")
    history = [{"epoch": e, "val_top1": 0.7 - 0.05 * e, "val_top5": 0.4 - 0.05 * e} for e in (1, 2)]
    with_lrn = [fake_run(s, ten=(0.60 + 0.002 * s, 0.30), history=history) for s in range(5)]
    without = [fake_run(s, ten=(0.62 + 0.003 * s, 0.31 + 0.001 * s), history=history) for s in range(5)]
    got = {"lrn": with_lrn, "no_lrn": without}
    out = lrn.imagenet_claims_of(got, params("cpu"))
    top1 = out["lrn.imagenet_top1"]["measurement"]
    assert top1["value"] == pytest.approx(2.2, abs=0.01)  # without minus with, in points: LRN helps
    assert claims.verdict("lrn.imagenet_top1", top1) == claims.REPRODUCED  # 2.2 within 3x of 1.4
    assert claims.verdict("lrn.imagenet_top5", out["lrn.imagenet_top5"]["measurement"]) == claims.REPRODUCED
    assert out["lrn.imagenet_top1"]["scale"]["seeds"] == [0, 1, 2, 3, 4]
    worse = lrn.imagenet_claims_of({"lrn": without, "no_lrn": with_lrn}, params("cpu"))
    assert claims.verdict("lrn.imagenet_top1", worse["lrn.imagenet_top1"]["measurement"]) == claims.NOT_REPRODUCED
    table = lrn.lrn_table(got)
    assert list(table.index) == ["with LRN (the paper's net)", "without LRN"]
    assert table.iloc[1]["top-1 %"].startswith("62.6")
    assert len(lrn.plot_lrn(got, params("cpu")).axes) == 2
    assert lrn.lrn_decomposition(got) is None  # no control arm
    control = [fake_run(s, ten=(0.61 + 0.002 * s, 0.305), history=history) for s in range(5)]
    parts = lrn.lrn_decomposition({**got, "lrn_scale_only": control})
    assert list(parts["difference"]) == ["without − with", "without − scale only", "scale only − with"]
    assert parts.iloc[0]["top-1, pp"].startswith("+2.2 [") and parts.iloc[2]["top-1, pp"].startswith("+1.0 [")


def test_budget_check_reading_on_fabricated_runs():
    import matplotlib

    matplotlib.use("Agg")
    history = [{"epoch": e, "val_top1": 0.9 - 0.01 * e, "val_top5": 0.7 - 0.01 * e, "images_per_s": 500.0}
               for e in (1, 2)]
    short = [fake_run(s, ten=(0.9, 0.75), history=history) for s in range(5)]
    long_config = error_rates.plan(params("cpu"))["budget_check"][0]
    summary = {"val_top1": 0.8, "val_top5": 0.55, "ten_crop_top1": 0.79, "ten_crop_top5": 0.5, "classes": 200,
               "train_seconds": 600.0, "train_images": 1000}
    long_run = runs.Run(long_config, config_hash(long_config), summary, history * 6, None, {})
    baselines = [{"kind": "softmax_pixels", "val_top1": 0.95, "val_top5": 0.84, "train_top1": 0.8,
                  "seconds": 60.0, "train_images": 1000, "config": {"epochs": 10}},
                 {"kind": "kmeans_features", "val_top1": 0.86, "val_top5": 0.68, "train_top1": 0.65,
                  "seconds": 480.0, "train_images": 1000, "config": {"epochs": 20}}]
    got = {"tiny": short, "baselines": baselines, "budget_check": [long_run]}
    p = params("cpu")
    table = error_rates.budget_check_table(got, [long_run], p)
    assert len(table) == 4 and table.iloc[1]["top-5 %"] == "50.0"
    sentence = error_rates.budget_check_sentence(got, [long_run], p)
    # 1 - 50/68 = 26.5% fewer errors, beyond half the paper's 33.9%; the short nets: 1 - 75/68 = -10.3%
    assert "26.5% fewer" in sentence and "beyond half the paper's 33.9%" in sentence and "-10.3%" in sentence
    behind = runs.Run(long_config, "x", {**summary, "ten_crop_top5": 0.7}, history, None, {})
    assert "still behind" in error_rates.budget_check_sentence(got, [behind], p)
    assert error_rates.budget_check_sentence(got, [], p) == "No budget check at this profile."
    assert len(error_rates.plot_budget_check(got, [long_run], p).axes) == 2
    budget = imagenet.budget_table(got)
    assert list(budget.index) == ["tiny", "baselines", "budget_check"]
    assert budget.loc["tiny", "epochs"] == 10 and budget.loc["baselines", "training time"] == "9.0 min"
    assert budget.loc["budget_check", "images/s (median)"] == "500"
    assert budget.loc["budget_check", "machine"] == "not recorded"


def test_machines_names_the_hardware_a_group_ran_on():
    epyc = {"cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 2, "native_bf16": False}
    assert describe_machines([epyc]) == "AMD EPYC, 2 cores, 2 threads, bf16 emulated"
    assert describe_machines([{**epyc, "torch_threads": 1}, {**epyc, "native_bf16": True}]) == \
        "AMD EPYC, 2 cores, 1 or 2 threads, bf16 native on some"
    assert describe_machines([None, {**epyc, "torch_threads": 1}]) == "AMD EPYC, 2 cores, 1 thread, bf16 emulated"
    assert describe_machines([]) == "not recorded"
    assert describe_machines([{**epyc, "gpu": "NVIDIA H200"}]).startswith("NVIDIA H200 on AMD EPYC, 2 cores")


# --------------------------------------------------------------------------- the rules

def test_paired_rule():
    m = claims.paired_measurement([38.0, 39.0, 40.1], [39.5, 40.4, 41.6], [0, 1, 2])
    assert claims.verdict("imagenet.ten_crop_top1", m) == claims.REPRODUCED
    m = claims.paired_measurement([38.0, 39.0, 40.1], [38.1, 39.1, 40.2], [0, 1, 2])  # -0.1: 15x smaller
    assert claims.verdict("imagenet.ten_crop_top1", m) == claims.PARTLY_REPRODUCED
    m = claims.paired_measurement([39.0, 40.0, 41.0], [38.0, 39.2, 39.9], [0, 1, 2])
    assert claims.verdict("imagenet.ten_crop_top1", m) == claims.NOT_REPRODUCED
    m = claims.paired_measurement([39.0, 40.0], [39.5, 39.6], [0, 1])
    assert claims.verdict("imagenet.ten_crop_top1", m) == claims.INCONCLUSIVE
    assert claims.verdict("imagenet.ten_crop_top1", claims.paired_measurement([1.0], [2.0], [0])) == claims.INCONCLUSIVE


def test_direction_only_and_reduction_and_within_points():
    smaller = claims.difference_measurement([1.0, 1.1, 0.9], [3.0, 3.2, 2.9], [0, 1, 2])
    assert claims.verdict("pooling.overfitting", smaller) == claims.REPRODUCED
    larger = claims.difference_measurement([3.0, 3.2, 2.9], [1.0, 1.1, 0.9], [0, 1, 2])
    assert claims.verdict("pooling.overfitting", larger) == claims.NOT_REPRODUCED
    wide = claims.seeded_measurement([30.0, 31.0, 29.5], [0, 1, 2])
    assert claims.verdict("imagenet.cnn_vs_baselines", wide) == claims.REPRODUCED
    narrow = claims.seeded_measurement([5.0, 6.0, 5.5], [0, 1, 2])
    assert claims.verdict("imagenet.cnn_vs_baselines", narrow) == claims.PARTLY_REPRODUCED
    worse = claims.seeded_measurement([-5.0, -6.0, -5.5], [0, 1, 2])
    assert claims.verdict("imagenet.cnn_vs_baselines", worse) == claims.NOT_REPRODUCED
    assert claims.verdict("imagenet.ilsvrc2012_top1", claims.seeded_measurement([41.9], [0])) == claims.REPRODUCED
    assert claims.verdict("imagenet.ilsvrc2012_top1", claims.seeded_measurement([45.0], [0])) == claims.NOT_REPRODUCED


def test_claims_of_both_notebooks_are_registered():
    assert {c.id for c in claims.claims_for(error_rates.NOTEBOOK)} >= {
        "imagenet.ten_crop_top1", "imagenet.ten_crop_top5", "imagenet.ensemble_top1", "imagenet.ensemble_top5",
        "imagenet.cnn_vs_baselines", "imagenet.ilsvrc2012_top1", "imagenet.ilsvrc2012_top5"}
    assert {c.id for c in claims.claims_for(pooling.NOTEBOOK)} == {
        "pooling.top1", "pooling.top5", "pooling.overfitting"}
    for claim in claims.claims_for(error_rates.NOTEBOOK) + claims.claims_for(pooling.NOTEBOOK):
        assert claim.note and claim.rule in claims.RULES


# --------------------------------------------------------------------------- the new TrainConfig fields

def test_train_eval_and_topk_are_recorded():
    config = TrainConfig(model={"arch": "alexnet", "width": 0.125, "towers": 2}, dataset="synthetic",
                         image_size=32, crop=28, epochs=2, ten_crop=True, save_val_topk=3, train_eval_images=40,
                         train_per_class=8, val_per_class=4, schedule="fixed", lr_drop_epochs=(1,))
    result = train(config, progress=False, device="cpu")
    assert all({"train_eval_top1", "train_eval_top5"} <= set(row) for row in result.metrics)
    assert result.artifacts["val_topk_classes"].shape == (40, 3)
    assert result.artifacts["val_topk_probs"].dtype == np.float16
    top1 = result.artifacts["val_topk_classes"][:, 0] != result.artifacts["val_labels"]
    assert math.isclose(top1.mean(), result.summary["ten_crop_top1"], abs_tol=1e-9)
    plain = train(config.replace(save_val_topk=0, train_eval_images=0), progress=False, device="cpu")
    assert "train_eval_top1" not in plain.metrics[0] and "val_topk_classes" not in plain.artifacts
    assert plain.metrics[-1]["val_top1"] == result.metrics[-1]["val_top1"]  # measuring changes no training


def test_kaiming_init_is_he_and_deterministic():
    import torch

    from replication.engine.trainer import Trainer
    from replication.data.splits import synthetic_split

    config = imagenet.cnn_config(scales.scale_for("cpu").family("tiny"), 0).replace(dataset="synthetic", train_eval_images=0)
    assert config.init == "kaiming" and config.input_scale == 64.0
    data = (synthetic_split("train", 2, 32, 200), synthetic_split("val", 1, 32, 200))
    a, b = Trainer(config, data=data, device="cpu"), Trainer(config, data=data, device="cpu")
    for (name, p), q in zip(a.module.named_parameters(), b.module.parameters()):
        assert torch.equal(p, q), name
        if name.endswith("bias"):
            assert not p.any(), name
    conv3 = dict(a.module.named_parameters())["body.conv3.weight"]
    fan_in = conv3[0].numel()
    assert float(conv3.detach().std()) == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    with pytest.raises(ValueError, match="init"):
        TrainConfig(init="xavier")
