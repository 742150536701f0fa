"""The configuration of one training run and its hash: a run's identity.

``TrainConfig`` holds everything that decides what a run computes (model, data,
augmentation, optimiser, schedule, seed, precision, what is measured at the end);
``config_hash`` names the run in the store (``runs/<hash>/``). The hash covers the
fields that differ from a frozen table of defaults, so adding a field with a
default that keeps the old behaviour leaves every stored hash where it was.
``python -m replication train --help`` lists every field with its default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from replication.models import ModelConfigError, check_spec


# --------------------------------------------------------------------------
# The configuration of one run
# --------------------------------------------------------------------------

PRECISIONS = ("fp32", "bf16")
SCHEDULES = ("plateau", "fixed", "constant")
OPTIMIZERS = ("paper", "torch")
EIGEN_SCALES = ("sqrt", "lambda", "lambda_unit")
INITS = ("model", "kaiming")
CHOICES = {"precision": PRECISIONS, "schedule": SCHEDULES, "optimizer": OPTIMIZERS,
           "lighting_eigen_scale": EIGEN_SCALES, "init": INITS}

# Help text for every field, shown by ``python -m replication train --help``.
FIELD_HELP = {
    "model": "model spec for models.build_model, a YAML/JSON mapping, e.g. '{arch: alexnet, width: 0.5}'",
    "dataset": "dataset name (replication.data.DATASETS), 'folder:PATH' for your own images (PATH/train/<class>/ "
               "and PATH/val/<class>/, or PATH/<class>/ split into train and val by a fixed seed; see --data), "
               "or 'synthetic' (random class-coloured images, for tests)",
    "data_variant": "which release of the dataset (`data list` shows them); None: the best full release found, "
                    "named in the stored run. 'sample' is the few images a class committed in data/sample/ "
                    "(tests, the smoke profile)",
    "data_fingerprint": "for a folder you supply (ImageNet, folder:PATH): a digest of its file list (paths, sizes "
                        "and, for folder:PATH, modification times) and classes, filled in when the run is looked up "
                        "or trained, so two folders (or one folder before and after a change) never share a run",
    "threads": "CPU threads of the run's arithmetic: another count sums in another order and changes the numbers, "
               "so it is part of the run's identity",
    "image_size": "resize images to this size when loading (None: the dataset's own size)",
    "train_per_class": "use only this many training images per class (None: all); for smoke runs",
    "val_per_class": "use only this many validation images per class (None: all)",
    "subset_seed": "seed of the per-class subsets",
    "crop": "random crop size in training, centre crop in test (None: the whole image, Section 4.1)",
    "flip": "random horizontal reflections in training (Section 4.1)",
    "lighting_std": "std of the PCA lighting coefficients a_i (Section 4.1; 0 disables)",
    "lighting_eigen_scale": "'sqrt' (a_i * sqrt(lambda_i), the 2012 code: about ten pixel levels), "
                            "'lambda_unit' (the paper's a_i * lambda_i on the 0..1 pixel scale: a few levels; "
                            "the claims' default) or 'lambda' (the text read on the 0..255 scale: hundreds of "
                            "levels); see augment.py",
    "mean_subtraction": "subtract the mean training image (Section 2)",
    "input_scale": "divide the (mean-subtracted) pixels by this: 1 keeps the paper's raw 0..255 levels "
                   "(cuda-convnet); about 64, the pixel std of CIFAR-10, standardises them (the modern default)",
    "optimizer": "'paper' (Section 5's update, lr inside the momentum) or 'torch' (torch.optim.SGD)",
    "lr": "initial learning rate (Section 5: 0.01)",
    "momentum": "momentum (Section 5: 0.9)",
    "weight_decay": "weight decay (Section 5: 0.0005)",
    "batch_size": "batch size (Section 5: 128)",
    "schedule": "'plateau' (divide by 10 when val error stops improving), 'fixed' (at lr_drop_epochs) or 'constant'",
    "patience": "plateau: epochs without a better validation error before dividing",
    "max_lr_drops": "plateau: divide at most this many times (Section 5: three)",
    "lr_drop_epochs": "fixed: divide the lr after these epochs, comma-separated (e.g. 30,60,80)",
    "epochs": "number of epochs (Section 5: roughly 90)",
    "stop_at_train_error": "stop once the running training error falls below this (Fig. 1: 0.25) ...",
    "extra_epochs": "... and after this many further epochs",
    "seed": "seed of the initialisation, shuffling, augmentation and dropout",
    "precision": "'fp32' or 'bf16' (bfloat16 autocast; weights and updates stay fp32)",
    "channels_last": "keep activations in channels_last memory format (faster on CPU)",
    "ten_crop": "also evaluate the final model with the ten-crop test (Section 4.1)",
    "save_conv1": "store the conv1 kernels (Fig. 3)",
    "neighbours_k": "store the indices of the k nearest training images by FC7 features for each query (Fig. 4; "
                    "0: off; `python -m replication figures RUN` draws them)",
    "neighbour_queries": "number of validation images used as Fig. 4 queries (chosen by neighbour_query_seed)",
    "per_class_error": "store the per-class validation top-1 error",
    "stream": "decode images from disk every epoch with DataLoader workers (ImageNet) instead of holding "
              "uint8 arrays in memory; workers: REPLICATION_WORKERS (does not change the numbers)",
    "stats_images": "streaming: the mean image and RGB PCA from this many training images, evenly spread "
                    "(None: all of them, as the paper)",
    "train_eval_images": "after each epoch also measure the test-mode (centre crop, no dropout) top-1/top-5 "
                         "error of this many fixed training images: the overfitting gap (0: off)",
    "init": "'model' (what the model spec says: Section 5's init unless paper_init is false) or 'kaiming' "
            "(He et al. 2015: N(0, 2/fan_in) weights, zero biases; lets short runs of deep nets start learning)",
    "save_val_topk": "store the k largest softmax outputs of every validation image (ten-crop when ten_crop, "
                     "else centre), for ensembles (Section 6; 0: off)",
    "save_val_probs": "store every validation image's full softmax output (ten-crop when ten_crop, else centre) "
                      "as float16, so that ensembles average complete predictions (Section 6)",
    "lighting_stream": "draw PCA lighting's coefficients from a random stream of their own, so that an arm "
                       "without lighting keeps every crop and flip of the baseline (paired arms); false: after "
                       "the crops, from the augmentation stream",
    "neighbour_query_seed": "choose the Fig. 4 queries by this seed, spread over the classes (one of each class "
                            "before a second of any); None: the first neighbour_queries validation images",
    "eval_dropout_draws": "also measure the validation error with dropout left on at test time (the mistake of "
                          "code that forgets eval mode): one draw, and the softmax averaged over this many (0: off)",
    "holdout_per_class": "tuning: hold this many images a class out of the training set (drawn by subset_seed) "
                         "and validate on them instead of the val split, which the run then never reads, so "
                         "that a recipe is chosen without looking at val (0: off, validate on val)",
    "layer_seeds": "draw each layer's initial weights from a stream of its own, keyed by the seed and the layer's "
                   "name, so two ablation arms that differ in one layer start every other layer from the same "
                   "weights (paired arms); false: one stream for the whole net, in construction order",
}


class ConfigError(ValueError):
    """A config field of the wrong type or out of range; the message starts with the field's name."""


# Smallest image side any net here accepts; each model checks its own family's minimum when built.
MIN_IMAGE_SIZE = 8
_BOOLEAN_FIELDS = ("flip", "mean_subtraction", "channels_last", "ten_crop", "save_conv1", "per_class_error",
                   "stream", "layer_seeds", "save_val_probs", "lighting_stream")
_INT_FIELDS = {"threads": 1, "subset_seed": 0, "batch_size": 1, "patience": 0, "max_lr_drops": 0, "epochs": 1,
               "extra_epochs": 0, "seed": 0, "neighbours_k": 0, "neighbour_queries": 0, "train_eval_images": 0,
               "save_val_topk": 0, "holdout_per_class": 0, "eval_dropout_draws": 0}
_OPTIONAL_INT_FIELDS = {"image_size": MIN_IMAGE_SIZE, "crop": MIN_IMAGE_SIZE, "train_per_class": 1,
                        "val_per_class": 1, "stats_images": 1, "neighbour_query_seed": 0}


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: true or false, got {value!r} ({type(value).__name__})")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: a whole number >= {low}, got {value!r} ({type(value).__name__})")
    if value < low:
        raise ConfigError(f"{name}: a whole number >= {low}, got {value}")
    return int(value)


def _check_float(name: str, value: Any, *, above: float | None = None, at_least: float | None = None,
                 below: float | None = None, at_most: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    bounds = [(above is None or value > above, f"> {above:g}" if above is not None else ""),
              (at_least is None or value >= at_least, f">= {at_least:g}" if at_least is not None else ""),
              (below is None or value < below, f"< {below:g}" if below is not None else ""),
              (at_most is None or value <= at_most, f"<= {at_most:g}" if at_most is not None else "")]
    if not math.isfinite(value) or not all(ok for ok, _ in bounds):
        wanted = " and ".join(text for _, text in bounds if text)
        raise ConfigError(f"{name}: a finite number {wanted}, got {value!r}")
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes.

    Runtime choices that do not change the numbers (progress bars, where the
    checkpoint lives) are arguments of ``train``, not fields here.
    """

    # what is trained (Section 3) and on what (Section 2)
    model: dict = field(default_factory=lambda: {"arch": "fig1"})
    dataset: str = "cifar10-jpeg"
    image_size: int | None = None
    train_per_class: int | None = None
    val_per_class: int | None = None
    subset_seed: int = 0
    # augmentation (Section 4.1)
    crop: int | None = None
    flip: bool = True
    lighting_std: float = 0.1
    lighting_eigen_scale: str = "sqrt"
    mean_subtraction: bool = True
    input_scale: float = 1.0
    # optimiser (Section 5)
    optimizer: str = "paper"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    # schedule (Section 5)
    schedule: str = "plateau"
    patience: int = 2
    max_lr_drops: int = 3
    lr_drop_epochs: tuple[int, ...] = ()
    epochs: int = 90
    stop_at_train_error: float | None = None
    extra_epochs: int = 0
    # reproducibility and numerics
    seed: int = 0
    precision: str = "fp32"
    channels_last: bool = True
    # what is measured at the end (Section 6, Figs. 3 and 4)
    ten_crop: bool = False
    save_conv1: bool = False
    neighbours_k: int = 0
    neighbour_queries: int = 0
    per_class_error: bool = False
    # streaming (ImageNet-size data) and extra measurements (issue 8); the defaults keep old hashes
    stream: bool = False
    stats_images: int | None = None
    train_eval_images: int = 0
    save_val_topk: int = 0
    init: str = "model"
    data_variant: str | None = None
    # the rest of a run's identity: what the data is, and the arithmetic that changes its numbers
    data_fingerprint: str | None = None
    threads: int = 2
    # the protocol of paired ablations: a recipe tuned on a held-out part of train; arms paired by seed
    holdout_per_class: int = 0
    layer_seeds: bool = False
    save_val_probs: bool = False
    lighting_stream: bool = False
    neighbour_query_seed: int | None = None
    eval_dropout_draws: int = 0

    def __post_init__(self):
        """Check every field's type and range where the config is built; each message names the field."""
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        if not isinstance(self.model, dict) or "arch" not in self.model:
            raise ConfigError(f"model: a mapping with an 'arch' key, e.g. {{arch: alexnet}}, got {self.model!r}")
        set_("model", dict(self.model))
        for name in _BOOLEAN_FIELDS:
            _check_bool(name, getattr(self, name))
        for name, low in _INT_FIELDS.items():
            set_(name, _check_int(name, getattr(self, name), low))
        for name, low in _OPTIONAL_INT_FIELDS.items():
            value = getattr(self, name)
            set_(name, None if value is None else _check_int(name, value, low))
        set_("lr", _check_float("lr", self.lr, above=0.0))
        set_("momentum", _check_float("momentum", self.momentum, at_least=0.0, below=1.0))
        set_("weight_decay", _check_float("weight_decay", self.weight_decay, at_least=0.0))
        set_("lighting_std", _check_float("lighting_std", self.lighting_std, at_least=0.0))
        set_("input_scale", _check_float("input_scale", self.input_scale, above=0.0))
        if self.stop_at_train_error is not None:
            set_("stop_at_train_error", _check_float("stop_at_train_error", self.stop_at_train_error,
                                                     above=0.0, at_most=1.0))
        if not isinstance(self.lr_drop_epochs, (list, tuple)):
            raise ConfigError(f"lr_drop_epochs: a list of epochs such as [30, 60], got {self.lr_drop_epochs!r}")
        set_("lr_drop_epochs", tuple(_check_int("lr_drop_epochs", e, 1) for e in self.lr_drop_epochs))
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}: one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if not isinstance(self.dataset, str) or not self.dataset or self.dataset.strip() == "folder:":
            raise ConfigError(f"dataset: a dataset name (python -m replication data list) or folder:PATH, "
                              f"got {self.dataset!r}")
        for name in ("data_variant", "data_fingerprint"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{name}: a non-empty string, or None, got {value!r}")
        if self.crop is not None and self.image_size is not None and self.crop > self.image_size:
            raise ConfigError(f"crop: {self.crop} px does not fit image_size {self.image_size} px")
        if self.holdout_per_class and self.stream:
            raise ConfigError("holdout_per_class: the tuning split is cut from images held in memory; "
                              "a streamed dataset (stream: true) has none")
        try:  # the model's own arithmetic: known arch and fields, sizes that fit the family
            check_spec(self.model, self.crop or self.image_size)
        except ModelConfigError as error:
            raise ConfigError(f"model: {error}") from None
        if self.stream and self.dataset == "synthetic":
            raise ConfigError("stream: True reads image files; the 'synthetic' dataset lives in memory only")

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["lr_drop_epochs"] = list(self.lr_drop_epochs)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a (JSON/YAML) dict, refusing unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# The hash of a config covers only the fields that differ from this table, the
# schema-1 defaults, frozen here on purpose. Adding a field: give it a default
# that reproduces the old behaviour and add that value here; stored hashes do
# not move. Changing a default: leave this table alone; configs relying on the
# old default hash differently, as they should (they train differently).
HASH_SCHEMA = 1
HASH_BASE: dict[str, Any] = {
    "model": {"arch": "fig1"}, "dataset": "cifar10-jpeg", "image_size": None,
    "train_per_class": None, "val_per_class": None, "subset_seed": 0,
    "crop": None, "flip": True, "lighting_std": 0.1, "lighting_eigen_scale": "sqrt", "mean_subtraction": True,
    "input_scale": 1.0,
    "optimizer": "paper", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 128,
    "schedule": "plateau", "patience": 2, "max_lr_drops": 3, "lr_drop_epochs": [], "epochs": 90,
    "stop_at_train_error": None, "extra_epochs": 0,
    "seed": 0, "precision": "fp32", "channels_last": True,
    "ten_crop": False, "save_conv1": False, "neighbours_k": 0, "neighbour_queries": 0,
    "per_class_error": False,
    "stream": False, "stats_images": None, "train_eval_images": 0, "save_val_topk": 0, "init": "model",
    "data_variant": None, "data_fingerprint": None, "threads": 2,
    "holdout_per_class": 0, "layer_seeds": False, "save_val_probs": False, "lighting_stream": False,
    "neighbour_query_seed": None, "eval_dropout_draws": 0,
}


def config_diff(config: TrainConfig) -> dict:
    """The fields of ``config`` that differ from ``HASH_BASE`` (what the hash covers)."""
    values = config.to_dict()
    unregistered = sorted(set(values) - set(HASH_BASE))
    if unregistered:
        raise RuntimeError(f"config fields {unregistered} are missing from train.HASH_BASE; "
                           "add each with the value that reproduces the behaviour before it existed")
    return {k: v for k, v in values.items() if canonical_json(v) != canonical_json(HASH_BASE[k])}


def config_hash(config: TrainConfig) -> str:
    """16 hex digits of sha256 over the canonical JSON of the schema and the diff."""
    payload = canonical_json({"schema": HASH_SCHEMA, "config": config_diff(config)})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def canonical_json(value) -> str:
    """JSON with sorted keys and no spaces: the text a hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


