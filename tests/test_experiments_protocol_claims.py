"""Notebooks 03, 04 and 05 on the paired protocol: their claims on fabricated runs, the rules they
use, and what a protocol run records. The notebooks themselves run at the smoke profile under nbval."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from replication import claims
from replication.engine.config import TrainConfig
from replication.engine.trainer import train
from replication.experiments import error_rates, lrn, paired, pooling, protocol
from replication.provenance import describe_machines


def test_machines_names_the_hardware_a_group_ran_on():
    epyc = {"cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 2, "native_bf16": False}
    assert describe_machines([epyc]) == "AMD EPYC, 2 cores, 2 threads, bf16 emulated"
    assert describe_machines([{**epyc, "torch_threads": 1}, {**epyc, "native_bf16": True}]) == \
        "AMD EPYC, 2 cores, 1 or 2 threads, bf16 native on some"
    assert describe_machines([None, {**epyc, "torch_threads": 1}]) == "AMD EPYC, 2 cores, 1 thread, bf16 emulated"
    assert describe_machines([]) == "not recorded"
    assert describe_machines([{**epyc, "gpu": "NVIDIA H200"}]).startswith("NVIDIA H200 on AMD EPYC, 2 cores")


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

    config = protocol.CPU_NETTE.config(0).replace(dataset="synthetic", image_size=32, crop=28, data_variant=None, train_eval_images=0,
                                                 neighbours_k=0, eval_dropout_draws=0, save_val_probs=False)
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


def test_rules_of_the_protocol_claims():
    smaller = claims.paired_measurement([1.0, 1.1, 0.9], [3.0, 3.2, 2.9], [0, 1, 2])
    assert claims.verdict("pooling.overfitting", smaller) == claims.REPRODUCED
    larger = claims.paired_measurement([3.0, 3.2, 2.9], [1.0, 1.1, 0.9], [0, 1, 2])
    assert claims.verdict("pooling.overfitting", larger) == claims.NOT_REPRODUCED
    wide = claims.seeded_measurement([30.0, 31.0, 29.5], [0, 1, 2])
    assert claims.verdict("imagenet.cnn_vs_baselines", wide) == claims.REPRODUCED
    worse = claims.seeded_measurement([-5.0, -6.0, -5.5], [0, 1, 2])
    assert claims.verdict("imagenet.cnn_vs_baselines", worse) == claims.NOT_REPRODUCED
    short = {**claims.seeded_measurement([20.0, 21.0, 19.0], [0, 1, 2]), "epochs": 30}
    assert claims.verdict("lrn.cifar_with", short) == claims.NOT_EVALUATED  # 30 of the paper's 350 epochs
    assert claims.verdict("lrn.cifar_with", {**short, "value": 11.5, "epochs": 350}) == claims.REPRODUCED
    assert claims.verdict("imagenet.ilsvrc2010_top1", None) == claims.NOT_EVALUATED


def fabricated(seed: int, top1: float, top5: float, gap: float = 5.0):
    history = [{"epoch": e, "val_top1": top1 / 100 + 0.01 * (3 - e), "train_eval_top1": (top1 - gap) / 100}
               for e in (1, 2, 3)]
    summary = {"ten_crop_top1": top1 / 100, "ten_crop_top5": top5 / 100, "val_top1": (top1 + 1) / 100,
               "val_top5": (top5 + 1) / 100}
    return SimpleNamespace(config=protocol.CPU_NETTE.config(seed), summary=summary, history=history, hash=f"h{seed}")


# Imagenette's recipe with 200 classes: a stand-in whose top-5 error is the paper's measure.
MANY_CLASSES = replace(protocol.CPU_NETTE, classes=200)


def test_pooling_and_lrn_claims_are_paired_differences_on_fabricated_runs():
    base = [fabricated(s, 60.0 + s, 30.0 + s) for s in range(3)]
    non = [fabricated(s, 60.5 + s, 30.3 + s, gap=6.0) for s in range(3)]
    arms = paired.Arms(MANY_CLASSES, {"baseline": base, "non_overlapping": non})
    params = {"profile": "cpu", "precision": "fp32", "seeds": [0, 1, 2]}
    got = pooling.claims_of({paired.IMAGENET: arms}, params)
    assert got["pooling.top1"]["measurement"]["value"] == pytest.approx(-0.5)  # overlapping minus non
    assert got["pooling.top1"]["measurement"]["paired"] and got["pooling.top1"]["scale"]["seeds"] == [0, 1, 2]
    assert got["pooling.top5"]["measurement"]["value"] == pytest.approx(-0.3)
    assert got["pooling.overfitting"]["measurement"]["value"] == pytest.approx(-1.0)
    no_lrn = [fabricated(s, 61.4 + s, 31.2 + s) for s in range(3)]
    lrn_arms = paired.Arms(MANY_CLASSES, {"baseline": base, "no_lrn": no_lrn, "lrn_scale_only": base})
    got = lrn.claims_of({paired.IMAGENET: lrn_arms}, params)
    assert got["lrn.imagenet_top1"]["measurement"]["value"] == pytest.approx(1.4)  # without minus with
    assert got["lrn.imagenet_top5"]["measurement"]["value"] == pytest.approx(1.2)
    assert got["lrn.cifar_difference"]["measurement"] is None
    with pytest.raises(ValueError, match="different seeds"):
        paired.paired_claim(paired.Arms(MANY_CLASSES, {"baseline": base, "no_lrn": no_lrn[::-1]}), "no_lrn",
                            "ten_crop_top1", "x")


def test_a_paired_claim_records_whether_each_arm_stopped_improving():
    def flat(run):  # the same run, its validation error flat over the epochs
        return SimpleNamespace(**{**vars(run), "history": [{**row, "val_top1": run.history[-1]["val_top1"]}
                                                           for row in run.history]})
    base = [flat(fabricated(s, 30.0 + s, 3.0 + s)) for s in range(3)]
    learning = [fabricated(s, 32.0 + s, 4.0 + s) for s in range(3)]  # still a point an epoch
    got = paired.paired_claim(paired.Arms(protocol.CPU_NETTE, {"baseline": base, "no_lrn": learning}),
                              "no_lrn", "ten_crop_top1", "x")["measurement"]
    assert got["stopping"]["baseline"]["passed"] and not got["stopping"]["no_lrn"]["passed"]
    assert got["stopping"]["no_lrn"]["gain"] == pytest.approx(0.02)  # two epochs of a point each
    assert claims.still_improving(got) == ["no_lrn"]
    assert claims.verdict("lrn.imagenet_top1", got) == claims.INCONCLUSIVE  # resolved +2 pp, but still learning
    finished = paired.paired_claim(paired.Arms(protocol.CPU_NETTE, {"baseline": base, "no_lrn": [flat(r) for r in learning]}),
                                   "no_lrn", "ten_crop_top1", "x")["measurement"]
    assert claims.verdict("lrn.imagenet_top1", finished) != claims.INCONCLUSIVE


def test_top5_claims_are_not_evaluated_on_a_stand_in_with_ten_classes():
    base = [fabricated(s, 30.0 + s, 3.0 + s) for s in range(3)]
    arms = paired.Arms(protocol.CPU_NETTE, {"baseline": base, "non_overlapping": base, "no_lrn": base,
                                            "lrn_scale_only": base})
    params = {"profile": "cpu", "precision": "fp32", "seeds": [0, 1, 2]}
    for got, top1, top5 in ((pooling.claims_of({paired.IMAGENET: arms}, params), "pooling.top1", "pooling.top5"),
                            (lrn.claims_of({paired.IMAGENET: arms}, params), "lrn.imagenet_top1", "lrn.imagenet_top5")):
        assert got[top1]["measurement"] is not None
        assert got[top5]["measurement"] is None
        assert "10" in got[top5]["scale"]["variant"] and "top-5" in got[top5]["scale"]["variant"]
        assert claims.verdict(top5, got[top5]["measurement"]) == claims.NOT_EVALUATED


def test_the_imagenet_stand_in_is_imagenette_below_the_paper_profile():
    assert paired.recipe({"profile": "cpu"}, paired.IMAGENET) is protocol.CPU_NETTE
    assert paired.recipe({"profile": "smoke"}, paired.IMAGENET) is protocol.SMOKE_NETTE
    assert paired.recipe({"profile": "paper"}, paired.IMAGENET) is protocol.PAPER_IMAGENET
    assert paired.top5_measurable(protocol.PAPER_IMAGENET) and not paired.top5_measurable(protocol.CPU_NETTE)
    assert paired.available({"profile": "paper"}, ["cifar", paired.IMAGENET]) == [paired.IMAGENET]


def test_the_protocol_notebooks_register_their_claims():
    assert {c.id for c in claims.claims_for(pooling.NOTEBOOK)} == {
        "pooling.top1", "pooling.top5", "pooling.overfitting"}
    assert {"imagenet.ilsvrc2010_top1", "imagenet.ensemble_top1"} <= {c.id for c in claims.claims_for(error_rates.NOTEBOOK)}
    assert claims.CLAIMS["imagenet.ensemble_top1"].rule == "jackknife_direction"
    for claim in claims.claims_for(error_rates.NOTEBOOK) + claims.claims_for(pooling.NOTEBOOK) + claims.claims_for(lrn.NOTEBOOK):
        assert claim.note and claim.rule in claims.RULES
