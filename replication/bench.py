"""Training speed on this machine: the engine against the plain PyTorch recipe.

Trains the Fig. 1 four-layer CIFAR-10 net for a fixed number of steps in
several ways, in one process:

1. the plain PyTorch recipe: torchvision transforms on PIL images
   (``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``), a ``DataLoader``
   with worker processes, fp32, NCHW, ``torch.optim.SGD``;
2. this package's engine (``replication.train.Trainer``): uint8 images in
   memory, a whole batch indexed, flipped and mean-subtracted with tensor ops,
   channels_last, the chosen precision, the paper's SGD;
3. the model-only ceiling: the engine's model, layout and precision on random
   tensors, no data path at all;
4. briefly, the model only in the other precision (fp32 <-> bf16), to show
   what bfloat16 gains or costs on this CPU.

The settings are timed in interleaved rounds so that load from other users of
a shared machine falls on all of them alike. It prints images/s for each and
their ratio to the plain recipe. Both
training paths do the same work per image (a random flip and a
normalisation), so the ratio measures the data path, the memory layout and
the precision, not a difference in augmentation.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replication.train import (PaperSGD, Split, TrainConfig, Trainer, autocast, bf16_is_native, cpu_model,
                               synthetic_split)


@dataclass
class Measurement:
    name: str
    precision: str
    layout: str
    images_per_s: float
    seconds: float
    steps: int


def load_cifar(dataset: str, train_images: int | None) -> Split:
    """The training split as uint8 NHWC in memory (or synthetic images of the same shape)."""
    if dataset == "synthetic":
        split = synthetic_split("train", per_class=max(1, (train_images or 5000) // 10))
    else:
        from replication import data

        split = Split.from_image_split(data.load_split(dataset, "train"))
    if train_images is not None and train_images < len(split):
        keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:train_images]
        split = Split(split.images[keep].contiguous(), split.labels[keep], split.classes, split.class_names,
                      split.name, split.split)
    return split


class PlainRecipe:
    """The textbook recipe: PIL images, torchvision transforms, DataLoader, fp32, NCHW, torch.optim.SGD."""

    precision, layout = "fp32", "NCHW"

    def __init__(self, split: Split, batch: int, workers: int, seed: int):
        import torchvision.transforms as T
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset

        from replication import models

        images, labels = split.images.numpy(), split.labels.numpy()
        mean = (images.reshape(-1, 3).mean(0) / 255).tolist()
        std = (images.reshape(-1, 3).std(0) / 255).tolist()

        class PILImages(Dataset):  # like torchvision.datasets.CIFAR10: Image.fromarray per item
            transform = T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])

            def __len__(self):
                return len(labels)

            def __getitem__(self, i):
                return self.transform(Image.fromarray(images[i])), int(labels[i])

        torch.manual_seed(seed)
        self.name = f"plain recipe (PIL + torchvision transforms, DataLoader {workers} workers)"
        self.batch = batch
        self.model = models.build_model({"arch": "fig1"})
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


def engine_config(precision: str, channels_last: bool, batch: int) -> TrainConfig:
    """Fig. 1 net with the same per-image work as the plain recipe: flip + mean subtraction."""
    return TrainConfig(model={"arch": "fig1"}, dataset="bench", flip=True, lighting_std=0.0, crop=None,
                       batch_size=batch, precision=precision, channels_last=channels_last, schedule="constant")


class Engine:
    """replication.train.Trainer.run_epoch on uint8 images in memory (exactly the training code)."""

    name = "this engine (uint8 in memory, batch augmentation)"

    def __init__(self, split: Split, batch: int, precision: str, channels_last: bool):
        config = engine_config(precision, channels_last, batch)
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
    """The same model and update on one random batch: the ceiling for any data path."""

    name = "model only (random tensors, no data path)"

    def __init__(self, batch: int, precision: str, channels_last: bool, seed: int):
        from replication import models

        torch.manual_seed(seed)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = models.build_model({"arch": "fig1"}).to(memory_format=memory_format)
        self.optimizer = PaperSGD(self.model.parameters(), lr=0.01)
        self.x = (torch.randn(batch, 3, 32, 32) * 60).contiguous(memory_format=memory_format)
        self.y = torch.randint(0, 10, (batch,))
        self.precision, self.layout, self.batch = precision, "channels_last" if channels_last else "NCHW", batch

    def run(self, steps: int) -> float:
        began = time.perf_counter()
        for _ in range(steps):
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
        setup.run(warmup)
    seconds = [0.0] * len(setups)
    done = [0] * len(setups)
    chunks = [steps // rounds + (1 if r < steps % rounds else 0) for r in range(rounds)]
    for chunk in chunks:
        for i, setup in enumerate(setups):
            if chunk:
                seconds[i] += setup.run(chunk)
                done[i] += chunk
    out = []
    for setup, s, n in zip(setups, seconds, done):
        out.append(Measurement(setup.name, setup.precision, setup.layout, setup.batch * n / max(s, 1e-9), s, n))
        setup.close()
    return out


def format_table(rows: list[Measurement], baseline: Measurement) -> str:
    lines = [f"{'setting':<66} {'precision':<9} {'layout':<13} {'images/s':>9} {'vs plain':>9}"]
    for row in rows:
        ratio = row.images_per_s / baseline.images_per_s
        lines.append(f"{row.name:<66} {row.precision:<9} {row.layout:<13} {row.images_per_s:>9.0f} {ratio:>8.2f}x")
    return "\n".join(lines)


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="cifar10-jpeg",
                        help="training images: a dataset name or 'synthetic' (no mirror needed) (default: cifar10-jpeg)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per setting (default: 100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="interleaved rounds the timed steps are split into (default: 4; --quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run (20 timed steps, 2 warm-up, 10,000 training images), under 2 minutes")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128, Section 5)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the engine's precision; 'auto' = bf16 where the CPU has native bf16 kernels, "
                             "else fp32 (default: auto)")
    parser.add_argument("--no-channels-last", action="store_true", help="engine in NCHW (default: channels_last)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers of the plain recipe (default: 2, the PyTorch CIFAR-10 tutorial's)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="use this many training images (default: all; --quick: 10000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help=f"torch threads (default: os.cpu_count() = {os.cpu_count()})")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON (default: no)")


def cli_main(args: argparse.Namespace) -> int:
    steps, warmup, train_images = args.steps, args.warmup, args.train_images
    if args.quick:
        steps, warmup = min(steps, 20), min(warmup, 2)
        args.rounds = min(args.rounds, 2)
        train_images = train_images or 10000
    torch.set_num_threads(args.threads)
    native = bf16_is_native()
    precision = args.precision if args.precision != "auto" else ("bf16" if native else "fp32")
    channels_last = not args.no_channels_last
    split = load_cifar(args.dataset, train_images)
    print(f"Fig. 1 net, {args.dataset} ({len(split)} training images), batch {args.batch_size}, "
          f"{steps} timed steps after {warmup} warm-up, in {args.rounds} interleaved rounds; "
          f"{torch.get_num_threads()} threads on "
          f"{cpu_model()} ({os.cpu_count()} CPUs); native bf16: {'yes' if native else 'no'}; "
          f"load average {os.getloadavg()[0]:.1f}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
          flush=True)
    setups = [PlainRecipe(split, args.batch_size, args.workers, args.seed),
              Engine(split, args.batch_size, precision, channels_last),
              ModelOnly(args.batch_size, precision, channels_last, args.seed)]
    rows = measure(setups, steps, warmup, max(1, min(args.rounds, steps)))
    # the other precision, model only, briefly: shows what bf16 costs or gains on this CPU
    other = "fp32" if precision == "bf16" else "bf16"
    rows += measure([ModelOnly(args.batch_size, other, channels_last, args.seed)], max(1, steps // 10), 1, 1)
    plain, engine = rows[0], rows[1]
    print(format_table(rows, plain))
    ratio = engine.images_per_s / plain.images_per_s
    print(f"engine / plain recipe: {ratio:.2f}x (target 3x){'' if ratio >= 3 else '  -- below target'}")
    if not native:
        print("note: this CPU has no native bfloat16 kernels (no AVX-512 BF16/AMX): bf16 autocast is emulated "
              "and much slower than fp32 here, so 'auto' picks fp32.")
    if torch.get_num_threads() > 1 and os.getloadavg()[0] > os.cpu_count() / 2 and "OMP_WAIT_POLICY" not in os.environ:
        print("note: the machine is busy; spinning OpenMP threads then slow every setting down (2x measured "
              "here). Rerun with OMP_WAIT_POLICY=PASSIVE (set before Python starts) or --threads 1.")
    if args.json:
        import json

        record = {"rows": [r.__dict__ for r in rows], "engine_over_plain": ratio, "cpu": cpu_model(),
                  "threads": torch.get_num_threads(), "native_bf16": native, "dataset": args.dataset,
                  "load_average": os.getloadavg()[0], "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                  "torch": torch.__version__}
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1)
    return 0
