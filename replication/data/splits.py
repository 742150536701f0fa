"""The training and validation splits a run reads (Section 2), in memory or streamed.

``Split``: small images (CIFAR-10, Tiny ImageNet, Imagenette) held in memory as
one uint8 NHWC tensor, decoded once by ``data.cache`` and augmented a batch at a
time, with no decoding in the training loop. ``StreamSplit``: ImageNet-size data
decoded from the files every epoch by DataLoader workers, then augmented by the
same ``BatchAugmenter`` as the in-memory path, so the number of workers does not
change what is computed. ``synthetic_split``: class-coloured random images for
tests and benchmarks that need no dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from replication.data import augment
from replication.data.cache import (FileDataset, fit_square, list_split, load_split, per_class_indices,
                                    subset_per_class)
from replication.data.registry import DataError, get_spec
from replication.paths import atomic_file

if TYPE_CHECKING:  # a type only: data sits below engine and imports nothing from it
    from replication.engine.config import TrainConfig


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
    train, val = load_image_splits(config, progress)
    return Split.from_image_split(train), Split.from_image_split(val)


def load_image_splits(config: TrainConfig, progress: bool = False):
    """``load_data``'s two splits as ``ImageSplit``s, before they are copied into memory: the
    decoded caches memory-mapped (the per-class subsets and a held-out part are copies), the
    validation labels in the training split's class numbering. Row ``i`` here is row ``i`` of
    ``load_data``'s splits, so stored indices (Fig. 4's neighbours) can read a few images
    without loading whole splits. Cached datasets only (not ``synthetic``, not ``stream``)."""
    def load(split_name: str):
        return load_split(config.dataset, split_name, size=config.image_size, progress=progress,
                          variant=config.data_variant)

    train = load("train")
    if config.holdout_per_class:  # tuning: validate on training images; the val split is not read
        train, val = hold_out(train, config.holdout_per_class, config.subset_seed)
    else:
        val = load("val")
    if config.train_per_class is not None:
        train = subset_per_class(train, config.train_per_class, seed=config.subset_seed)
    if config.val_per_class is not None:
        val = subset_per_class(val, config.val_per_class, seed=config.subset_seed)
    labels = in_train_numbering(train.classes, val.classes, np.asarray(val.labels), f"{config.dataset} validation")
    val = replace(val, labels=np.asarray(labels, dtype=np.int64), classes=list(train.classes),
                  class_names=list(train.class_names))
    return train, val


def hold_out(split, per_class: int, seed: int):
    """``(rest, held_out)``: ``per_class`` images of every class drawn out of ``split`` (by ``seed``),
    and the others. A recipe tuned on ``held_out`` has never seen the validation split."""
    index = per_class_indices(
        np.asarray(split.labels), per_class, seed + 104_729,  # a stream apart from subset_per_class's
        describe=lambda label: f"class {label} ({split.class_names[label]!r}) of {split.name}/train")
    keep = np.ones(len(split.labels), dtype=bool)
    keep[index] = False
    rest = np.flatnonzero(keep)
    if not len(rest):
        raise DataError(f"holdout_per_class={per_class} leaves no training images in {split.name}")
    take = lambda rows, name: replace(split, images=np.ascontiguousarray(split.images[rows]),  # noqa: E731
                                      labels=np.asarray(split.labels)[rows].copy(), split=name)
    return take(rest, "train"), take(index, "holdout")


def in_train_numbering(train_classes, val_classes, val_labels: np.ndarray, where: str) -> np.ndarray:
    """Validation labels renumbered by class *name* into the training split's class order.

    Each split numbers its classes from its own folder list, so a validation folder that
    lacks a class would otherwise shift every later label onto the wrong class. A class
    that occurs in validation but not in training is an error.
    """
    if list(val_classes) == list(train_classes):
        return np.asarray(val_labels)
    index = {name: i for i, name in enumerate(train_classes)}
    present = sorted({int(label) for label in np.asarray(val_labels)})
    missing = [val_classes[label] for label in present if val_classes[label] not in index]
    if missing:
        raise DataError(f"{where}: classes {missing[:5]}{' ...' if len(missing) > 5 else ''} have images but "
                        f"are not among the {len(train_classes)} training classes; a validation class needs "
                        "training images of the same name (folder)")
    table = np.asarray([index.get(name, -1) for name in val_classes], dtype=np.int64)
    return table[np.asarray(val_labels)]


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


class _SquareUint8:
    """PIL RGB image -> Section 2's square (``data.cache.fit_square``) -> uint8 tensor [3, size, size]."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image):
        return torch.from_numpy(np.ascontiguousarray(fit_square(image, self.size).transpose(2, 0, 1)))


def stream_data(config: TrainConfig) -> tuple[StreamSplit, StreamSplit]:
    """The training and validation splits as ``StreamSplit``s (files listed once, decoded per epoch)."""
    size = config.image_size or get_spec(config.dataset).variants[0].size
    splits = []
    for split_name, per_class in (("train", config.train_per_class), ("val", config.val_per_class)):
        listing = list_split(config.dataset, split_name, variant=config.data_variant)
        if splits:  # the validation files, labelled in the training split's class order
            train = splits[0]
            listing = replace(listing, classes=list(train.classes), class_names=list(train.class_names),
                              labels=in_train_numbering(train.classes, listing.classes, listing.labels,
                                                        f"{config.dataset} validation"))
        split = StreamSplit(FileDataset(listing, _SquareUint8(size)), listing.labels, listing.classes,
                            listing.class_names, size, config.dataset, split_name)
        if per_class is not None:
            split = split.subset(per_class_indices(split.labels.numpy(), per_class, config.subset_seed))
        splits.append(split)
    return splits[0], splits[1]


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


