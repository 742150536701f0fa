"""Train one configuration (Section 5 of Krizhevsky et al., 2012).

Section 5, "Details of learning", in code:

- ``PaperSGD``: the paper's update, with the learning rate *inside* the
  momentum: ``v <- 0.9 v - 0.0005 eps w - eps grad``, ``w <- w + v``.
- ``LRSchedule``: "divide the learning rate by 10 when the validation error
  rate stopped improving with the current learning rate", at most three
  times (``plateau``), or at given epochs (``fixed``), or never (``constant``).
- ``train(config)``: batch 128, per-epoch metrics (running training loss and
  error, validation top-1/top-5 on the centre crop, learning rate, seconds,
  images/s), fp32 or bfloat16 autocast, channels_last, a checkpoint written
  atomically at the end of every epoch.

Determinism and resume: every random stream is derived from ``(seed, epoch)``
(the shuffle, the augmentation, dropout), so a run resumed from the
checkpoint of epoch k ends with exactly the metrics and weights of a run that
was never interrupted, without saving any generator state.

A run's identity is its ``TrainConfig``; ``replication.runs`` stores finished
runs under the config's hash. ``python -m replication train --help`` lists
every field with its default.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from replication.paths import atomic_file, remove_stale_partials
from replication.provenance import bf16_is_native, cpu_model, describe_machines, environment  # noqa: F401
from replication.seeds import (STREAM_AUGMENT, STREAM_DROPOUT, STREAM_INIT, STREAM_SHUFFLE,  # noqa: F401
                               derive_seed, generator)

# --------------------------------------------------------------------------
# The paper's SGD (Section 5)
# --------------------------------------------------------------------------


class PaperSGD(torch.optim.Optimizer):
    """Stochastic gradient descent exactly as written in Section 5.

    ``v <- momentum * v - weight_decay * lr * w - lr * grad``; ``w <- w + v``.

    While the learning rate is constant this is the same trajectory as
    ``torch.optim.SGD(momentum=0.9, weight_decay=5e-4)``, whose buffer is
    ``b = momentum * b + grad + weight_decay * w`` with ``w <- w - lr * b``
    (so ``v = -lr * b``). Right after the learning rate is divided they
    differ: here the old velocity keeps its full size (``momentum * v`` was
    accumulated at the old rate), while torch rescales the whole buffer by the
    new rate. The state kept per parameter is ``velocity`` (``v``).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid PaperSGD settings lr={lr} momentum={momentum} weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            velocities = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                velocities.append(state["velocity"])
            grads = [p.grad for p in params]
            # v = momentum * v - decay * lr * w - lr * grad ; w = w + v
            torch._foreach_mul_(velocities, momentum)
            if decay:
                torch._foreach_add_(velocities, params, alpha=-decay * lr)
            torch._foreach_add_(velocities, grads, alpha=-lr)
            torch._foreach_add_(params, velocities)
        return loss


# --------------------------------------------------------------------------
# The learning-rate schedule (Section 5)
# --------------------------------------------------------------------------


@dataclass
class LRSchedule:
    """The learning rate and the rule that divides it by 10.

    ``plateau``: divide when the validation error has not improved for
    ``patience`` epochs, at most ``max_drops`` times (the paper: three times).
    ``fixed``: divide after each epoch listed in ``drop_epochs`` (1-based).
    ``constant``: never divide.
    """

    kind: str
    lr: float
    patience: int = 2
    max_drops: int = 3
    drop_epochs: tuple[int, ...] = ()
    best_error: float = math.inf
    drops: int = 0
    epochs_since_best: int = 0

    def step(self, epoch: int, val_error: float) -> bool:
        """Record the validation error after ``epoch`` (1-based); True when lr was divided."""
        if val_error < self.best_error:
            self.best_error, self.epochs_since_best = val_error, 0
        else:
            self.epochs_since_best += 1
        divide = False
        if self.kind == "plateau":
            divide = self.epochs_since_best >= self.patience and self.drops < self.max_drops
        elif self.kind == "fixed":
            divide = epoch in self.drop_epochs
        if divide:
            self.lr /= 10.0
            self.drops += 1
            self.epochs_since_best = 0
        return divide

    def state_dict(self) -> dict:
        return {"lr": self.lr, "best_error": self.best_error, "drops": self.drops,
                "epochs_since_best": self.epochs_since_best}

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
        self.best_error = float(state["best_error"])
        self.drops = int(state["drops"])
        self.epochs_since_best = int(state["epochs_since_best"])


# --------------------------------------------------------------------------
# The configuration of one run
# --------------------------------------------------------------------------

PRECISIONS = ("fp32", "bf16")
SCHEDULES = ("plateau", "fixed", "constant")
OPTIMIZERS = ("paper", "torch")
EIGEN_SCALES = ("sqrt", "lambda")
INITS = ("model", "kaiming")
CHOICES = {"precision": PRECISIONS, "schedule": SCHEDULES, "optimizer": OPTIMIZERS,
           "lighting_eigen_scale": EIGEN_SCALES, "init": INITS}

# Help text for every field, shown by ``python -m replication train --help``.
FIELD_HELP = {
    "model": "model spec for models.build_model, a YAML/JSON mapping, e.g. '{arch: alexnet, width: 0.5}'",
    "dataset": "dataset name (replication.data.DATASETS) or 'synthetic' (random class-coloured images, for tests)",
    "data_variant": "which release of the dataset (`data list` shows them); None: the best full release found. "
                    "'sample' is the few images a class committed in data/sample/ (tests, the smoke profile)",
    "image_size": "resize images to this size when loading (None: the dataset's own size)",
    "train_per_class": "use only this many training images per class (None: all); for smoke runs",
    "val_per_class": "use only this many validation images per class (None: all)",
    "subset_seed": "seed of the per-class subsets",
    "crop": "random crop size in training, centre crop in test (None: the whole image, Section 4.1)",
    "flip": "random horizontal reflections in training (Section 4.1)",
    "lighting_std": "std of the PCA lighting coefficients a_i (Section 4.1; 0 disables)",
    "lighting_eigen_scale": "'sqrt' (a_i * sqrt(lambda_i), the 2012 code: a few pixel levels) or 'lambda' "
                            "(the paper's text read on the 0..255 scale: hundreds of levels); see augment.py",
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
    "neighbours_k": "store the k nearest training images by FC7 features for each query (Fig. 4; 0: off)",
    "neighbour_queries": "number of validation images used as Fig. 4 queries (the first of the val split)",
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
}


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

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("model", dict(self.model))
        for name in ("lr", "momentum", "weight_decay", "lighting_std", "input_scale"):
            set_(name, float(getattr(self, name)))
        if self.stop_at_train_error is not None:
            set_("stop_at_train_error", float(self.stop_at_train_error))
        set_("lr_drop_epochs", tuple(int(e) for e in self.lr_drop_epochs))
        if "arch" not in self.model:
            raise ValueError(f"model spec needs an 'arch' key, got {self.model}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lighting_eigen_scale not in EIGEN_SCALES:
            raise ValueError(f"lighting_eigen_scale must be one of {EIGEN_SCALES}, got {self.lighting_eigen_scale!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.input_scale > 0:
            raise ValueError(f"input_scale must be positive, got {self.input_scale}")
        if self.train_eval_images < 0 or self.save_val_topk < 0:
            raise ValueError(f"need train_eval_images >= 0 and save_val_topk >= 0, got "
                             f"{self.train_eval_images}, {self.save_val_topk}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.stream and self.dataset == "synthetic":
            raise ValueError("stream=True reads image files; the 'synthetic' dataset lives in memory only")
        if self.batch_size < 1 or self.epochs < 0:
            raise ValueError(f"need batch_size >= 1 and epochs >= 0, got {self.batch_size}, {self.epochs}")

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
    "data_variant": None,
}


def config_diff(config: TrainConfig) -> dict:
    """The fields of ``config`` that differ from ``HASH_BASE`` (what the hash covers)."""
    values = config.to_dict()
    unregistered = sorted(set(values) - set(HASH_BASE))
    if unregistered:
        raise RuntimeError(f"config fields {unregistered} are missing from train.HASH_BASE; "
                           "add each with the value that reproduces the behaviour before it existed")
    return {k: v for k, v in values.items() if _canonical(v) != _canonical(HASH_BASE[k])}


def config_hash(config: TrainConfig) -> str:
    """16 hex digits of sha256 over the canonical JSON of the schema and the diff."""
    payload = _canonical({"schema": HASH_SCHEMA, "config": config_diff(config)})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


@dataclass
class Split:
    """Images in memory as one uint8 NHWC tensor (Section 2: small images, no decoding in the loop)."""

    images: torch.Tensor   # uint8 [N, H, W, 3]
    labels: torch.Tensor   # int64 [N]
    classes: list[str]
    class_names: list[str]
    name: str = ""
    split: str = ""

    @classmethod
    def from_image_split(cls, split) -> "Split":
        images = np.ascontiguousarray(split.images)
        if not images.flags.writeable:  # a read-only memory map: copy once into memory
            images = images.copy()
        return cls(torch.from_numpy(images), torch.as_tensor(np.asarray(split.labels), dtype=torch.int64),
                   list(split.classes), list(getattr(split, "class_names", split.classes)),
                   getattr(split, "name", ""), getattr(split, "split", ""))

    def __len__(self) -> int:
        return len(self.labels)


def synthetic_split(split: str, per_class: int = 32, size: int = 32, classes: int = 10,
                    seed: int = 0) -> Split:
    """Random uint8 images whose class sets a coarse colour pattern (learnable in a few epochs).

    For tests and benchmarks without the dataset mirrors; the train and test
    splits share the class patterns and differ in the noise.
    """
    patterns = torch.Generator().manual_seed(1234 + seed)
    templates = torch.rand(classes, 3, 4, 4, generator=patterns) * 160 + 48
    templates = F.interpolate(templates, size=(size, size), mode="nearest")
    noise = torch.Generator().manual_seed(seed * 2 + (0 if split == "train" else 1))
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = templates[labels] + torch.randn(len(labels), 3, size, size, generator=noise) * 40
    images = images.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    names = [f"class{i}" for i in range(classes)]
    return Split(images, labels, names, names, "synthetic", split)


def load_data(config: TrainConfig, progress: bool = False) -> tuple[Split, Split]:
    """The training and validation splits a config names, per-class subsets applied."""
    if config.stream:
        return stream_data(config)
    if config.dataset == "synthetic":
        size = config.image_size or 32
        return (synthetic_split("train", config.train_per_class or 32, size, seed=config.subset_seed),
                synthetic_split("val", config.val_per_class or 16, size, seed=config.subset_seed))
    from replication import data

    splits = []
    for split_name, per_class in (("train", config.train_per_class), ("val", config.val_per_class)):
        split = data.load_split(config.dataset, split_name, size=config.image_size, progress=progress,
                                variant=config.data_variant)
        if per_class is not None:
            split = data.subset_per_class(split, per_class, seed=config.subset_seed)
        splits.append(Split.from_image_split(split))
    return splits[0], splits[1]


class StreamSplit:
    """A split read from image files on demand (ImageNet): the streaming twin of ``Split``.

    ``dataset[i]`` is ``(uint8 [3, size, size], label)``: the shorter side
    rescaled to ``size`` and the central square kept (Section 2), decoded by a
    DataLoader worker. Augmentation then runs a batch at a time on the training
    device with the same ``BatchAugmenter`` and random streams as the in-memory
    path, so the number of workers does not change what is computed.
    """

    def __init__(self, dataset, labels, classes, class_names, size: int, name: str = "", split: str = ""):
        self.dataset, self.size = dataset, int(size)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.classes, self.class_names, self.name, self.split = list(classes), list(class_names), name, split

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> "StreamSplit":
        indices = [int(i) for i in indices]
        return StreamSplit(torch.utils.data.Subset(self.dataset, indices), self.labels[indices], self.classes,
                           self.class_names, self.size, self.name, self.split)


class _ResizeToUint8:
    """PIL image -> shorter side to ``size``, central ``size`` x ``size`` crop -> uint8 [3, size, size]."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image):
        from PIL import Image

        width, height = image.size
        if (width, height) != (self.size, self.size):
            scale = self.size / min(width, height)
            image = image.resize((max(self.size, round(width * scale)), max(self.size, round(height * scale))),
                                 Image.BILINEAR, reducing_gap=None)
            width, height = image.size
            left, top = (width - self.size) // 2, (height - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def stream_data(config: TrainConfig) -> tuple[StreamSplit, StreamSplit]:
    """The training and validation splits as ``StreamSplit``s (files listed once, decoded per epoch)."""
    from replication import data

    size = config.image_size or data.get_spec(config.dataset).variants[0].size
    splits = []
    for split_name, per_class in (("train", config.train_per_class), ("val", config.val_per_class)):
        listing = data.list_split(config.dataset, split_name, variant=config.data_variant)
        split = StreamSplit(data.FileDataset(listing, _ResizeToUint8(size)), listing.labels, listing.classes,
                            listing.class_names, size, config.dataset, split_name)
        if per_class is not None:
            split = split.subset(_per_class_indices(split.labels.numpy(), per_class, config.subset_seed))
        splits.append(split)
    return splits[0], splits[1]


def _per_class_indices(labels: np.ndarray, per_class: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen += list(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return sorted(int(i) for i in chosen)


def kaiming_init(module: nn.Module) -> nn.Module:
    """He et al. (2015) initialisation of every convolution and linear layer: weights N(0, 2 / fan_in),
    biases 0 (the ReLU gain keeps the activations' scale through depth, where Section 5's N(0, 0.01)
    and unit biases leave a narrow, short-trained net at chance for thousands of steps)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def stream_workers() -> int:
    """DataLoader worker processes for streaming: ``REPLICATION_WORKERS`` or min(8, CPUs)."""
    value = os.environ.get("REPLICATION_WORKERS")
    return int(value) if value not in (None, "") else min(8, os.cpu_count() or 1)


def stream_batches(split: StreamSplit, batches, device: torch.device | None = None):
    """(uint8 images [B,3,H,W], labels [B]) for each list of indices in ``batches``, decoded by workers."""
    workers = stream_workers()
    pin = device is not None and torch.device(device).type == "cuda"
    loader = torch.utils.data.DataLoader(split.dataset, batch_sampler=[list(map(int, b)) for b in batches],
                                         num_workers=workers, pin_memory=pin,
                                         prefetch_factor=4 if workers else None,
                                         persistent_workers=False,
                                         # its own generator: creating the iterator draws a worker base seed,
                                         # which must not come from (and shift) the global dropout stream
                                         generator=torch.Generator().manual_seed(0))
    yield from loader


def stream_stats(split: StreamSplit, limit: int | None, cache: Path | None = None):
    """Section 2's mean image and Section 4.1's RGB PCA from streamed training images (cached)."""
    from replication import augment

    n = len(split)
    chosen = np.arange(n) if limit is None or limit >= n else np.linspace(0, n - 1, limit).round().astype(int)
    if cache is not None and cache.is_file():
        with np.load(cache) as arrays:
            return augment.DatasetStats.from_numpy(arrays)
    size = split.size
    sum_image = torch.zeros(size, size, 3, dtype=torch.float64)
    sum_outer = torch.zeros(3, 3, dtype=torch.float64)
    batches = [chosen[i:i + 64] for i in range(0, len(chosen), 64)]
    for images, _ in stream_batches(split, batches):
        x = images.permute(0, 2, 3, 1).to(torch.float64)
        sum_image += x.sum(0)
        pixels = x.reshape(-1, 3)
        sum_outer += pixels.T @ pixels
    count = len(chosen)
    sum_rgb = sum_image.sum((0, 1))
    mean = sum_rgb / (count * size * size)
    covariance = sum_outer / (count * size * size) - torch.outer(mean, mean)
    eigvals, eigvecs = augment.pca_from_covariance(covariance)
    stats = augment.DatasetStats((sum_image / count).permute(2, 0, 1).to(torch.float32).contiguous(),
                                 eigvals, eigvecs, covariance, count)
    if cache is not None:
        with atomic_file(cache) as partial, open(partial, "wb") as handle:
            np.savez(handle, **stats.to_numpy())
    return stats


# --------------------------------------------------------------------------
# Device, precision, checkpoints
# --------------------------------------------------------------------------


def default_device() -> torch.device:
    """The first GPU when there is one (the paper profile), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device_type: str = "cpu"):
    """bfloat16 autocast when precision == 'bf16', else a no-op context."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


class CheckpointError(RuntimeError):
    """A checkpoint that is corrupt, not ours, or from another configuration."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, message: str, epoch: int, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint


CHECKPOINT_FORMAT = "replication.train.checkpoint/1"


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a partial file in the same folder, fsync, then rename (atomic)."""
    path = Path(path)
    remove_stale_partials(path.parent, path.name)  # a killed writer's leftovers
    with atomic_file(path, fsync=True) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, expected_hash: str | None = None) -> dict:
    """Load with ``weights_only=True``; refuse corrupt, foreign or other-config files by name."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle of arbitrary objects, not a torch file ...
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safe torch checkpoint "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"delete it to train from scratch") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a replication training checkpoint "
                              f"(format {found!r}, expected {CHECKPOINT_FORMAT!r}); delete or move it")
    if expected_hash is not None and state.get("config_hash") != expected_hash:
        raise CheckpointError(f"checkpoint {path} belongs to config {state.get('config_hash')}, "
                              f"not to this config {expected_hash}; refusing to resume from it")
    return state


# --------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------


class Trainer:
    """Model, optimiser, augmentation and data of one config, and one training step.

    ``train()`` drives it epoch by epoch; ``bench`` times ``train_step``
    directly, so the benchmark measures exactly this code.
    """

    def __init__(self, config: TrainConfig, data: tuple[Split, Split] | None = None, dist=None,
                 device: str | torch.device | None = None, progress: bool = False):
        from replication import augment, models

        self.config = config
        self.hash = config_hash(config)
        self.dist = dist
        self.rank = dist.rank if dist is not None else 0
        self.world = dist.world_size if dist is not None else 1
        self.device = torch.device(dist.device if dist is not None else device or default_device())
        if config.precision == "bf16" and self.device.type == "cpu" and not bf16_is_native():
            warnings.warn("precision 'bf16' on a CPU without native bfloat16 kernels (no AVX-512 BF16/AMX): "
                          "autocast is emulated and runs several times slower than fp32 here", stacklevel=2)
        self.train_split, self.val_split = data if data is not None else load_data(config, progress)

        torch.manual_seed(derive_seed(config.seed, 0, STREAM_INIT))
        model_spec = dict(config.model)
        model_spec.setdefault("num_classes", len(self.train_split.classes))
        model_spec.setdefault("input_size", config.crop or self.image_size)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        module = models.build_model(model_spec)
        if config.init == "kaiming":
            kaiming_init(module)
        self.module = module.to(self.device, memory_format=self.memory_format)
        self.model = self.module  # what is called in training: the module, or its DDP wrapper
        if self.world > 1:
            from replication import parallel

            self.model = parallel.wrap_ddp(self.module, dist)

        size = self.image_size
        mean_image, eigvals, eigvecs = torch.zeros(3, size, size), None, None
        if config.mean_subtraction or config.lighting_std > 0:
            if self.streaming:  # Section 2's mean image, Section 4.1's RGB PCA, over streamed files
                from replication import runs

                key = _canonical([config.dataset, config.data_variant, self.image_size, config.train_per_class, config.subset_seed,
                                  config.stats_images, os.environ.get("REPLICATION_IMAGENET", "")])
                cache = runs.cache_dir() / "stats" / f"stream-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
                stats = stream_stats(self.train_split, config.stats_images, cache)
            else:
                stats = augment.compute_dataset_stats(self.train_split.images)
            mean_image = stats.mean_image if config.mean_subtraction else mean_image
            eigvals, eigvecs = stats.eigvals, stats.eigvecs
        self.augmenter = augment.BatchAugmenter(mean_image, eigvals, eigvecs, crop=config.crop or size,
                                                flip=config.flip, lighting_std=config.lighting_std,
                                                eigen_scale=config.lighting_eigen_scale, scale=config.input_scale)
        optimizer = PaperSGD if config.optimizer == "paper" else torch.optim.SGD
        self.optimizer = optimizer(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        self.schedule = LRSchedule(config.schedule, config.lr, config.patience, config.max_lr_drops,
                                   config.lr_drop_epochs)
        self.train_eval_split = None
        if config.train_eval_images > 0:  # a fixed sample of the training set, evaluated like the val set
            n = len(self.train_split)
            pick = torch.randperm(n, generator=torch.Generator().manual_seed(config.subset_seed + 7919))
            pick = pick[:min(config.train_eval_images, n)].sort().values
            self.train_eval_split = self._subset(self.train_split, pick)

    @property
    def streaming(self) -> bool:
        return isinstance(self.train_split, StreamSplit)

    @property
    def image_size(self) -> int:
        return self.train_split.size if self.streaming else int(self.train_split.images.shape[1])

    @staticmethod
    def _subset(split, indices: torch.Tensor):
        if isinstance(split, StreamSplit):
            return split.subset(indices.tolist())
        return Split(split.images[indices], split.labels[indices], split.classes, split.class_names,
                     split.name, split.split)

    def _train_batches(self, order: torch.Tensor, starts, batch: int):
        """(uint8 images, labels) for each step: indexed in memory, or decoded by DataLoader workers."""
        if self.streaming:
            yield from stream_batches(self.train_split, [order[s:s + batch] for s in starts], self.device)
            return
        for start in starts:
            index = order[start:start + batch]
            yield self.train_split.images[index], self.train_split.labels[index]

    # -- one step -------------------------------------------------------------

    def prepare(self, images_uint8: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """uint8 NHWC batch -> augmented float32 NCHW (train) or centre crop (generator None)."""
        images_uint8 = images_uint8.to(self.device, non_blocking=True)
        x = self.augmenter(images_uint8, generator) if generator is not None else self.augmenter.center(images_uint8)
        return x.contiguous(memory_format=self.memory_format)

    def train_step(self, images_uint8: torch.Tensor, labels: torch.Tensor,
                   generator: torch.Generator) -> tuple[float, int]:
        """Augment, forward (autocast), backward, update; returns (summed loss, number wrong)."""
        x = self.prepare(images_uint8, generator)
        labels = labels.to(self.device, non_blocking=True)
        with autocast(self.config.precision, self.device.type):
            logits = self.model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            wrong = (logits.argmax(dim=1) != labels).sum()
        return float(loss.detach()) * len(labels), int(wrong)

    # -- one epoch ------------------------------------------------------------

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This rank's share of the epoch's shuffle (a permutation seeded by (seed, epoch))."""
        n = len(self.train_split)
        order = torch.randperm(n, generator=generator(self.config.seed, epoch, STREAM_SHUFFLE))
        if self.world > 1:
            per_rank = n // self.world
            order = order[self.rank * per_rank:(self.rank + 1) * per_rank]
        return order

    def run_epoch(self, epoch: int, progress: bool = False,
                  after_step: Callable[["Trainer", int, int], None] | None = None,
                  max_steps: int | None = None) -> dict:
        """Train one epoch (``epoch`` is 1-based); returns loss, error, images, seconds.

        ``max_steps`` cuts the epoch short (the benchmark uses it).
        """
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr
        self.model.train()
        torch.manual_seed(derive_seed(cfg.seed, epoch, STREAM_DROPOUT, self.rank))
        augment_rng = generator(cfg.seed, epoch, STREAM_AUGMENT, self.rank)
        order = self.epoch_indices(epoch)
        batch = max(1, cfg.batch_size // self.world)
        starts = range(0, len(order), batch)[:max_steps]
        bar = _progress(self._train_batches(order, starts, batch), progress, f"epoch {epoch}/{cfg.epochs}")
        loss_sum, errors, seen = 0.0, 0, 0
        began = time.perf_counter()
        for step, (images, labels) in enumerate(bar, 1):
            loss, wrong = self.train_step(images, labels, augment_rng)
            if not math.isfinite(loss):
                raise _NonFinite(epoch, step, loss)
            loss_sum += loss
            errors += wrong
            seen += len(labels)
            if progress and (step % 10 == 0 or step == len(starts)):
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", err=f"{errors / seen:.3f}", refresh=False)
            if after_step is not None:
                after_step(self, epoch, step)
        seconds = time.perf_counter() - began
        totals = torch.tensor([loss_sum, errors, seen], dtype=torch.float64)
        if self.world > 1:  # gloo reduces CPU tensors; nccl needs them on the GPU
            totals = totals.to(self.device)
            torch.distributed.all_reduce(totals)
        loss_total, errors_total, seen_total = totals.tolist()
        return {"train_loss": loss_total / max(seen_total, 1), "train_error": errors_total / max(seen_total, 1),
                "images": int(seen_total), "seconds": seconds}

    # -- evaluation (replication.evaluate) ---------------------------------------

    def _eval_kwargs(self) -> dict:
        return {"autocast_dtype": torch.bfloat16 if self.config.precision == "bf16" else None,
                "channels_last": self.config.channels_last}

    def evaluate(self, split: Split | None = None, ten_crop: bool = False) -> dict:
        """Top-1 and top-5 error (Section 6), centre crop or ten-crop, and the mean log loss."""
        from replication import evaluate

        split = split or self.val_split
        if isinstance(split, StreamSplit):
            order = np.arange(len(split))
            chunks = [order[i:i + 256] for i in range(0, len(order), 256)]
            probs = np.concatenate([
                evaluate.predict_probs(self.module, images, self.augmenter, ten_crop=ten_crop, batch_size=len(images),
                                       device=self.device, **self._eval_kwargs())
                for images, _ in stream_batches(split, chunks, self.device)])
        else:
            probs = evaluate.predict_probs(self.module, split.images, self.augmenter, ten_crop=ten_crop,
                                           **self._eval_kwargs())
        result = evaluate.results_from_probs(probs, split.labels.numpy(), "ten_crop" if ten_crop else "center")
        picked = probs[np.arange(len(probs)), split.labels.numpy()]
        loss = float(-np.log(np.clip(picked, 1e-12, None)).mean())
        return {"top1": result.top1, "top5": result.top5, "loss": loss, "result": result, "probs": probs}

    def artifacts(self, result) -> dict[str, np.ndarray]:
        """The small arrays figures need: conv1 kernels (Fig. 3), per-class errors, neighbours (Fig. 4)."""
        from replication import evaluate

        cfg, out = self.config, {}
        if cfg.save_conv1:
            out["conv1"] = np.stack([w.numpy() for w in evaluate.conv1_kernels(self.module)])  # [towers, K, 3, h, w]
        if cfg.per_class_error:
            out["per_class_error"] = np.asarray(result.per_class_top1, dtype=np.float64)
        if cfg.neighbours_k > 0 and cfg.neighbour_queries > 0 and not self.streaming:
            queries = np.arange(min(cfg.neighbour_queries, len(self.val_split)))
            kwargs = self._eval_kwargs()
            query_features = evaluate.extract_features(self.module, self.val_split.images[torch.from_numpy(queries)],
                                                       self.augmenter, **kwargs)
            train_features = evaluate.extract_features(self.module, self.train_split.images, self.augmenter, **kwargs)
            neighbours = evaluate.nearest_neighbours(query_features, train_features, cfg.neighbours_k)
            out["neighbour_queries"] = queries
            out["neighbours"] = neighbours.indices
            out["neighbour_distances"] = neighbours.distances
        return out

    # -- checkpoints ------------------------------------------------------------

    def checkpoint_state(self, epoch: int, metrics: list[dict]) -> dict:
        return {"format": CHECKPOINT_FORMAT, "config_hash": self.hash,
                "config": json.dumps(self.config.to_dict(), sort_keys=True), "epoch": epoch,
                "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "metrics": metrics}

    def load_state(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])


class _NonFinite(Exception):
    def __init__(self, epoch, step, value):
        super().__init__(epoch, step, value)
        self.epoch, self.step, self.value = epoch, step, value


def _progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False, dynamic_ncols=True)


# --------------------------------------------------------------------------
# train(): the loop over epochs
# --------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What ``train`` returns: the config, the trained model, metrics, summary and artifacts."""

    config: TrainConfig
    hash: str
    model: nn.Module
    metrics: list[dict]
    summary: dict
    artifacts: dict[str, np.ndarray]
    checkpoint: Path | None


def stop_reached(config: TrainConfig, metrics: list[dict]) -> tuple[bool, int | None]:
    """(stop now?, first epoch whose running training error fell below the threshold).

    The Fig. 1 rule: once the running training error is below
    ``stop_at_train_error``, train ``extra_epochs`` more and stop.
    """
    reached = None
    if config.stop_at_train_error is not None:
        reached = next((m["epoch"] for m in metrics if m["train_error"] < config.stop_at_train_error), None)
    done = len(metrics) >= config.epochs
    if reached is not None and len(metrics) >= reached + config.extra_epochs:
        done = True
    return done, reached


def train(config: TrainConfig, *, checkpoint: str | Path | None = None, progress: bool = True,
          data: tuple[Split, Split] | None = None, threads: int | None = None,
          after_epoch: Callable[[Trainer, int, dict], None] | None = None,
          after_step: Callable[[Trainer, int, int], None] | None = None, dist=None,
          device: str | torch.device | None = None) -> TrainResult:
    """Train ``config`` to the end, resuming from ``checkpoint`` when it exists.

    A checkpoint is written atomically after every epoch (rank 0 only). A NaN
    or infinite loss raises ``NonFiniteLossError`` and leaves the checkpoint of
    the last good epoch in place. ``after_epoch(trainer, epoch, metrics_row)``
    runs after each epoch's checkpoint is written and ``after_step(trainer,
    epoch, step)`` after each step (tests use them to kill the process).
    """
    if threads:
        torch.set_num_threads(threads)
    if dist is None:
        dist = _init_distributed()
    trainer = Trainer(config, data=data, dist=dist, device=device, progress=progress)
    is_main = trainer.rank == 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    metrics: list[dict] = []
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, trainer.hash)
        trainer.load_state(state)
        metrics = list(state["metrics"])
        if progress and is_main:
            print(f"resuming {trainer.hash} from {checkpoint} after epoch {state['epoch']}")

    while not stop_reached(config, metrics)[0]:
        epoch = len(metrics) + 1
        lr = trainer.schedule.lr
        try:
            row = trainer.run_epoch(epoch, progress=progress and is_main, after_step=after_step)
        except _NonFinite as bad:
            kept = checkpoint if checkpoint is not None and checkpoint.exists() else None
            raise NonFiniteLossError(
                f"training loss became {bad.value} at epoch {bad.epoch}, step {bad.step} (lr {lr:g}); "
                f"run {trainer.hash} stopped. "
                + (f"The last good checkpoint (after epoch {epoch - 1}) is kept at {kept}. " if kept else "")
                + "Try a smaller learning rate.", bad.epoch, bad.step, kept) from None
        val = trainer.evaluate()
        row = {"epoch": epoch, "lr": lr, "train_loss": row["train_loss"], "train_error": row["train_error"],
               "val_loss": val["loss"], "val_top1": val["top1"], "val_top5": val["top5"],
               "seconds": row["seconds"], "images_per_s": row["images"] / max(row["seconds"], 1e-9)}
        if trainer.train_eval_split is not None:  # test-mode error on training images (overfitting gap)
            seen = trainer.evaluate(trainer.train_eval_split)
            row.update(train_eval_top1=seen["top1"], train_eval_top5=seen["top5"])
        trainer.schedule.step(epoch, val["top1"])
        metrics.append(row)
        if progress and is_main:
            _print_row(row)
        if checkpoint is not None and is_main:
            save_checkpoint(checkpoint, trainer.checkpoint_state(epoch, metrics))
        if after_epoch is not None:
            after_epoch(trainer, epoch, row)

    began = time.perf_counter()
    final = trainer.evaluate()
    summary = {"val_top1": final["top1"], "val_top5": final["top5"], "val_loss": final["loss"]}
    result = final["result"]
    if config.ten_crop:
        ten = trainer.evaluate(ten_crop=True)
        summary.update(ten_crop_top1=ten["top1"], ten_crop_top5=ten["top5"])
        result = ten["result"]
    artifacts = trainer.artifacts(result) if is_main else {}
    if config.save_val_topk > 0 and is_main:
        artifacts.update(topk_artifacts((ten if config.ten_crop else final)["probs"], config.save_val_topk,
                                        trainer.val_split.labels.numpy()))
    _, reached = stop_reached(config, metrics)
    summary.update(
        config_hash=trainer.hash, epochs=len(metrics),
        final_lr=trainer.schedule.lr, lr_drops=trainer.schedule.drops,
        best_val_top1=min((m["val_top1"] for m in metrics), default=None),
        final_train_error=metrics[-1]["train_error"] if metrics else None,
        train_error_reached_epoch=reached,
        train_seconds=sum(m["seconds"] for m in metrics),
        wall_seconds=sum(m["seconds"] for m in metrics) + time.perf_counter() - began,
        train_images=len(trainer.train_split), val_images=len(trainer.val_split),
        classes=len(trainer.train_split.classes),
        parameters=sum(p.numel() for p in trainer.module.parameters()),
        precision=config.precision, channels_last=config.channels_last, world_size=trainer.world,
        **environment(trainer.device),
    )
    return TrainResult(config, trainer.hash, trainer.module, metrics, summary, artifacts, checkpoint)


def topk_artifacts(probs: np.ndarray, k: int, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The ``k`` largest softmax outputs per image (classes int16, values float16) and the labels.

    Enough to average members into an ensemble (``ensemble_from_topk``) at a
    few hundred kB a run instead of the full [N, classes] matrix.
    """
    probs = torch.from_numpy(np.asarray(probs, dtype=np.float32))
    top = probs.topk(min(int(k), probs.shape[1]), dim=1)
    return {"val_topk_classes": top.indices.numpy().astype(np.int16),
            "val_topk_probs": top.values.numpy().astype(np.float16),
            "val_labels": np.asarray(labels).astype(np.int16)}


def _init_distributed():
    """parallel.init_distributed() when torchrun launched us, else None (one process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from replication import parallel

    info = parallel.init_distributed()
    return info if info.world_size > 1 else None


def _print_row(row: dict) -> None:
    from tqdm.auto import tqdm

    tqdm.write(f"epoch {row['epoch']:3d}  lr {row['lr']:.0e}  train loss {row['train_loss']:.3f} "
               f"err {row['train_error']:.3f}  val top-1 {row['val_top1']:.3f} top-5 {row['val_top5']:.3f}  "
               f"{row['seconds']:.1f}s {row['images_per_s']:.0f} img/s")


# --------------------------------------------------------------------------
# Command line: python -m replication train ...
# --------------------------------------------------------------------------


def _optional(kind):
    def parse(text: str):
        return None if text.lower() in {"none", "null", ""} else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.replace(",", " ").split())


def _mapping(text: str) -> dict:
    import yaml

    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping such as '{{arch: fig1}}', got {text!r}")
    return value


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (defaults shown), plus --config FILE.yaml and run options."""
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="read config fields from a YAML mapping; flags given here override it (default: none)")
    group = parser.add_argument_group("config fields (they decide the run's hash)")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{FIELD_HELP[f.name]} (default: {shown if shown != '' else 'none'})".replace("%", "%%")
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
            continue
        kind = {"model": _mapping, "lr_drop_epochs": _int_list}.get(f.name)
        if kind is None:
            annotation = str(f.type)
            base = float if "float" in annotation else int if "int" in annotation else str
            kind = _optional(base) if "None" in annotation else base
        choices = CHOICES.get(f.name)
        group.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, help=help_text,
                           choices=choices, metavar="{" + ",".join(choices) + "}" if choices else f.name.upper())
    run = parser.add_argument_group("how to run (does not change the hash)")
    run.add_argument("--threads", type=int, default=os.cpu_count(),
                     help=f"torch threads (default: os.cpu_count() = {os.cpu_count()})")
    run.add_argument("--device", default=None,
                     help="'cpu', 'cuda', 'cuda:1' ... (default: the GPU when there is one, else the CPU)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars (default: show them)")
    run.add_argument("--print-config", action="store_true",
                     help="print the full config and its hash, then exit without training (default: off)")
    run.add_argument("--no-store", action="store_true",
                     help="train without writing runs/<hash>/ (checkpoints still go to the cache) (default: off)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict = {}
    if getattr(args, "config", None):
        import yaml

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"{args.config}: expected a YAML mapping of config fields")
        values.update(loaded)
    for f in fields(TrainConfig):
        if hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    try:
        return TrainConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"invalid config: {error}") from None


def cli_main(args: argparse.Namespace) -> int:
    from replication import runs

    config = config_from_args(args)
    digest = config_hash(config)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
        print(f"# hash {digest}; differs from the defaults in: {sorted(config_diff(config)) or 'nothing'}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"run {digest} ({config.precision}, {torch.get_num_threads()} threads)")
    try:
        if args.no_store:
            result = train(config, checkpoint=runs.checkpoint_path(config), progress=not args.no_progress,
                           device=args.device)
            summary = result.summary
        else:
            run = runs.get(config, progress=not args.no_progress, device=args.device)
            summary = run.summary
            if run.path is not None:  # under torchrun only rank 0 stores the run
                print(f"stored in {run.path}")
    except (NonFiniteLossError, CheckpointError, runs.RunNotStoredError) as error:
        print(f"error: {error}")
        return 1
    print(f"val top-1 error {summary['val_top1']:.4f}  top-5 {summary['val_top5']:.4f}  "
          f"epochs {summary['epochs']}  {summary['train_seconds']:.0f} s training")
    return 0
