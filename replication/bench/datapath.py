"""Part 3 of `python -m replication bench`: the data path alone (decode-once cache build, batch augmentation)."""

from __future__ import annotations

import os
import tempfile
import time

import torch
from PIL import Image
from torch.utils.data import default_collate

from replication import data
from replication.bench.training import FAMILIES, load_average, load_training_split
from replication.data import augment
from replication.data.splits import Split

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
    import torchvision.transforms as T  # lazily: torchvision takes seconds to import (every command's start-up)

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
