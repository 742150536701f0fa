"""The miniature ImageNet protocol that every ablation shares: one tuned baseline, arms as deltas.

Sections 2, 4 and 5 of the paper fix a recipe (random crops and flips, PCA lighting, dropout in
FC6-FC7, weight decay 0.0005, SGD with momentum 0.9 and batch 128, the learning rate divided by 10
when learning stops). At our scale the same recipe runs on smaller images and narrower nets; its
learning rate and schedule are tuned once per dataset on images held out of the *training* set
(``holdout_per_class``), never on the validation split that the claims are measured on.

An ablation arm is a small delta on the baseline (``ARMS``). Arms are paired with the baseline by
seed: a seed fixes the data order, the augmentation draws and (``layer_seeds``) the initial weights
of every layer the arm leaves unchanged, so each claim's effect is a paired difference between two
nets that differ only in what the claim is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from replication.engine.config import TrainConfig
from replication.experiments.baselines import BaselineConfig

NETTE = "imagenette2-128"


@dataclass(frozen=True)
class Arm:
    """One ablation: what it changes, in words and as a delta on the baseline's config."""

    name: str
    what: str
    model: Mapping[str, Any] = field(default_factory=dict)  # merged into the baseline's model spec
    config: Mapping[str, Any] = field(default_factory=dict)  # replaces baseline TrainConfig fields
    archs: tuple[str, ...] = ("alexnet",)  # the nets it applies to


ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("baseline", "the full recipe (Sections 3-5)", archs=("alexnet", "conv_local")),
    Arm("no_lrn", "no local response normalisation (Section 3.3)", model={"lrn": None},
        archs=("alexnet", "conv_local")),
    Arm("lrn_scale_only", "LRN with alpha = 0: only its constant 1/k^beta rescaling, no normalisation by "
        "the neighbouring maps (a control for Section 3.3)", model={"lrn_alpha": 0.0},
        archs=("alexnet", "conv_local")),
    Arm("non_overlapping", "non-overlapping pooling, z = s = 2 (Section 3.4)",
        model={"pooling": "non_overlapping"}),
    Arm("no_lighting", "no PCA lighting (Section 4.1); crops and flips as the baseline's",
        config={"lighting_std": 0.0}),
    Arm("no_dropout", "no dropout in FC6 and FC7 (Section 4.2)", model={"dropout": 0.0}),
    Arm("one_tower", "one tower with half the kernels in conv1-conv4, conv5 and the FC layers unchanged "
        "(Section 3.2, footnote 2)", model={"towers": 1, "half": True}),
    # A widely read tutorial's departures from the paper, each alone (the errata notebook)
    Arm("pool_before_lrn", "max-pooling before response normalisation in layers 1-2 (the paper: "
        "normalisation, then pooling; Section 3.5)", model={"pool_before_lrn": True}),
    Arm("conv5_dropout", "dropout after conv5's pooling as well (the paper: FC6 and FC7 only; Section 4.2)",
        model={"conv5_dropout": 0.5}),
    Arm("fc8_relu", "a ReLU on the logits before the softmax (the paper: none; Section 3.5)",
        model={"fc8_relu": True}),
    Arm("torchvision_widths", "torchvision's kernels 64-192-384-256-256 with no LRN and no towers, and "
        "FC7 of 1,024 units (the paper: 96-256-384-384-256, LRN, two towers, FC7 of 4,096)",
        model={"kernels": (64, 192, 384, 256, 256, 4096, 1024), "lrn": None, "towers": 1}),
)}


# Measured on each baseline net when it finishes (Fig. 4's neighbours: six per query, as the figure;
# queries spread over the classes by a fixed seed, the same images at every seed; the errata's
# dropout-at-test errors: one draw and the mean of ten).
FINAL_BASELINE_MEASUREMENTS = {"neighbours_k": 6, "neighbour_queries": 500, "neighbour_query_seed": 0,
                               "eval_dropout_draws": 10}


@dataclass(frozen=True)
class Recipe:
    """One dataset's miniature of the paper's protocol, its baseline recipe and how it is tuned."""

    key: str                 # "imagenette", "cifar", "imagenet"
    dataset: str
    label: str               # how reports name the data
    classes: int             # top-5 error is the paper's measure only with many classes
    data_variant: str
    image_size: int
    crop: int
    width: float             # fraction of the paper's kernels per layer (1: 96-256-384-384-256, FC 4096)
    epochs: int
    lr_drop_epochs: tuple[int, ...]  # divide the learning rate by 10 after these epochs (Section 5)
    lr: float                # chosen by the tuning runs (notebook 00 checks it is their best)
    holdout_per_class: int   # the tuning split: images a class held out of the training set
    train_eval_images: int   # training images evaluated each epoch like val (the overfitting gap)
    towers: int = 2
    precision: str = "fp32"  # pinned: every arm of a claim shares its arithmetic on any CPU
    threads: int = 2
    tuning_grid: tuple[Mapping[str, Any], ...] = ()  # the (width, lr) pairs tried on the tuning split
    # the net and what differs between the ImageNet protocol and cuda-convnet's CIFAR-10 files
    arch: str = "alexnet"    # "alexnet" (Section 3) or "conv_local" (Section 3.3's CIFAR-10 net)
    lighting_std: float = 0.1
    init: str = "kaiming"    # He init on standardised pixels, or "model": the net's own (Section 5's, the file's)
    input_scale: float = 64.0
    channels_last: bool = True
    # the paper profile: Section 5's rule (divide when val error stops improving, three times at most)
    # instead of fixed epochs, and ImageNet-size images streamed from JPEG
    schedule: str = "fixed"
    stream: bool = False

    def config(self, seed: int = 0, arm: str = "baseline", *, tuning: bool = False,
               **changes: Any) -> TrainConfig:
        """The run of ``arm`` at ``seed``: the baseline recipe with the arm's delta.

        ``tuning``: validate on the held-out training images instead of val (no ten-crop, no stored
        predictions: only the learning curve matters). The baseline stores its complete validation
        predictions: ensembles (Section 6) average them. ``changes`` (``width``, ``lr``, ``epochs``,
        ``lr_drop_epochs``) vary the recipe itself, as the tuning grid does.
        """
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
        recipe = replace(self, **changes) if changes else self
        delta = ARMS[arm]
        if recipe.arch not in delta.archs:
            raise ValueError(f"arm {arm!r} changes {', '.join(delta.archs)} nets, not the {recipe.arch} of {recipe.key}")
        model = ({"arch": "alexnet", "width": recipe.width, "towers": recipe.towers} if recipe.arch == "alexnet"
                 else {"arch": recipe.arch})
        config = TrainConfig(
            model={**model, **delta.model}, dataset=recipe.dataset, data_variant=recipe.data_variant,
            image_size=recipe.image_size, crop=recipe.crop, flip=True,
            # Section 4.1's lighting in the paper's form, a_i * lambda_i on the 0..1 pixel scale (augment.py
            # compares the readings); the tuning runs were trained with the 2012 code's sqrt(lambda_i)
            # before the claims chose the paper's form: a jitter of about ten levels instead of about four
            lighting_std=recipe.lighting_std, lighting_eigen_scale="sqrt" if tuning else "lambda_unit",
            mean_subtraction=True,
            # AlexNet: He init on standardised pixels; a narrow net under Section 5's N(0, 0.01) and unit
            # biases sits at chance for longer than the whole miniature schedule (notebook 00 shows it)
            init=recipe.init, input_scale=recipe.input_scale, channels_last=recipe.channels_last,
            optimizer="paper", lr=recipe.lr, momentum=0.9, weight_decay=5e-4, batch_size=128,
            schedule=recipe.schedule, lr_drop_epochs=recipe.lr_drop_epochs if recipe.schedule == "fixed" else (),
            patience=2, max_lr_drops=3, stream=recipe.stream, epochs=recipe.epochs,
            seed=seed, precision=recipe.precision, threads=recipe.threads, layer_seeds=True,
            train_eval_images=recipe.train_eval_images,
            holdout_per_class=recipe.holdout_per_class if tuning else 0,
            ten_crop=not tuning, save_val_probs=not tuning and arm == "baseline",
            # lighting from its own stream, so a no-lighting arm keeps the baseline's crops and flips
            # (the tuning runs were trained before this existed; it changes which random numbers are
            # drawn, not the recipe)
            lighting_stream=not tuning,
            # what the figures and the errata need of a finished net (weights are not stored): conv1's
            # kernels and per-class errors of every net; the baseline's FC7 neighbours of the same
            # seeded queries at every seed, and its errors with dropout left on at test time
            save_conv1=not tuning, per_class_error=not tuning,
            **(FINAL_BASELINE_MEASUREMENTS if arm == "baseline" and not tuning else {}),
        )
        return config.replace(**delta.config) if delta.config else config

    def net_label(self, width: float | None = None) -> str:
        """How reports name the net: "AlexNet 28 px family, width 0.25, 2 towers, He init"."""
        init = {"kaiming": "He init", "model": "the file's init" if self.arch == "conv_local" else "Section 5's init"}
        if self.arch == "conv_local":
            return f"Section 3.3's conv-local net (cuda-convnet), {self.crop} px crops, {init[self.init]}"
        return (f"AlexNet {self.crop} px family, width {self.width if width is None else width:g}, "
                f"{self.towers} towers, {init[self.init]}")

    def tuning_configs(self, seed: int = 0) -> list[TrainConfig]:
        """The tuning grid's runs: each (width, lr) of ``tuning_grid`` on the held-out split."""
        return [self.config(seed, tuning=True, **point) for point in self.tuning_grid]


def final_fifth(epochs: int) -> int:
    """How many final epochs the stopping check looks at: a fifth of the run, at least two."""
    return max(2, round(epochs / 5))


def stopping_check(val_top1: Sequence[float], lr: Sequence[float] | None = None,
                   threshold: float = 0.005) -> dict[str, Any]:
    """Has the net stopped improving? The trend of val top-1 error over the run's final fifth, within
    its last learning-rate phase (DESIGN: "their last lr phase has flattened").

    ``val_top1``: the error after each epoch (of one run, or the mean over seeds); ``lr``: each epoch's
    learning rate. The trend is the least-squares slope through the last ``window + 1`` epochs, less
    any at their start that trained at an earlier rate: a division of the rate lowers the error in a
    step at the phase's first epoch, and that step is the schedule's annealing, not the net still
    learning. The gain is the slope times ``window``: how much the error falls over the final fifth at
    the phase's trend, read from the trend rather than from two noisy end points (a few thousand
    validation images move the error by half a point from one epoch to the next). Passed when the
    gain is less than ``threshold`` (half a point). A last phase with fewer than three epochs in the
    window has no trend to read: not passed, with the reason in ``why``.
    """
    if len(val_top1) < 3:
        raise ValueError(f"the stopping check needs at least 3 epochs, got {len(val_top1)}")
    k = min(final_fifth(len(val_top1)), len(val_top1) - 1)
    tail = list(val_top1[-(k + 1):])
    if lr is not None:
        if len(lr) != len(val_top1):
            raise ValueError(f"{len(lr)} learning rates for {len(val_top1)} epochs")
        rates = list(lr[-(k + 1):])
        while rates and rates[0] != rates[-1]:
            rates.pop(0)
            tail.pop(0)
    check = {"epochs": len(val_top1), "window": k, "phase_epochs_read": len(tail), "threshold": threshold}
    if len(tail) < 3:
        return {**check, "gain": None, "passed": False,
                "why": f"only {len(tail)} epoch{'s' if len(tail) != 1 else ''} of the final fifth at the last "
                       "learning rate: no trend to read"}
    slope = float(np.polyfit(np.arange(len(tail)), np.asarray(tail, dtype=float), 1)[0])
    gain = -slope * k
    return {**check, "gain": gain, "passed": gain < threshold}


def mean_curve(runs: Sequence, key: str = "val_top1") -> list[float]:
    """The error after each epoch, averaged over the runs (seeds) of one recipe and arm."""
    return [float(v) for v in np.mean([[row[key] for row in run.history] for run in runs], axis=0)]


def runs_stopping(runs: Sequence) -> dict[str, Any]:
    """``stopping_check`` of the runs' mean validation curve (one arm's seeds: less noise than one run),
    with their learning rates; not passed when they trained fewer than the check's three epochs."""
    curve = mean_curve(runs)
    if len(curve) < 3:
        return {"epochs": len(curve), "gain": None, "passed": False, "why": "fewer than 3 epochs: no trend to read"}
    return stopping_check(curve, [row["lr"] for row in runs[0].history] if "lr" in runs[0].history[0] else None)


# Imagenette at 112 px keeps the paper's 11x11 stride-4 first layer; 9,469 training images and
# 3,925 validation images of 10 classes; 100 a class held out for tuning.
CPU_NETTE = Recipe(
    "imagenette", NETTE, "Imagenette (10 classes, 128 px mirror, 112 px crops)", 10, "mirror", 128, 112,
    width=0.5, epochs=30, lr_drop_epochs=(15, 24), lr=0.01, holdout_per_class=100, train_eval_images=1000,
    # the grid grows along the rates while its best sits at an edge (notebook 00 shows every point)
    tuning_grid=({"width": 0.5, "lr": 0.01}, {"width": 0.5, "lr": 0.02}, {"width": 0.5, "lr": 0.04},
                 {"width": 0.25, "lr": 0.02}, {"width": 0.5, "lr": 0.005}),
)
# Tiny ImageNet (200 classes at 32 px) is not a cpu recipe: its 90,000 training images an epoch at 28 px
# take over an hour a run on two cores in fp32, and the arms at five seeds more than a day alone. The
# ImageNet claims are measured on Imagenette, whose 112 px crops keep the paper's first layer; top-5
# error, a measure for many classes, is measured where there are (``Recipe.classes``; the paper profile).
# The committed sample: the same code paths in a minute.
SMOKE_NETTE = replace(CPU_NETTE, label="Imagenette (committed sample, 112 px crops)", data_variant="sample",
                      width=0.25, epochs=3, lr_drop_epochs=(1, 2), holdout_per_class=4, train_eval_images=40,
                      tuning_grid=({"lr": 0.01}, {"lr": 0.02}))
# CIFAR-10 with Section 3.3's net, cuda-convnet's layers-conv-local files (the 11pct one with LRN):
# 24 px crops of the 32 px images and flips, no PCA lighting, the files' Gaussian init on raw
# mean-subtracted pixels, as the paper's CIFAR-10 numbers were obtained; 500 a class held out.
# channels_last: a training step of this net took about a fifth less time than with contiguous
# tensors on an AVX-512 EPYC (fp32, one thread, interleaved repeats); its runs are not yet stored.
CPU_CIFAR = Recipe(
    "cifar", "cifar10-jpeg", "CIFAR-10 (JPEG copy, 24 px crops of 32 px)", 10, "mirror", 32, 24,
    width=1.0, epochs=30, lr_drop_epochs=(15, 24), lr=0.004, holdout_per_class=500, train_eval_images=5000,
    # the grid grows along the rates while its best sits at an edge (0.002 was the best of the first three,
    # then 0.004 of the first four)
    tuning_grid=({"lr": 0.0005}, {"lr": 0.001}, {"lr": 0.002}, {"lr": 0.004}, {"lr": 0.008}),
    arch="conv_local", lighting_std=0.0, init="model", input_scale=1.0, channels_last=True,
)
SMOKE_CIFAR = replace(CPU_CIFAR, label="CIFAR-10 (committed sample, 24 px crops)", data_variant="sample",
                      epochs=3, lr_drop_epochs=(1, 2), lr=0.001, holdout_per_class=5, train_eval_images=100,
                      tuning_grid=({"lr": 0.0005}, {"lr": 0.001}))

# The paper's own recipe (profiles/paper.yaml states it): ILSVRC-2012 at 256 px, 224 px crops with the
# ceil rule, the full two-tower net with Section 5's initialisation on raw pixels, lr 0.01 divided by
# 10 when the validation error stops improving, 90 epochs. Not tuned: it is the paper's. The ImageNet
# claims' recipe at this profile (``IMAGENET_STAND_IN``).
PAPER_IMAGENET = Recipe(
    "imagenet", "imagenet", "ILSVRC-2012 (1000 classes, 256 px, 224 px crops)", 1000, "ilsvrc2012", 256, 224,
    width=1.0, epochs=90, lr_drop_epochs=(), lr=0.01, holdout_per_class=0, train_eval_images=10_000,
    init="model", input_scale=1.0, schedule="plateau", stream=True,
)

RECIPES: dict[str, tuple[Recipe, ...]] = {
    "smoke": (SMOKE_NETTE, SMOKE_CIFAR),
    "cpu": (CPU_NETTE, CPU_CIFAR),
    "paper": (PAPER_IMAGENET,),
}
# Which recipe stands for ImageNet in each profile's ImageNet claims (notebooks 03-05 and those after):
# ILSVRC itself at the paper profile, Imagenette below it.
IMAGENET_STAND_IN = {"smoke": "imagenette", "cpu": "imagenette", "paper": "imagenet"}
MIN_TOP5_CLASSES = 100  # top-5 of 10 classes leaves out half of them: not the paper's measure


# Table 1's comparison at our scale: the classical methods on the images the ImageNet stand-in's CNN
# sees (Coates et al. 2011's k-means patch features + softmax; softmax on the pixels), each to the end
# of its own budget: Imagenette's 128 px images resized to 112 px, as large as the CNN's crops.
CLASSICAL: dict[str, tuple[BaselineConfig, ...]] = {
    "smoke": (BaselineConfig("softmax_pixels", NETTE, 112, epochs=3, data_variant="sample"),
              BaselineConfig("kmeans_features", NETTE, 112, epochs=3, centroids=16, kmeans_patches=4000,
                             kmeans_iters=3, data_variant="sample")),
    "cpu": (BaselineConfig("softmax_pixels", NETTE, 112, epochs=30, data_variant="mirror"),
            BaselineConfig("kmeans_features", NETTE, 112, epochs=30, centroids=256, data_variant="mirror")),
}


def recipes_for(profile: str) -> tuple[Recipe, ...]:
    try:
        return RECIPES[profile]
    except KeyError:
        raise ValueError(f"no miniature recipes for profile {profile!r}; known: {', '.join(RECIPES)}") from None


def imagenet_recipe(profile: str) -> Recipe:
    """The recipe the profile's ImageNet claims are measured on (``IMAGENET_STAND_IN``)."""
    key = IMAGENET_STAND_IN.get(profile)
    found = {r.key: r for r in recipes_for(profile)}
    if key not in found:
        raise ValueError(f"profile {profile!r} names no ImageNet stand-in among its recipes ({', '.join(found)})")
    return found[key]


def recipe_table(profile: str):
    """The baseline recipe of each dataset at ``profile``, one row a dataset (what notebook 00 tunes)."""
    rows = []
    for recipe in recipes_for(profile):
        config = recipe.config(0)
        rows.append({
            "dataset": recipe.label,
            "net": recipe.net_label(),
            "schedule": f"lr {recipe.lr:g}, /10 after epochs {', '.join(map(str, recipe.lr_drop_epochs))}; "
                        f"{recipe.epochs} epochs",
            "regularisation": f"crops {recipe.crop}/{recipe.image_size} px + flips"
                              + (f", PCA lighting {config.lighting_std:g}" if config.lighting_std else "")
                              + (", dropout 0.5" if recipe.arch == "alexnet" else "")
                              + f", weight decay {config.weight_decay:g}",
            "arithmetic": f"{recipe.precision}, {recipe.threads} threads",
            "tuning split": f"{recipe.holdout_per_class} a class held out of train",
            "grid": "; ".join(", ".join(f"{k} {v:g}" for k, v in point.items()) for point in recipe.tuning_grid),
        })
    return pd.DataFrame(rows).set_index("dataset")
