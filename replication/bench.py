"""Training and data-path speed on this machine: the engine against the plain PyTorch recipe.

Four parts, each timed in one process with its settings interleaved in rounds,
so that load from other users of a shared machine falls on all settings alike
and cancels in their ratios:

1. ``fig1``, ``tiny``, ``imagenette``: the Fig. 1 CIFAR-10 net, the Tiny
   ImageNet AlexNet family (28 px crops of the 32 px images, 200 classes) and
   the Imagenette family (112 px crops of 128 px, 10 classes), each trained
   three ways:

   - the plain PyTorch recipe: PIL images through torchvision transforms
     (``RandomCrop`` where the family crops, ``RandomHorizontalFlip``,
     ``ToTensor``, ``Normalize``), a ``DataLoader`` with worker processes,
     fp32, NCHW, ``torch.optim.SGD``;
   - this package's engine (``replication.engine.trainer.Trainer.run_epoch``): uint8
     images in memory, a whole batch cropped, flipped and mean-subtracted with
     tensor ops, channels_last, the chosen precision, the paper's SGD;
   - the model-only ceiling: the engine's model, layout and precision on one
     random batch, no data path at all. ``engine / plain`` can approach
     ``ceiling / plain`` but not pass it.

   Both training paths do the same work per image (crop, flip, normalisation;
   no lighting), so the ratio measures the data path, the memory layout and
   the precision, not a difference in augmentation.

2. ``paper``: the paper's AlexNet (two towers, 227 px, 1000 classes) on random
   tensors: training and inference images/s in fp32 and bf16, the FLOP/s this
   achieves, and its fraction of the CPU's fp32 peak, computed as
   ``physical cores used x clock x FLOPs per cycle per core`` with FLOPs per
   cycle = FMA units (2) x fp32 lanes (8 for AVX2, 16 for AVX-512) x 2
   (multiply and add). FLOPs are counted from the conv and linear layers'
   shapes (2 per multiply-add); a training step counts 3x the forward.

3. ``data``: the decode-once cache build (a dataset's JPEGs decoded into a
   uint8 ``.npy`` in a scratch data root, as ``data.load_split`` does on first
   use), and batches/s of Section 4.1's augmentation (random crop, flip, PCA
   lighting, mean subtraction) on whole uint8 batches against the torchvision
   transforms path (PIL, per image, then collated), both in this process.

``--quick`` shortens everything (under two minutes on the project's 2-core
CPU); the numbers then carry more noise but the table has the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from replication.engine.config import TrainConfig
from replication.engine.optim import PaperSGD
from replication.engine.trainer import autocast, Trainer
from replication.provenance import bf16_is_native, cpu_model
from replication.data.splits import Split, synthetic_split

SECTIONS = ("fig1", "tiny", "imagenette", "paper", "data")


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
        from replication import data

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
        import torchvision.transforms as T
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset

        from replication import models

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
        from replication import models

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


# --------------------------------------------------------------------------
# 2. the paper's AlexNet at 227: FLOP/s against the CPU's peak
# --------------------------------------------------------------------------


def forward_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward pass per image: 2 per multiply-add of every conv, locally connected and linear layer."""
    from replication.models import LocallyConnected2d

    total = [0.0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total[0] += 2.0 * output.numel() * k
        elif isinstance(module, nn.Linear):
            total[0] += 2.0 * output.numel() * module.in_features
        elif isinstance(module, LocallyConnected2d):
            total[0] += 2.0 * output.numel() * inputs[0].shape[1] * module.kernel_size ** 2

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, LocallyConnected2d))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total[0] / x.shape[0]


@dataclass
class Peak:
    cores: int
    ghz: float
    lanes: int
    fma_units: int
    source: str

    @property
    def flops(self) -> float:
        return self.cores * self.ghz * 1e9 * self.fma_units * self.lanes * 2

    def describe(self) -> str:
        return (f"{self.cores} cores x {self.ghz:.2f} GHz x {self.fma_units} FMA units x {self.lanes} fp32 lanes x 2 "
                f"= {self.flops / 1e9:.0f} GFLOP/s fp32 ({self.source})")


def cpu_peak(threads: int, fma_units: int = 2) -> Peak:
    """This CPU's fp32 peak: physical cores used x clock x FMA units x SIMD lanes x 2 FLOPs per FMA."""
    flags, mhz, max_mhz, threads_per_core = set(), None, None, 1
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    try:
        import subprocess

        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        found = re.search(r"CPU max MHz:\s*([\d.]+)", lscpu)
        max_mhz = float(found.group(1)) if found else None
        found = re.search(r"Thread\(s\) per core:\s*(\d+)", lscpu)
        threads_per_core = int(found.group(1)) if found else 1
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "avx" in flags else 4
    units = fma_units if "fma" in flags or "avx512f" in flags else 1
    cores = max(1, min(threads, (os.cpu_count() or 1) // max(1, threads_per_core)))
    ghz = (max_mhz or mhz or 2000.0) / 1000
    source = ("lscpu max clock" if max_mhz else "/proc/cpuinfo clock, base or current (no max given)") + \
             f"; {'AVX-512' if lanes == 16 else 'AVX2' if lanes == 8 else 'SSE'}{'+FMA' if units > 1 else ''}"
    return Peak(cores, ghz, lanes, units, source)


def paper_throughput(args) -> dict:
    from replication import models

    batch = args.paper_batch or (4 if args.quick else 32)
    steps = 1 if args.quick else max(2, args.steps // 50)
    spec = {"arch": "alexnet"}  # two towers, 227 px, 1000 classes, LRN: the paper's net
    model = models.build_model(spec)
    flops = forward_flops(model, torch.randn(1, 3, 227, 227))
    del model
    peak = cpu_peak(torch.get_num_threads())
    print(f"\n[paper] the paper's AlexNet (two towers, 227 px, 1000 classes), channels_last, batch {batch}, "
          f"{steps} timed steps after 1 warm-up; forward {flops / 1e9:.2f} GFLOP per image (2 per multiply-add), "
          f"a training step counted as 3x; peak {peak.describe()}; load average {load_average()}", flush=True)
    rows = []
    for precision in ("fp32", "bf16"):
        for train in (True, False):
            setups = [ModelOnly(batch, precision, True, args.seed, spec, 227, 1000, train=train,
                                name=f"paper AlexNet 227, {'training' if train else 'inference'}")]
            rows += measure(setups, steps, 1, 1)
    out = []
    print(f"{'mode':<10} {'precision':<9} {'batch':>5} {'images/s':>9} {'GFLOP/s':>8} {'of fp32 peak':>12}")
    for row in rows:
        mode = "training" if "training" in row.name else "inference"
        achieved = row.images_per_s * flops * (3 if mode == "training" else 1)
        out.append({"mode": mode, "precision": row.precision, "batch": row.batch, "images_per_s": row.images_per_s,
                    "gflops": achieved / 1e9, "fraction_of_peak": achieved / peak.flops})
        print(f"{mode:<10} {row.precision:<9} {row.batch:>5} {row.images_per_s:>9.2f} {achieved / 1e9:>8.1f} "
              f"{achieved / peak.flops:>11.1%}", flush=True)
    print(f"(load average {load_average()})")
    return {"forward_gflop_per_image": flops / 1e9, "peak_gflops": peak.flops / 1e9, "peak": peak.describe(),
            "rows": out, "load_average": load_average()}


# --------------------------------------------------------------------------
# 3. the data path alone
# --------------------------------------------------------------------------


class _Lighting:
    """Section 4.1's PCA lighting as the usual per-image torchvision-style transform (fb.resnet.torch's port)."""

    def __init__(self, std, eigvals, eigvecs, scale_255: bool = True):
        self.std, self.eigvals, self.eigvecs = std, eigvals, eigvecs
        self.unit = 255.0 if scale_255 else 1.0

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.std
        shift = self.eigvecs @ (alpha * self.eigvals) / self.unit
        return image + shift.view(3, 1, 1)


def cache_build(dataset: str, split_name: str) -> dict | None:
    """Decode a split's JPEGs into a fresh cache in a scratch data root; seconds and images/s."""
    from replication import data

    try:
        existing = data.load_split(dataset, split_name, progress=False)
        spec = data.get_spec(dataset)
        variant = spec.variant(existing.variant)
    except Exception as error:  # noqa: BLE001 (a benchmark reports what it could not measure)
        print(f"  cache build: skipped ({error})")
        return None
    folder = next((place / variant.folder for place in [data.data_root()] + data.mirror_dirs()
                   if (place / variant.folder).is_dir()), None)
    if folder is None:
        print(f"  cache build: skipped (no extracted {variant.folder} folder)")
        return None
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as scratch:
        began = time.perf_counter()
        built = data.load_split(dataset, split_name, root=scratch, path=folder, variant=variant.id, progress=False)
        seconds = time.perf_counter() - began
    n = len(built)
    return {"dataset": dataset, "split": split_name, "images": n, "size": int(built.images.shape[1]),
            "seconds": seconds, "images_per_s": n / seconds}


def augmentation_rate(split: Split, crop: int, batch: int, batches: int, rounds: int) -> dict:
    """Batches/s of crop + flip + PCA lighting + mean subtraction: BatchAugmenter vs torchvision on PIL."""
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import default_collate

    from replication.data import augment

    stats = augment.compute_dataset_stats(split.images[:4096])
    engine = augment.BatchAugmenter(stats.mean_image, stats.eigvals, stats.eigvecs, crop=crop, flip=True,
                                    lighting_std=0.1, eigen_scale="sqrt", channels_last=True)
    mean_rgb = (stats.mean_image.mean((1, 2)) / 255).tolist()
    plain = T.Compose([T.RandomCrop(crop), T.RandomHorizontalFlip(), T.ToTensor(),
                       _Lighting(0.1, stats.eigvals.sqrt(), stats.eigvecs), T.Normalize(mean_rgb, [1 / 255] * 3)])
    images, numpy_images = split.images, split.images.numpy()
    rng = torch.Generator().manual_seed(0)

    def run_engine(n):
        began = time.perf_counter()
        for _ in range(n):
            index = torch.randint(0, len(images), (batch,), generator=rng)
            engine(images[index], rng)
        return time.perf_counter() - began

    def run_plain(n):
        began = time.perf_counter()
        for _ in range(n):
            index = torch.randint(0, len(images), (batch,), generator=rng).tolist()
            default_collate([(plain(Image.fromarray(numpy_images[i])), 0) for i in index])
        return time.perf_counter() - began

    run_engine(1), run_plain(1)
    seconds = {"engine": 0.0, "plain": 0.0}
    rounds = max(1, min(rounds, batches))
    for r in range(rounds):
        chunk = batches // rounds + (1 if r < batches % rounds else 0)
        seconds["engine"] += run_engine(chunk)
        seconds["plain"] += run_plain(chunk)
    engine_rate, plain_rate = batches / seconds["engine"], batches / seconds["plain"]
    return {"image_size": int(images.shape[1]), "crop": crop, "batch": batch, "engine_batches_per_s": engine_rate,
            "plain_batches_per_s": plain_rate, "ratio": engine_rate / plain_rate}


def data_path(args) -> dict:
    print(f"\n[data] the data path alone; load average {load_average()}", flush=True)
    builds = []
    targets = [("imagenette2-128", "val")] if args.quick else [("imagenette2-128", "train"), ("cifar10-jpeg", "train")]
    if args.dataset != "synthetic":
        for dataset, split_name in targets:
            result = cache_build(dataset, split_name)
            if result:
                builds.append(result)
                print(f"  decode-once cache build, {dataset} {split_name}: {result['images']} images at "
                      f"{result['size']} px in {result['seconds']:.1f} s ({result['images_per_s']:.0f} images/s, "
                      f"{os.cpu_count()} decode workers)", flush=True)
    batch = 128
    batches = 4 if args.quick else 20
    augments = []
    for family in (FAMILIES["tiny"], FAMILIES["imagenette"]):
        dataset = args.dataset if args.dataset == "synthetic" else family.dataset
        split = load_training_split(dataset, 2048, family)
        result = augmentation_rate(split, family.crop, min(batch, len(split)), batches, args.rounds)
        augments.append(result)
    print(f"  {'augmentation (crop, flip, PCA lighting, mean)':<48} {'batch':>5} {'engine b/s':>10} "
          f"{'torchvision b/s':>15} {'ratio':>7}")
    for a in augments:
        print(f"  {str(a['image_size']) + ' px -> ' + str(a['crop']) + ' px crops':<48} {a['batch']:>5} "
              f"{a['engine_batches_per_s']:>10.1f} {a['plain_batches_per_s']:>15.1f} {a['ratio']:>6.1f}x")
    print(f"  (one process each, {torch.get_num_threads()} torch threads; load average {load_average()})")
    return {"cache_builds": builds, "augmentation": augments, "load_average": load_average()}


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated parts to run, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--dataset", default="mirrors",
                        help="'mirrors' (each family's own dataset) or 'synthetic' (random images of the same "
                             "shapes; no mirror needed) (default: mirrors)")
    parser.add_argument("--steps", type=int, default=100,
                        help="timed steps per setting for the Fig. 1 net; the AlexNet families time a tenth, the "
                             "paper net a fiftieth (default: 100; --quick: 10)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5; --quick: 1)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="interleaved rounds the timed steps are split into (default: 4; --quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run (fewer steps, images and smaller AlexNet batches), under 2 minutes")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128, Section 5)")
    parser.add_argument("--paper-batch", type=int, default=None,
                        help="batch of the paper-net throughput runs (default: 32; --quick: 4)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the engine's precision; 'auto' = bf16 where the CPU has native bf16 kernels, "
                             "else fp32 (default: auto)")
    parser.add_argument("--no-channels-last", action="store_true", help="engine in NCHW (default: channels_last)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers of the plain recipe (default: 2, the PyTorch CIFAR-10 tutorial's)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="use this many training images (default: all; --quick: 10000 CIFAR-10, fewer for "
                             "the AlexNet families)")
    parser.add_argument("--lrn-rows", action="store_true",
                        help="also time each AlexNet family without LRN (model only), to show LRN's cost")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch threads (default: the CPUs not already busy at the start, from the 1-minute "
                             f"load average, at least 1, at most os.cpu_count() = {os.cpu_count()}: measured here, "
                             f"2 threads ran the Fig. 1 net at 0.44x the speed of 1 while another process held a core)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON (default: no)")


def cli_main(args: argparse.Namespace) -> int:
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"bench: unknown part(s) {unknown}; choose from {list(SECTIONS)}")
    if args.dataset not in ("mirrors", "synthetic"):  # the earlier option: a dataset name for the Fig. 1 net
        args.dataset = "mirrors"
    if args.quick:
        args.steps, args.warmup, args.rounds = min(args.steps, 10), min(args.warmup, 1), min(args.rounds, 2)
    began = time.perf_counter()
    torch.set_num_threads(args.threads or auto_threads())
    native = bf16_is_native()
    precision = args.precision if args.precision != "auto" else ("bf16" if native else "fp32")
    channels_last = not args.no_channels_last
    print(f"bench{' --quick' if args.quick else ''}: {torch.get_num_threads()} threads on {cpu_model()} "
          f"({os.cpu_count()} CPUs); native bf16: {'yes' if native else 'no'}; engine precision {precision}, "
          f"{'channels_last' if channels_last else 'NCHW'}; torch {torch.__version__}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average (1/5 min) {load_average()}",
          flush=True)
    record: dict = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "native_bf16": native,
                    "precision": precision, "torch": torch.__version__, "quick": bool(args.quick),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_start": load_average()}
    comparisons = []
    for key in ("fig1", "tiny", "imagenette"):
        if key in wanted:
            comparisons.append(compare_family(FAMILIES[key], args, precision, channels_last))
    if comparisons:
        record["comparisons"] = [{"family": c.family, "batch": c.batch, "engine_over_plain": c.ratio,
                                  "ceiling_over_plain": c.ceiling, "rows": [r.__dict__ for r in c.rows],
                                  "load_average": c.load_after} for c in comparisons]
    if "paper" in wanted:
        record["paper"] = paper_throughput(args)
    if "data" in wanted:
        record["data"] = data_path(args)
    if comparisons:
        print(f"\nsummary: engine vs plain PyTorch recipe ({precision}, "
              f"{'channels_last' if channels_last else 'NCHW'}; plain = fp32 NCHW)")
        print(f"{'family':<58} {'batch':>5} {'plain':>7} {'engine':>7} {'ratio':>7} {'ceiling':>8} "
              f"{'ceiling':>8} {'load':>9}")
        print(f"{'':<58} {'':>5} {'img/s':>7} {'img/s':>7} {'':>7} {'img/s':>8} {'ratio':>8} {'1/5 min':>9}")
        for c in comparisons:
            print(f"{c.title:<58} {c.batch:>5} {c.rows[0].images_per_s:>7.1f} {c.rows[1].images_per_s:>7.1f} "
                  f"{c.ratio:>6.2f}x {c.rows[2].images_per_s:>8.1f} {c.ceiling:>7.2f}x {c.load_after:>9}")
        fig1 = next((c for c in comparisons if c.family == "fig1"), None)
        if fig1 is not None:
            print(f"engine / plain recipe (Fig. 1 net): {fig1.ratio:.2f}x (target 3x; model-only ceiling "
                  f"{fig1.ceiling:.2f}x){'' if fig1.ratio >= 3 else '  -- below target'}")
    if not native:
        print("note: this CPU has no native bfloat16 kernels (no AVX-512 BF16/AMX): bf16 autocast is emulated "
              "and much slower than fp32 here, so 'auto' picks fp32 for the engine.")
    if torch.get_num_threads() > 1 and os.getloadavg()[0] > (os.cpu_count() or 1) / 2 \
            and "OMP_WAIT_POLICY" not in os.environ:
        print("note: the machine is busy; spinning OpenMP threads then slow every setting down. Rerun with "
              "OMP_WAIT_POLICY=PASSIVE (set before Python starts) or --threads 1.")
    seconds = time.perf_counter() - began
    record["seconds"] = seconds
    record["load_average_end"] = load_average()
    print(f"bench took {seconds:.0f} s; load average (1/5 min) {load_average()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1, default=str)
    return 0
