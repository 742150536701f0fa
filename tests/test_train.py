"""Section 5: the paper's SGD, the schedule, determinism, resume, and failure handling.

Every training run here is tiny: synthetic class-coloured 16 px images
(``dataset="synthetic"``), the Fig. 1 net, two or three epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import subprocess
import sys

import pytest
import torch

from replication.profiles import REPO  # the repository root
from replication.cli import train as train_cli
from replication.engine import config as C
from replication.engine import trainer as T
from replication.engine.checkpoints import CheckpointError, load_checkpoint
from replication.engine.config import config_diff, config_hash, TrainConfig
from replication.engine.optim import LRSchedule, PaperSGD
from replication.engine.trainer import NonFiniteLossError, train

TIMING_KEYS = {"seconds", "images_per_s"}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> TrainConfig:
    values = dict(model={"arch": "fig1", "paper_init": False}, dataset="synthetic", image_size=16,
                  train_per_class=8, val_per_class=4, batch_size=16, epochs=2, lr=0.001, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def untimed(metrics):
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in metrics]


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), f"{name} differs"


# ---------------------------------------------------------------- the paper's SGD


def _run(optimizer_cls, lrs, grads, w0, **kwargs):
    w = torch.nn.Parameter(w0.clone())
    opt = optimizer_cls([w], lr=lrs[0], **kwargs)
    path = []
    for lr, g in zip(lrs, grads):
        for group in opt.param_groups:
            group["lr"] = lr
        w.grad = g.clone()
        opt.step()
        path.append(w.detach().clone())
    return path


def test_paper_sgd_equals_torch_sgd_while_lr_is_constant():
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(50, generator=gen, dtype=torch.float64)
    grads = [torch.randn(50, generator=gen, dtype=torch.float64) for _ in range(20)]
    lrs = [0.01] * 20
    ours = _run(PaperSGD, lrs, grads, w0, momentum=0.9, weight_decay=5e-4)
    theirs = _run(torch.optim.SGD, lrs, grads, w0, momentum=0.9, weight_decay=5e-4)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_paper_sgd_differs_right_after_division_as_derived():
    """Hand derivation with one weight, grads g1, g2, g3 and eps: 0.1, 0.1, then 0.01.

    Paper:  v <- 0.9 v - 0.0005 eps w - eps g ;  w <- w + v
    torch:  b <- 0.9 b + g + 0.0005 w         ;  w <- w - eps b
    """
    w0, g, eps = 2.0, [0.5, -0.25, 1.0], [0.1, 0.1, 0.01]
    # the paper, by hand
    v, w = 0.0, w0
    paper = []
    for gt, et in zip(g, eps):
        v = 0.9 * v - 0.0005 * et * w - et * gt
        w = w + v
        paper.append(w)
    # torch's rule, by hand
    b, w = 0.0, w0
    torch_rule = []
    for gt, et in zip(g, eps):
        b = 0.9 * b + gt + 0.0005 * w
        w = w - et * b
        torch_rule.append(w)
    # the same for two steps, different right after the division: the paper keeps the
    # old velocity at its old size (0.9 v), torch shrinks it with eps (0.9 * eps_new * b).
    assert paper[:2] == pytest.approx(torch_rule[:2], abs=1e-15)
    b2 = 0.9 * (0.5 + 0.0005 * w0) + (-0.25 + 0.0005 * torch_rule[0])
    assert paper[2] - torch_rule[2] == pytest.approx(-0.9 * (0.1 - 0.01) * b2, rel=1e-9)

    as_tensor = [torch.tensor([x], dtype=torch.float64) for x in g]
    ours = _run(PaperSGD, eps, as_tensor, torch.tensor([w0], dtype=torch.float64), momentum=0.9, weight_decay=5e-4)
    theirs = _run(torch.optim.SGD, eps, as_tensor, torch.tensor([w0], dtype=torch.float64),
                  momentum=0.9, weight_decay=5e-4)
    assert [float(x) for x in ours] == pytest.approx(paper, rel=1e-12)
    assert [float(x) for x in theirs] == pytest.approx(torch_rule, rel=1e-12)
    assert abs(float(ours[2]) - float(theirs[2])) > 1e-3


def test_paper_sgd_skips_params_without_grad_and_checks_settings():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = PaperSGD([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and not torch.equal(a.detach(), torch.ones(2))
    with pytest.raises(ValueError, match="lr"):
        PaperSGD([a], lr=0)


# ---------------------------------------------------------------- the schedule


def test_plateau_schedule_divides_by_ten_at_most_three_times():
    schedule = LRSchedule("plateau", 0.01, patience=1, max_drops=3)
    errors = [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    lrs = []
    for epoch, error in enumerate(errors, 1):
        schedule.step(epoch, error)
        lrs.append(schedule.lr)
    assert lrs == pytest.approx([0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5])
    assert schedule.drops == 3


def test_plateau_patience_and_fixed_and_constant():
    patient = LRSchedule("plateau", 1.0, patience=2)
    assert [patient.step(e, err) for e, err in enumerate([0.5, 0.6, 0.6, 0.4], 1)] == [False, False, True, False]
    fixed = LRSchedule("fixed", 1.0, drop_epochs=(2, 3))
    assert [fixed.step(e, 0.1) for e in (1, 2, 3, 4)] == [False, True, True, False]
    assert fixed.lr == pytest.approx(0.01)
    constant = LRSchedule("constant", 1.0)
    assert not any(constant.step(e, 1.0) for e in range(1, 10)) and constant.lr == 1.0
    restored = LRSchedule("plateau", 1.0)
    restored.load_state_dict(patient.state_dict())
    assert restored.state_dict() == patient.state_dict()


# ---------------------------------------------------------------- config and hash


def test_config_hash_covers_only_fields_that_differ_from_the_defaults():
    assert config_diff(TrainConfig()) == {}
    assert config_hash(TrainConfig()) == config_hash(TrainConfig(lr=0.01))  # a default, spelled out
    assert config_hash(TrainConfig(lr=1)) == config_hash(TrainConfig(lr=1.0))  # int vs float
    assert config_diff(TrainConfig(seed=7, flip=False)) == {"seed": 7, "flip": False}
    assert config_hash(TrainConfig(seed=7)) != config_hash(TrainConfig(seed=8))
    assert config_hash(TrainConfig(model={"arch": "fig1", "activation": "tanh"})) == \
        config_hash(TrainConfig(model={"activation": "tanh", "arch": "fig1"}))
    assert len(config_hash(TrainConfig())) == 16


def test_every_field_is_registered_in_the_hash_base():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert names == set(C.HASH_BASE), "add new fields to engine.config.HASH_BASE with their neutral value"


def test_adding_a_field_with_a_default_keeps_stored_hashes(monkeypatch):
    """Simulate code growth: a new field, default = old behaviour, registered in HASH_BASE."""
    before = [config_hash(TrainConfig()), config_hash(TrainConfig(seed=5, epochs=3))]

    @dataclasses.dataclass(frozen=True)
    class Grown(TrainConfig):
        label_smoothing: float = 0.0

    monkeypatch.setitem(C.HASH_BASE, "label_smoothing", 0.0)
    assert config_hash(Grown()) == before[0]
    assert config_hash(Grown(seed=5, epochs=3)) == before[1]
    assert config_hash(Grown(label_smoothing=0.1)) != before[0]


def test_hash_schema_is_part_of_the_hash(monkeypatch):
    old = config_hash(TrainConfig())
    monkeypatch.setattr(C, "HASH_SCHEMA", C.HASH_SCHEMA + 1)
    assert config_hash(TrainConfig()) != old


def test_config_round_trips_and_refuses_unknown_fields():
    cfg = TrainConfig(lr_drop_epochs=(30, 60), model={"arch": "alexnet", "width": 0.5})
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and config_hash(again) == config_hash(cfg)
    with pytest.raises(ValueError, match="unknown config field.*'lr_rate'"):
        TrainConfig.from_dict({"lr_rate": 0.1})
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


# ---------------------------------------------------------------- training runs


def test_training_learns_and_reports_every_metric():
    result = train(tiny(epochs=3, ten_crop=True, crop=14), progress=False)
    assert [row["epoch"] for row in result.metrics] == [1, 2, 3]
    for row in result.metrics:
        assert set(row) == {"epoch", "lr", "train_loss", "train_error", "val_loss", "val_top1", "val_top5",
                            "seconds", "images_per_s"}
        assert 0 <= row["val_top5"] <= row["val_top1"] <= 1 and row["images_per_s"] > 0
    assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"]
    summary = result.summary
    assert summary["config_hash"] == config_hash(result.config) and summary["epochs"] == 3
    assert {"ten_crop_top1", "ten_crop_top5", "hardware", "torch", "wall_seconds", "precision"} <= set(summary)
    assert summary["hardware"]["cpu"]


def test_same_seed_gives_identical_metrics_and_weights():
    cfg = tiny()
    first, second = train(cfg, progress=False), train(cfg, progress=False)
    assert untimed(first.metrics) == untimed(second.metrics)
    assert_same_weights(first.model, second.model)
    third = train(cfg.replace(seed=4, epochs=1), progress=False)
    assert untimed(third.metrics)[0] != untimed(first.metrics)[0]


def test_sigkilled_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    """Kill (SIGKILL) a subprocess in the middle of epoch 2, resume here, compare bit for bit.

    The lr is divided after epoch 2, so the schedule, the paper's momentum
    buffers and every random stream must all come back exactly.
    """
    cfg = tiny(epochs=3, schedule="fixed", lr_drop_epochs=(2,), lr=0.002)
    checkpoint = tmp_path / "ckpt" / "checkpoint.pt"
    worker = subprocess.run(
        [sys.executable, str(REPO / "tests" / "_train_worker.py"), json.dumps(cfg.to_dict()), str(checkpoint),
         str(torch.get_num_threads()), "2", "3"],
        capture_output=True, text=True, timeout=120)
    assert worker.returncode == -9, worker.stderr
    assert load_checkpoint(checkpoint, config_hash(cfg))["epoch"] == 1
    assert not list(checkpoint.parent.glob(".*tmp*")), "a temporary checkpoint file was left behind"

    resumed = train(cfg, checkpoint=checkpoint, progress=False)
    uninterrupted = train(cfg, progress=False)
    assert untimed(resumed.metrics) == untimed(uninterrupted.metrics)
    assert [row["lr"] for row in resumed.metrics] == pytest.approx([0.002, 0.002, 0.0002])
    assert_same_weights(resumed.model, uninterrupted.model)
    assert load_checkpoint(checkpoint)["epoch"] == 3


def test_finished_checkpoint_is_not_trained_again(tmp_path):
    cfg, checkpoint = tiny(epochs=1), tmp_path / "c.pt"
    first = train(cfg, checkpoint=checkpoint, progress=False)

    def fail(*args):
        raise AssertionError("trained again")

    again = train(cfg, checkpoint=checkpoint, progress=False, after_step=fail)
    assert untimed(again.metrics) == untimed(first.metrics)
    assert_same_weights(again.model, first.model)


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    checkpoint = tmp_path / "c.pt"

    def poison(trainer, epoch, row):  # after epoch 1's checkpoint: break the weights in memory
        if epoch == 1:
            with torch.no_grad():
                next(trainer.module.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, step 1.*after epoch 1.*c\.pt") as info:
        train(tiny(epochs=3), checkpoint=checkpoint, progress=False, after_epoch=poison)
    assert info.value.epoch == 2 and info.value.checkpoint == checkpoint
    state = load_checkpoint(checkpoint)
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())


def test_divergent_learning_rate_is_reported(tmp_path):
    with pytest.raises(NonFiniteLossError, match="smaller learning rate"):
        train(tiny(epochs=1, lr=1e12, momentum=0.99), checkpoint=tmp_path / "c.pt", progress=False)
    assert not (tmp_path / "c.pt").exists()


def test_weights_that_blow_up_without_a_nan_loss_are_not_stored(tmp_path):
    """A huge learning rate can leave the training loss finite while the weights go to 1e20 and
    the validation loss to NaN: the run stops there, keeps the last finite checkpoint, names the epoch."""
    checkpoint = tmp_path / "c.pt"

    config = tiny(epochs=3)
    last_step = -(-config.train_per_class * 10 // config.batch_size)  # synthetic data: ten classes

    def blow_up(trainer, epoch, step):  # after the last step of epoch 2, before its evaluation
        if epoch == 2 and step == last_step:
            with torch.no_grad():
                next(trainer.module.parameters()).fill_(float("inf"))

    with pytest.raises(NonFiniteLossError, match=r"after epoch 2 .*last finite checkpoint \(after epoch 1\)"):
        train(config, checkpoint=checkpoint, progress=False, after_step=blow_up)
    state = load_checkpoint(checkpoint)
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 1.5, "epochs: a whole number >= 1, got 1.5"),
    ("epochs", "2", "epochs: a whole number >= 1, got '2'"),
    ("epochs", 0, "epochs: a whole number >= 1"),
    ("flip", "no", "flip: true or false, got 'no'"),
    ("image_size", 0, "image_size: a whole number >= 8"),
    ("crop", 40, "crop: 40 px does not fit image_size 32"),
    ("lr", float("nan"), "lr: a finite number > 0"),
    ("lr", 0, "lr: a finite number > 0"),
    ("momentum", 1.0, "momentum: a finite number >= 0 and < 1"),
    ("weight_decay", float("inf"), "weight_decay: a finite number >= 0"),
    ("batch_size", True, "batch_size: a whole number"),
    ("precision", "fp8", "precision: one of fp32, bf16"),
    ("model", {"width": 0.5}, "model: a mapping with an 'arch' key"),
    ("model", {"arch": "alexnet", "widht": 0.5}, "model: unknown AlexNetConfig fields ['widht']"),
    ("model", {"arch": "resnet"}, "model: unknown arch 'resnet'"),
    ("model", {"arch": "alexnet", "input_size": 10}, "input_size 10 is too small for the 'small' stem"),
    ("holdout_per_class", -1, "holdout_per_class: a whole number >= 0"),
])
def test_config_values_are_checked_where_the_config_is_built(field, value, message):
    values = {"image_size": 32, field: value}
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**values)


def test_corrupt_foreign_and_other_config_checkpoints_are_refused(tmp_path):
    cfg = tiny(epochs=1)
    good = tmp_path / "good.pt"
    train(cfg, checkpoint=good, progress=False)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"truncated\.pt is corrupt"):
        train(cfg, checkpoint=truncated, progress=False)

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt is not a replication training checkpoint"):
        train(cfg, checkpoint=foreign, progress=False)

    unsafe = tmp_path / "unsafe.pt"
    torch.save(argparse.Namespace(a=1), unsafe)  # an arbitrary pickled object: weights_only refuses it
    with pytest.raises(CheckpointError, match=r"unsafe\.pt is corrupt or not a safe"):
        load_checkpoint(unsafe)

    with pytest.raises(CheckpointError, match=f"belongs to config {config_hash(cfg)}"):
        train(cfg.replace(seed=99), checkpoint=good, progress=False)

    flipped = tmp_path / "flipped.pt"  # one weight changed after it was written, the file otherwise intact
    state = torch.load(good, weights_only=True)
    weight = next(iter(state["model"].values()))
    weight[(0,) * weight.dim()] = 3.4e38
    torch.save(state, flipped)
    with pytest.raises(CheckpointError, match=r"flipped\.pt: its tensors do not match the sha256"):
        load_checkpoint(flipped)


def test_stop_at_train_error_trains_extra_epochs_then_stops():
    config = tiny(epochs=10, stop_at_train_error=0.5, extra_epochs=1)
    metrics = [{"epoch": e, "train_error": err} for e, err in enumerate([0.9, 0.6, 0.4], 1)]
    assert T.stop_reached(config, metrics[:2]) == (False, None)
    assert T.stop_reached(config, metrics) == (False, 3)
    assert T.stop_reached(config, metrics + [{"epoch": 4, "train_error": 0.3}]) == (True, 3)
    result = train(tiny(epochs=30, stop_at_train_error=0.95, extra_epochs=1), progress=False)
    reached = result.summary["train_error_reached_epoch"]
    assert reached is not None and result.summary["epochs"] == reached + 1 < 30


@pytest.mark.filterwarnings("ignore:precision 'bf16' on a CPU without native")
def test_bf16_nchw_and_torch_sgd_variants_run():
    for cfg in (tiny(epochs=1, precision="bf16", train_per_class=2, batch_size=20),
                tiny(epochs=1, channels_last=False, optimizer="torch", flip=False, mean_subtraction=False)):
        result = train(cfg, progress=False)
        assert math.isfinite(result.metrics[0]["train_loss"]) and result.summary["precision"] == cfg.precision


def test_artifacts_for_figures():
    cfg = tiny(epochs=1, save_conv1=True, per_class_error=True)
    artifacts = train(cfg, progress=False).artifacts
    assert artifacts["conv1"].shape == (1, 32, 3, 5, 5)
    assert artifacts["per_class_error"].shape == (10,)


def test_neighbour_artifacts_with_alexnet():
    model = {"arch": "alexnet", "input_size": 32, "width": 0.0625, "towers": 1}
    cfg = tiny(epochs=1, image_size=32, model=model, neighbours_k=3, neighbour_queries=4, save_conv1=True)
    artifacts = train(cfg, progress=False).artifacts
    assert artifacts["neighbours"].shape == (4, 3) and artifacts["neighbour_queries"].tolist() == [0, 1, 2, 3]
    assert artifacts["neighbours"].max() < 80


# ---------------------------------------------------------------- command line


def _parser():
    parser = argparse.ArgumentParser(prog="train")
    train_cli.cli_add_arguments(parser)
    return parser


def test_cli_help_lists_every_field_with_its_default():
    text = _parser().format_help()
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text, f.name
    assert "(default: 128)" in text and "(default: 0.0005)" in text and "(default: plateau)" in text


def test_cli_flags_override_yaml_and_print_config(tmp_path, capsys):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("model: {arch: fig1, activation: tanh}\nepochs: 5\nseed: 2\ndata_variant: mirror\n")
    args = _parser().parse_args(["--config", str(config_file), "--seed", "3", "--no-flip",
                                 "--lr-drop-epochs", "2,4", "--crop", "none", "--print-config"])
    cfg = train_cli.config_from_args(args)
    assert cfg == TrainConfig(model={"arch": "fig1", "activation": "tanh"}, epochs=5, seed=3, flip=False,
                              lr_drop_epochs=(2, 4), data_variant="mirror")
    assert train_cli.cli_main(args) == 0
    assert config_hash(cfg) in capsys.readouterr().out


def test_cli_train_end_to_end(isolated_store, capsys):
    from replication.__main__ import main

    code = main(["train", "--dataset", "synthetic", "--image-size", "16", "--train-per-class", "4",
                 "--val-per-class", "2", "--epochs", "1", "--batch-size", "20", "--no-progress", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "val top-1 error" in out
    assert len(list((isolated_store / "runs").iterdir())) == 1


def test_a_device_that_is_not_there_is_an_error():
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU
    with pytest.raises(ValueError, match=f"device: {missing} is not on this machine"):
        train(tiny(epochs=1), progress=False, device=missing)
