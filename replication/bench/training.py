"""Part 1 of `python -m replication bench`: the engine against the plain PyTorch recipe, per model family.

Also the timing machinery the other parts share: the model-only setting, interleaved
measurement, the load average and the thread choice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from replication import data, models
from replication.data.splits import Split, synthetic_split
from replication.engine.config import TrainConfig
from replication.engine.optim import PaperSGD
from replication.engine.trainer import Trainer, autocast

SECTIONS = ("fig1", "tiny", "imagenette", "paper", "data", "protocol")


@dataclass
class Measurement:
    name: str
    precision: str
    layout: str
    images_per_s: float
    seconds: float
    steps: int
    batch: int = 0


@dataclass(frozen=True)
class Family:
    """One engine-vs-plain comparison: a model family on its dataset."""

    key: str
    title: str
    dataset: str
    model: dict
    crop: int | None  # random crop side (None: the full image, no crop)
    quick_batch: int  # batch in --quick (the full run uses --batch-size)
    quick_images: int  # training images kept in --quick
    steps_scale: float = 1.0  # fraction of --steps this family times (the AlexNets are slow here)
    classes: int = 10
    size: int = 32


FAMILIES = {
    "fig1": Family("fig1", "Fig. 1 CIFAR-10 net", "cifar10-jpeg", {"arch": "fig1"}, None, 128, 10000, 1.0),
    "tiny": Family("tiny", "Tiny ImageNet AlexNet (full width, 28 px crops of 32 px)", "tiny-imagenet-200",
                   {"arch": "alexnet"}, 28, 32, 4096, 0.1, classes=200, size=32),
    "imagenette": Family("imagenette", "Imagenette AlexNet (full width, 112 px crops of 128 px)", "imagenette2-128",
                         {"arch": "alexnet"}, 112, 32, 2048, 0.1, classes=10, size=128),
}


def load_training_split(dataset: str, train_images: int | None, family: Family | None = None) -> Split:
    """The training split as uint8 NHWC in memory (or synthetic images of the family's shape)."""
    if dataset == "synthetic":
        family = family or FAMILIES["fig1"]
        per_class = max(1, (train_images or 5000) // family.classes)
        split = synthetic_split("train", per_class=per_class, size=family.size, classes=family.classes)
    else:
        split = Split.from_image_split(data.load_split(dataset, "train", progress=False))
    if train_images is not None and train_images < len(split):
        keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:train_images]
        split = Split(split.images[keep].contiguous(), split.labels[keep], split.classes, split.class_names,
                      split.name, split.split)
    return split


load_cifar = load_training_split  # the earlier name


def family_spec(family: Family, split: Split) -> dict:
    spec = dict(family.model)
    if spec.get("arch") == "alexnet":
        spec.setdefault("num_classes", len(split.classes))
        spec.setdefault("input_size", family.crop or split.images.shape[1])
    return spec


class PlainRecipe:
    """The textbook recipe: PIL images, torchvision transforms, DataLoader, fp32, NCHW, torch.optim.SGD."""

    precision, layout = "fp32", "NCHW"

    def __init__(self, split: Split, batch: int, workers: int, seed: int, family: Family | None = None):
        import torchvision.transforms as T  # lazily: torchvision takes seconds to import (every command's start-up)

        family = family or FAMILIES["fig1"]
        images, labels = split.images.numpy(), split.labels.numpy()
        pixels = split.images[:4096].reshape(-1, 3).double()
        mean, std = (pixels.mean(0) / 255).tolist(), (pixels.std(0) / 255).tolist()
        steps = [T.RandomCrop(family.crop)] if family.crop else []
        transform = T.Compose(steps + [T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])

        class PILImages(Dataset):  # like torchvision.datasets.CIFAR10: Image.fromarray per item
            def __len__(self):
                return len(labels)

            def __getitem__(self, i):
                return transform(Image.fromarray(images[i])), int(labels[i])

        torch.manual_seed(seed)
        self.name = f"plain recipe (PIL + torchvision, DataLoader {workers} workers)"
        self.batch = batch
        self.model = models.build_model(family_spec(family, split))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        self.loader = DataLoader(PILImages(), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                 persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))
        self.batches = iter(self.loader)

    def _next(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def run(self, steps: int) -> float:
        """Train ``steps`` steps; seconds taken (the loader's time included: it is part of the recipe)."""
        began = time.perf_counter()
        for _ in range(steps):
            x, y = self._next()
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss.item()
        return time.perf_counter() - began

    def close(self):
        del self.batches, self.loader  # stops the worker processes


def engine_config(precision: str, channels_last: bool, batch: int, family: Family | None = None) -> TrainConfig:
    """The family's model with the same per-image work as the plain recipe: crop, flip, mean subtraction."""
    family = family or FAMILIES["fig1"]
    return TrainConfig(model=dict(family.model), dataset="bench", flip=True, lighting_std=0.0, crop=family.crop,
                       batch_size=batch, precision=precision, channels_last=channels_last, schedule="constant")


class Engine:
    """replication.engine.trainer.Trainer.run_epoch on uint8 images in memory (exactly the training code)."""

    name = "this engine (uint8 in memory, batch augmentation)"

    def __init__(self, split: Split, batch: int, precision: str, channels_last: bool, family: Family | None = None):
        config = engine_config(precision, channels_last, batch, family)
        val = Split(split.images[:batch], split.labels[:batch], split.classes, split.class_names)
        self.trainer = Trainer(config, data=(split, val), device="cpu")
        self.precision, self.layout = precision, "channels_last" if channels_last else "NCHW"
        self.batch, self.epoch = batch, 0

    def run(self, steps: int) -> float:
        self.epoch += 1  # each chunk is the start of a fresh (shuffled) epoch
        return self.trainer.run_epoch(self.epoch, max_steps=steps)["seconds"]

    def close(self):
        pass


class ModelOnly:
    """The same model and update on one random batch: the ceiling for any data path.

    ``train=False`` times inference instead (eval mode, no autograd).
    """

    def __init__(self, batch: int, precision: str, channels_last: bool, seed: int, spec: dict | None = None,
                 size: int = 32, classes: int = 10, train: bool = True, name: str | None = None):
        torch.manual_seed(seed)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = models.build_model(spec or {"arch": "fig1"}).to(memory_format=memory_format)
        self.model.train(train)
        self.optimizer = PaperSGD(self.model.parameters(), lr=0.01)
        self.x = (torch.randn(batch, 3, size, size) * 60).contiguous(memory_format=memory_format)
        self.y = torch.randint(0, classes, (batch,))
        self.train = train
        self.name = name or ("model only (random tensors, no data path)" if train else "model only, inference")
        self.precision, self.layout, self.batch = precision, "channels_last" if channels_last else "NCHW", batch

    def run(self, steps: int) -> float:
        began = time.perf_counter()
        for _ in range(steps):
            if not self.train:
                with torch.inference_mode(), autocast(self.precision):
                    self.model(self.x).float().sum().item()
                continue
            with autocast(self.precision):
                logits = self.model(self.x)
            loss = F.cross_entropy(logits.float(), self.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss.item()
        return time.perf_counter() - began

    def close(self):
        pass


def measure(setups: list, steps: int, warmup: int, rounds: int) -> list[Measurement]:
    """Warm each setting up, then time them in interleaved rounds.

    Interleaving spreads a change in machine load (other users of a shared
    machine) evenly over the settings, so their ratio stays meaningful.
    """
    for setup in setups:
        if warmup:
            setup.run(warmup)
    seconds = [0.0] * len(setups)
    done = [0] * len(setups)
    rounds = max(1, min(rounds, steps))
    chunks = [steps // rounds + (1 if r < steps % rounds else 0) for r in range(rounds)]
    for chunk in chunks:
        for i, setup in enumerate(setups):
            if chunk:
                seconds[i] += setup.run(chunk)
                done[i] += chunk
    out = []
    for setup, s, n in zip(setups, seconds, done):
        out.append(Measurement(setup.name, setup.precision, setup.layout, setup.batch * n / max(s, 1e-9), s, n,
                               setup.batch))
        setup.close()
    return out


def format_table(rows: list[Measurement], baseline: Measurement) -> str:
    lines = [f"{'setting':<60} {'precision':<9} {'layout':<13} {'batch':>5} {'images/s':>9} {'vs plain':>9}"]
    for row in rows:
        ratio = row.images_per_s / baseline.images_per_s
        lines.append(f"{row.name:<60} {row.precision:<9} {row.layout:<13} {row.batch:>5} {row.images_per_s:>9.1f} "
                     f"{ratio:>8.2f}x")
    return "\n".join(lines)


def auto_threads() -> int:
    """Threads for this run: the CPUs not already busy (1-minute load average), between 1 and os.cpu_count().

    OpenMP's threads wait for each other at every op; when another process
    holds one of two cores, the second thread makes everything slower (the
    Fig. 1 net: 227 images/s with 2 threads against 515 with 1, measured here).
    """
    cpus = os.cpu_count() or 1
    return max(1, min(cpus, cpus - int(os.getloadavg()[0] + 0.5)))


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"

# --------------------------------------------------------------------------
# 1. engine vs plain recipe, per family
# --------------------------------------------------------------------------


@dataclass
class Comparison:
    family: str
    title: str
    batch: int
    rows: list[Measurement]
    load_before: str
    load_after: str

    @property
    def ratio(self) -> float:
        return self.rows[1].images_per_s / self.rows[0].images_per_s

    @property
    def ceiling(self) -> float:
        return self.rows[2].images_per_s / self.rows[0].images_per_s


def compare_family(family: Family, args, precision: str, channels_last: bool) -> Comparison:
    batch = min(args.batch_size, family.quick_batch) if args.quick else args.batch_size
    images = args.train_images or (family.quick_images if args.quick else None)
    dataset = args.dataset if args.dataset == "synthetic" else family.dataset
    split = load_training_split(dataset, images, family)
    steps = max(1, round(args.steps * family.steps_scale))
    warmup = args.warmup if family.key == "fig1" else max(1, min(args.warmup, 2, steps))
    spec = family_spec(family, split)
    size = family.crop or split.images.shape[1]
    print(f"\n[{family.key}] {family.title}: {dataset}, {len(split)} training images {tuple(split.images.shape[1:])}, "
          f"batch {batch}, {steps} timed steps after {warmup} warm-up in {min(args.rounds, steps)} rounds; "
          f"load average {load_average()}", flush=True)
    before = load_average()
    setups = [PlainRecipe(split, batch, args.workers, args.seed, family),
              Engine(split, batch, precision, channels_last, family),
              ModelOnly(batch, precision, channels_last, args.seed, spec, size, len(split.classes))]
    if args.lrn_rows and "lrn" not in spec and spec.get("arch") == "alexnet":  # interleaved with the rest
        setups.append(ModelOnly(batch, precision, channels_last, args.seed, {**spec, "lrn": None}, size,
                                len(split.classes), name="model only, LRN removed (its cost)"))
    rows = measure(setups, steps, warmup, args.rounds)
    result = Comparison(family.key, family.title, batch, rows, before, load_average())
    print(format_table(rows, rows[0]))
    print(f"engine / plain: {result.ratio:.2f}x   model-only ceiling / plain: {result.ceiling:.2f}x   "
          f"(load average {result.load_after})", flush=True)
    return result
