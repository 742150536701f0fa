"""Train one configuration: the loop of Section 5 (Krizhevsky et al., 2012).

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

A run's identity is its ``TrainConfig``; ``replication.engine.runs`` stores finished
runs under the config's hash. ``python -m replication train --help`` lists
every field with its default.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from replication import models
from replication.data import augment
from replication.engine import distributed, evaluate
from replication.engine.final import final_measurements
from replication.engine.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from replication.engine.config import TrainConfig, canonical_json, config_hash
from replication.engine.optim import LRSchedule, PaperSGD
from replication.paths import cache_dir
from replication.provenance import bf16_is_native, environment, git_state
from replication.seeds import (STREAM_AUGMENT, STREAM_DROPOUT, STREAM_INIT, STREAM_LIGHTING, STREAM_SHUFFLE,
                               derive_seed, generator, layer_seed)
from replication.data.splits import Split, StreamSplit, load_data, stream_batches, stream_stats

# --------------------------------------------------------------------------
# Device and precision
# --------------------------------------------------------------------------


def default_device() -> torch.device:
    """The first GPU when there is one (the paper profile), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device_type: str = "cpu"):
    """bfloat16 autocast when precision == 'bf16', else a no-op context."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, message: str, epoch: int, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint



# --------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------


def initial_model(config: TrainConfig, num_classes: int, input_size: int) -> nn.Module:
    """The net a run of ``config`` starts from, on the CPU: its weights before the first step.

    Seeds the global generator from the run's seed (as the trainer always has), so a caller that
    must not disturb it wraps the call in ``torch.random.fork_rng``. With ``layer_seeds`` (the paired
    protocol) each layer's weights come from (seed, layer name) alone (``seeds.layer_seed``).
    """
    torch.manual_seed(derive_seed(config.seed, 0, STREAM_INIT))
    model_spec = dict(config.model)
    model_spec.setdefault("num_classes", num_classes)
    model_spec.setdefault("input_size", input_size)
    module = models.build_model(model_spec)
    if config.layer_seeds:  # paired arms: each layer's weights from (seed, layer name) alone
        models.init_layer_by_layer(module, lambda name: layer_seed(config.seed, name),
                                   kaiming=config.init == "kaiming")
    elif config.init == "kaiming":
        models.kaiming_init(module)
    return module


class Trainer:
    """Model, optimiser, augmentation and data of one config, and one training step.

    ``train()`` drives it epoch by epoch; ``bench`` times ``train_step``
    directly, so the benchmark measures exactly this code.
    """

    def __init__(self, config: TrainConfig, data: tuple[Split, Split] | None = None, dist=None,
                 device: str | torch.device | None = None, progress: bool = False):

        self.config = config
        self.hash = config_hash(config)
        self.dist = dist
        self.rank = dist.rank if dist is not None else 0
        self.world = dist.world_size if dist is not None else 1
        self.device = torch.device(dist.device if dist is not None else device or default_device())
        if self.device.type == "cuda" and (not torch.cuda.is_available()
                                           or (self.device.index or 0) >= torch.cuda.device_count()):
            raise ValueError(f"device: {self.device} is not on this machine ({torch.cuda.device_count()} CUDA "
                             "devices); use --device cpu, or -p device cpu for a notebook")
        if config.precision == "bf16" and self.device.type == "cpu" and not bf16_is_native():
            warnings.warn("precision 'bf16' on a CPU without native bfloat16 kernels (no AVX-512 BF16/AMX): "
                          "autocast is emulated and runs several times slower than fp32 here", stacklevel=2)
        self.train_split, self.val_split = data if data is not None else load_data(config, progress)

        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        module = initial_model(config, len(self.train_split.classes), config.crop or self.image_size)
        self.module = module.to(self.device, memory_format=self.memory_format)
        self.model = self.module  # what is called in training: the module, or its DDP wrapper
        if self.world > 1:
            self.model = distributed.wrap_ddp(self.module, dist)

        size = self.image_size
        mean_image, eigvals, eigvecs = torch.zeros(3, size, size), None, None
        if config.mean_subtraction or config.lighting_std > 0:
            if self.streaming:  # Section 2's mean image, Section 4.1's RGB PCA, over streamed files

                key = canonical_json([config.dataset, config.data_variant, self.image_size, config.train_per_class, config.subset_seed,
                                  config.stats_images, os.environ.get("REPLICATION_IMAGENET", "")]
                                 # a folder's contents (folder:PATH): its statistics change with them
                                 + ([config.data_fingerprint] if config.data_fingerprint else []))
                cache = cache_dir() / "stats" / f"stream-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
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

    def prepare(self, images_uint8: torch.Tensor, generator: torch.Generator | None,
                lighting_generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 NHWC batch -> augmented float32 NCHW (train) or centre crop (generator None)."""
        images_uint8 = images_uint8.to(self.device, non_blocking=True)
        x = (self.augmenter(images_uint8, generator, lighting_generator) if generator is not None
             else self.augmenter.center(images_uint8))
        return x.contiguous(memory_format=self.memory_format)

    def train_step(self, images_uint8: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                   lighting_generator: torch.Generator | None = None) -> tuple[float, int]:
        """Augment, forward (autocast), backward, update; returns (summed loss, number wrong)."""
        x = self.prepare(images_uint8, generator, lighting_generator)
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
        lighting_rng = generator(cfg.seed, epoch, STREAM_LIGHTING, self.rank) if cfg.lighting_stream else None
        order = self.epoch_indices(epoch)
        batch = max(1, cfg.batch_size // self.world)
        starts = range(0, len(order), batch)[:max_steps]
        bar = _progress(self._train_batches(order, starts, batch), progress, f"epoch {epoch}/{cfg.epochs}",
                        total=len(starts))
        loss_sum, errors, seen = 0.0, 0, 0
        began = time.perf_counter()
        for step, (images, labels) in enumerate(bar, 1):
            loss, wrong = self.train_step(images, labels, augment_rng, lighting_rng)
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

    # -- evaluation (replication.engine.evaluate) ---------------------------------------

    def eval_kwargs(self) -> dict:
        return {"autocast_dtype": torch.bfloat16 if self.config.precision == "bf16" else None,
                "channels_last": self.config.channels_last}

    def evaluate(self, split: Split | None = None, ten_crop: bool = False) -> dict:
        """Top-1 and top-5 error (Section 6), centre crop or ten-crop, and the mean log loss."""

        split = split or self.val_split
        if isinstance(split, StreamSplit):
            order = np.arange(len(split))
            chunks = [order[i:i + 256] for i in range(0, len(order), 256)]
            probs = np.concatenate([
                evaluate.predict_probs(self.module, images, self.augmenter, ten_crop=ten_crop, batch_size=len(images),
                                       device=self.device, **self.eval_kwargs())
                for images, _ in stream_batches(split, chunks, self.device)])
        else:
            probs = evaluate.predict_probs(self.module, split.images, self.augmenter, ten_crop=ten_crop,
                                           **self.eval_kwargs())
        result = evaluate.results_from_probs(probs, split.labels.numpy(), "ten_crop" if ten_crop else "center")
        picked = probs[np.arange(len(probs)), split.labels.numpy()]
        loss = float(-np.log(np.clip(picked, 1e-12, None)).mean())
        return {"top1": result.top1, "top5": result.top5, "loss": loss, "result": result, "probs": probs}

    # -- checkpoints ------------------------------------------------------------

    def checkpoint_state(self, epoch: int, metrics: list[dict]) -> dict:
        return {"format": CHECKPOINT_FORMAT, "config_hash": self.hash,
                "config": json.dumps(self.config.to_dict(), sort_keys=True), "epoch": epoch,
                "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "metrics": metrics}

    def non_finite(self, val_loss: float) -> str | None:
        """What is not finite after an epoch (the validation loss, or a parameter), or None."""
        if not math.isfinite(val_loss):
            return f"the validation loss is {val_loss}"
        for name, parameter in self.module.named_parameters():
            if not torch.isfinite(parameter).all():
                return f"parameter {name} is not finite"
        return None

    def load_state(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])


class _NonFinite(Exception):
    def __init__(self, epoch, step, value):
        super().__init__(epoch, step, value)
        self.epoch, self.step, self.value = epoch, step, value


def _progress(iterable, enabled: bool, description: str, total: int | None = None):
    """A progress bar with its total (so it shows the ETA), or the iterable itself when disabled."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # lazily: in a notebook kernel without ipywidgets tqdm.auto warns on import

    return tqdm(iterable, desc=description, total=total, leave=False, dynamic_ncols=True, unit="batch")


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
          data: tuple[Split, Split] | None = None,
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
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)  # part of the run's identity: another count sums in another order
    try:
        return _train(config, checkpoint, progress, data, after_epoch, after_step, dist, device)
    finally:
        torch.set_num_threads(previous_threads)


def _train(config, checkpoint, progress, data, after_epoch, after_step, dist, device) -> TrainResult:
    if dist is None:
        dist = _init_distributed()
    commit, dirty = git_state()  # the code that trains the run: provenance, not identity
    is_main = dist is None or dist.rank == 0
    say = print if progress and is_main else (lambda *_: None)
    say(f"run {config_hash(config)}: loading {config.dataset}{f' ({config.data_variant})' if config.data_variant else ''}, "
        "building the net")
    trainer = Trainer(config, data=data, dist=dist, device=device, progress=progress)
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
        bad = trainer.non_finite(val["loss"])
        if bad:  # diverged without a NaN training loss (weights blown up): keep the last finite checkpoint
            kept = checkpoint if checkpoint is not None and checkpoint.exists() else None
            raise NonFiniteLossError(
                f"{bad} after epoch {epoch} (lr {lr:g}); run {trainer.hash} stopped and was not stored. "
                + (f"The last finite checkpoint (after epoch {epoch - 1}) is kept at {kept}. " if kept else "")
                + "Try a smaller learning rate.", epoch, 0, kept)
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
    say(f"evaluating the final net on {len(trainer.val_split):,} validation images: centre crop"
        + (", ten crops" if config.ten_crop else "") + (", per-class errors, conv1, neighbours"
                                                         if config.per_class_error or config.save_conv1
                                                         or config.neighbours_k else ""))
    summary, artifacts = final_measurements(trainer, config, is_main)
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
        git_commit=commit, git_dirty=dirty,
        **environment(trainer.device),
    )
    return TrainResult(config, trainer.hash, trainer.module, metrics, summary, artifacts, checkpoint)


def _init_distributed():
    """distributed.init_distributed() when torchrun launched us, else None (one process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    info = distributed.init_distributed()
    return info if info.world_size > 1 else None


def _print_row(row: dict) -> None:
    from tqdm.auto import tqdm  # lazily, as in _progress

    tqdm.write(f"epoch {row['epoch']:3d}  lr {row['lr']:.0e}  train loss {row['train_loss']:.3f} "
               f"err {row['train_error']:.3f}  val top-1 {row['val_top1']:.3f} top-5 {row['val_top5']:.3f}  "
               f"{row['seconds']:.1f}s {row['images_per_s']:.0f} img/s")


