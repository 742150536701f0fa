"""Non-convolutional baselines trained on the same data as the CNN (Table 1's message).

Table 1 of the paper sets the CNN (37.5% top-1, 17.0% top-5 on ILSVRC-2010
test) beside the best methods without learned convolutions: sparse coding
(47.1/28.2) and SIFT + Fisher vectors (45.7/25.7). We cannot run those
pipelines on ImageNet, so at our scale we train two classical baselines on
exactly the images the CNN sees (``protocol.CLASSICAL``: Imagenette's images at 112 px):

- ``softmax_pixels``: multinomial logistic regression on the mean-subtracted
  pixels (the weakest sensible classifier: linear in the input).
- ``kmeans_features``: Coates, Lee and Ng (AISTATS 2011), "An analysis of
  single-layer networks in unsupervised feature learning": 6x6 patches,
  per-patch brightness/contrast normalisation, ZCA whitening, k-means
  centroids, the "triangle" encoding ``f_k = max(0, mean(d) - d_k)``, sum
  pooling over the four quadrants, then the same softmax classifier. It was
  the strongest single-layer, hand-designed pipeline of its time (78-79% on
  CIFAR-10 with 1600-4000 centroids), i.e. the strong classical baseline.

Everything is torch on the CPU (the patch encoding is two convolutions), and
deterministic in ``seed``. Results are small JSON records in the run store,
``<store>/baselines/<kind>-<hash>.json``, so reports re-execute from the
store like the CNN runs; ``REPLICATION_STORE_READONLY=1`` makes a missing
one an error, and ``scratch=True`` (smoke) uses the uncommitted scratch store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm  # not tqdm.auto: in a kernel without ipywidgets it warns on stderr at import

from replication.engine import evaluate, runs
from replication.engine.config import TrainConfig
from replication.paths import atomic_write_text
from replication.provenance import environment
from replication.data.splits import load_data

KINDS = ("softmax_pixels", "kmeans_features")


@dataclass(frozen=True)
class BaselineConfig:
    """Everything that decides a baseline's result (its hash names the stored record)."""

    kind: str = "softmax_pixels"
    dataset: str = "tiny-imagenet-200"
    image_size: int | None = 32
    train_per_class: int | None = None
    val_per_class: int | None = None
    subset_seed: int = 0
    seed: int = 0
    # the linear softmax classifier (both kinds): SGD, momentum 0.9, cosine decay
    epochs: int = 30
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch_size: int = 256
    # kmeans_features (Coates et al. 2011)
    patch: int = 6
    centroids: int = 256
    kmeans_patches: int = 100_000
    kmeans_iters: int = 10
    whiten_eps: float = 0.1
    data_variant: str | None = None  # as TrainConfig.data_variant ("sample": the committed sample)
    data_fingerprint: str | None = None  # as TrainConfig.data_fingerprint: a folder of your images' contents
    threads: int = 2  # as TrainConfig.threads: part of the identity (k-means and SGD sum in thread order)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"baseline kind must be one of {KINDS}, got {self.kind!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.centroids < 2 or self.patch < 1:
            raise ValueError(f"invalid baseline settings {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "BaselineConfig":
        return dataclasses.replace(self, **changes)

    @property
    def hash(self) -> str:
        values = self.to_dict()
        for name, default in (("data_variant", None), ("threads", 2), ("data_fingerprint", None)):  # added later:
            # their defaults keep the old hashes
            if values[name] == default:
                del values[name]
        payload = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# The linear softmax classifier
# ---------------------------------------------------------------------------

def fit_softmax(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int, lr: float,
                weight_decay: float, batch_size: int, seed: int,
                transform=None, dim: int | None = None) -> torch.nn.Linear:
    """Multinomial logistic regression by minibatch SGD (momentum 0.9, cosine-decayed lr).

    ``features`` [N, D] (or anything ``transform`` maps, a batch at a time, to float32 [B, dim]).
    """
    generator = torch.Generator().manual_seed(seed)
    dim = dim or features.shape[1]
    model = torch.nn.Linear(dim, num_classes)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    n = len(labels)
    steps = epochs * math.ceil(n / batch_size)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            x = features[index]
            x = transform(x) if transform is not None else x.float()
            loss = F.cross_entropy(model(x), labels[index])
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    return model


@torch.no_grad()
def predict(model: torch.nn.Linear, features: torch.Tensor, transform=None, batch_size: int = 2048) -> np.ndarray:
    out = []
    for start in range(0, len(features), batch_size):
        x = features[start:start + batch_size]
        x = transform(x) if transform is not None else x.float()
        out.append(model(x).softmax(1).numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------------------
# Coates et al. (2011): normalised, whitened patches -> k-means -> triangle code
# ---------------------------------------------------------------------------

def sample_patches(images: torch.Tensor, count: int, patch: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random ``patch`` x ``patch`` patches of uint8 NHWC images, as float rows [count, 3*p*p] (CHW order)."""
    n, h, w, _ = images.shape
    which = torch.randint(0, n, (count,), generator=generator)
    tops = torch.randint(0, h - patch + 1, (count,), generator=generator)
    lefts = torch.randint(0, w - patch + 1, (count,), generator=generator)
    steps = torch.arange(patch)
    rows = (tops[:, None] + steps)[:, :, None]
    cols = (lefts[:, None] + steps)[:, None, :]
    patches = images[which[:, None, None], rows, cols]  # [count, p, p, 3]
    return patches.permute(0, 3, 1, 2).reshape(count, -1).float()


def normalise_patches(patches: torch.Tensor) -> torch.Tensor:
    """Per-patch brightness and contrast normalisation (Coates et al.: variance + 10 on the 0..255 scale)."""
    mean = patches.mean(1, keepdim=True)
    var = patches.var(1, keepdim=True)
    return (patches - mean) / torch.sqrt(var + 10.0)


def zca(patches: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ZCA whitening of normalised patches: (mean [D], matrix [D, D]) with z = (p - mean) @ matrix."""
    mean = patches.mean(0)
    centred = (patches - mean).double()
    covariance = centred.T @ centred / (len(patches) - 1)
    values, vectors = torch.linalg.eigh(covariance)
    matrix = vectors @ torch.diag(1.0 / torch.sqrt(values.clamp_min(0) + eps)) @ vectors.T
    return mean, matrix.float()


def kmeans(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means from k random points; an emptied centroid is re-seeded at a random point."""
    centroids = points[torch.randperm(len(points), generator=generator)[:k]].clone()
    for _ in range(iterations):
        distances = (points * points).sum(1, keepdim=True) - 2 * points @ centroids.T + (centroids ** 2).sum(1)
        assign = distances.argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0
        centroids = sums / counts.clamp_min(1)[:, None]
        if empty.any():
            centroids[empty] = points[torch.randint(0, len(points), (int(empty.sum()),), generator=generator)]
    return centroids


@dataclass
class PatchEncoder:
    """Whitened-patch k-means encoder: uint8 images -> 4 * K pooled triangle features."""

    patch: int
    mean: torch.Tensor  # [D] mean of normalised patches
    whiten: torch.Tensor  # [D, D]
    centroids: torch.Tensor  # [K, D] in the whitened space

    @torch.no_grad()
    def encode(self, images_uint8_nhwc: torch.Tensor, batch_size: int = 200, progress: str | None = None) -> torch.Tensor:
        """Every patch of every image (stride 1) normalised, whitened and triangle-coded against the
        centroids, then summed over the four quadrants of the map: [N, 4K]. Two GEMMs per batch.
        ``progress``: a progress bar's label (None: no bar)."""
        p = self.patch
        c_sq = (self.centroids ** 2).sum(1)
        out = []
        starts = range(0, len(images_uint8_nhwc), batch_size)
        for start in tqdm(starts, desc=progress, unit="batch", disable=progress is None, leave=False):
            x = images_uint8_nhwc[start:start + batch_size].permute(0, 3, 1, 2).float()
            n, _, height, width = x.shape
            h, w = height - p + 1, width - p + 1
            rows = F.unfold(x, p).transpose(1, 2).reshape(n * h * w, -1)  # [patches, 3*p*p], CHW order
            z = (normalise_patches(rows) - self.mean) @ self.whiten
            squared = (z * z).sum(1, keepdim=True) - 2 * z @ self.centroids.T + c_sq
            distance = squared.clamp_min_(0).sqrt_()
            code = (distance.mean(1, keepdim=True) - distance).clamp_min_(0)  # triangle encoding
            code = code.reshape(n, h, w, -1)
            half_h, half_w = h // 2, w // 2
            quadrants = [code[:, :half_h, :half_w], code[:, :half_h, half_w:], code[:, half_h:, :half_w],
                         code[:, half_h:, half_w:]]
            out.append(torch.cat([q.sum((1, 2)) for q in quadrants], 1))
        return torch.cat(out)


def fit_patch_encoder(images_uint8_nhwc: torch.Tensor, config: BaselineConfig) -> PatchEncoder:
    generator = torch.Generator().manual_seed(config.seed)
    patches = normalise_patches(sample_patches(images_uint8_nhwc, config.kmeans_patches, config.patch, generator))
    mean, whiten = zca(patches, config.whiten_eps)
    whitened = (patches - mean) @ whiten
    centroids = kmeans(whitened, config.centroids, config.kmeans_iters, generator)
    return PatchEncoder(config.patch, mean, whiten, centroids)


# ---------------------------------------------------------------------------
# Running a baseline, and the store
# ---------------------------------------------------------------------------

def load_images(config: BaselineConfig):
    """(train images, train labels, val images, val labels, classes): the CNN's splits, uint8 NHWC tensors."""
    cnn_view = TrainConfig(model={"arch": "alexnet"}, dataset=config.dataset, image_size=config.image_size,
                                 train_per_class=config.train_per_class, val_per_class=config.val_per_class,
                                 subset_seed=config.subset_seed, data_variant=config.data_variant)
    train_split, val_split = load_data(cnn_view)
    return train_split, val_split


def run(config: BaselineConfig, progress: bool = False) -> dict:
    """Train and evaluate one baseline; returns its JSON-ready record. ``progress``: bars over the
    k-means encoding (the long part: every 6x6 patch of every image)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, progress)
    finally:
        torch.set_num_threads(previous)


def _run(config: BaselineConfig, progress: bool = False) -> dict:
    began = time.perf_counter()
    train_split, val_split = load_images(config)
    classes = len(train_split.classes)
    train_x, val_x = train_split.images, val_split.images
    if config.kind == "softmax_pixels":
        total = torch.zeros(train_x[0].numel(), dtype=torch.float64)
        square = 0.0
        for start in range(0, len(train_x), 4096):  # chunked: the float copy of 100k images is 1.2 GB
            chunk = train_x[start:start + 4096].reshape(-1, total.numel()).double()
            total += chunk.sum(0)
            square += float((chunk * chunk).sum())
        mean = (total / len(train_x)).float().reshape(1, -1)
        std = math.sqrt(square / (len(train_x) * total.numel()) - float((mean.double() ** 2).mean()))
        transform = lambda rows: (rows.reshape(len(rows), -1).float() - mean) / std  # noqa: E731
        train_features, val_features = train_x, val_x
        feature_dim = mean.shape[1]
    else:
        encoder = fit_patch_encoder(train_x, config)
        train_features = encoder.encode(train_x, progress="k-means features, training images" if progress else None)
        val_features = encoder.encode(val_x, progress="k-means features, validation images" if progress else None)
        mu, sd = train_features.mean(0, keepdim=True), train_features.std(0, keepdim=True) + 1e-3
        train_features, val_features = (train_features - mu) / sd, (val_features - mu) / sd
        transform = None
        feature_dim = train_features.shape[1]
    model = fit_softmax(train_features, train_split.labels, classes, epochs=config.epochs, lr=config.lr,
                        weight_decay=config.weight_decay, batch_size=config.batch_size, seed=config.seed,
                        transform=transform, dim=feature_dim)
    val = evaluate.results_from_probs(predict(model, val_features, transform), val_split.labels.numpy())
    seen = evaluate.results_from_probs(predict(model, train_features, transform), train_split.labels.numpy())
    return {"kind": config.kind, "hash": config.hash, "config": config.to_dict(),
            "val_top1": val.top1, "val_top5": val.top5, "train_top1": seen.top1, "train_top5": seen.top5,
            "feature_dim": int(feature_dim), "train_images": len(train_split), "val_images": len(val_split),
            "classes": classes, "seconds": round(time.perf_counter() - began, 1), **environment()}


class BaselineNotStoredError(LookupError):
    """The store is read-only and does not hold the requested baseline."""


def record_path(config: BaselineConfig, scratch: bool = False, store: Path | None = None) -> Path:
    store = runs.scratch_store_dir() if scratch else (store or runs.store_dir())
    return store / "baselines" / f"{config.kind}-{config.hash}.json"


def record_digest(record: dict) -> str:
    """sha256 of a record's canonical JSON, leaving out the digest itself."""
    body = {key: value for key, value in record.items() if key != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(record: dict) -> dict:
    """The record with its own sha256, checked whenever it is read back."""
    return {**record, "sha256": record_digest(record)}


def read_record(path: Path) -> dict:
    """A stored baseline record, refused (naming the file and the repair) when it changed since it was stored."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise runs.StoreError(f"{path} is unreadable ({error}); restore it from git or delete it") from None
    if record.get("sha256") != record_digest(record):
        raise runs.StoreError(f"{path} is not the record that was stored (its sha256 does not match); restore it "
                              f"from git (`git checkout -- {path}`) or delete it to compute it again")
    return record


def stored_record(path: Path, compute: Callable[[], dict], refusal: Exception | None = None,
                  current: Callable[[dict], bool] = lambda record: True) -> dict:
    """The sealed record at ``path`` when it is there (and ``current``); else ``compute()``, sealed and
    written atomically. ``refusal``: raised instead of computing (a read-only store). The store's
    derived records share this: classical baselines here, notebook 07's PCA, notebook 10's neighbours."""
    if path.is_file():
        record = read_record(path)
        if current(record):
            return record
    if refusal is not None:
        raise refusal
    record = seal(compute())
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return record


def get(config: BaselineConfig, scratch: bool = False, store: Path | None = None, progress: bool = False) -> dict:
    """The stored record of ``config``, computing and storing it first when missing (in ``store``, or
    the run store; ``scratch``: the uncommitted scratch store; ``progress``: bars while computing)."""
    path = record_path(config, scratch, store)
    if scratch and path.is_file():
        try:
            return read_record(path)
        except runs.StoreError:
            path.unlink()  # the scratch store's records are throw-away: compute it again
    refusal = None if scratch or not runs.read_only() else BaselineNotStoredError(
        f"baseline {config.kind} {config.hash} is not in {path.parent} and REPLICATION_STORE_READONLY=1 "
        f"forbids computing it here; run `python -m replication.experiments --profile cpu --only 04` and commit {path}")
    return stored_record(path, lambda: run(config, progress), refusal)