"""Section 6: how the paper measures a trained network.

* Top-1 and top-5 error rates (Table 1, Table 2), from the centre patch or from ten
  patches (four corners, centre, and their reflections) whose softmax outputs are
  averaged (Section 4.1).
* Ensembles: "averaging the predictions of" several CNNs (Section 6): the mean of
  their softmax outputs.
* Fig. 4: the training images whose last-hidden-layer (FC7, 4096-d) feature vectors
  are nearest, in Euclidean distance, to a test image's.
* Fig. 3: the conv1 kernels of the two towers: the first GPU's kernels are "largely
  colour-agnostic", the second's "largely colour-specific". ``kernel_colour_statistic``
  turns that into a number per kernel.

Every function that runs a model puts it in eval mode (dropout off, Section 4.2)
under ``torch.inference_mode()`` and restores each module's previous mode after.
Results are plain dataclasses of floats and numpy arrays.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from replication.data.augment import BatchAugmenter, as_nchw_uint8

__all__ = [
    "EvalResult",
    "Neighbours",
    "eval_mode",
    "topk_correct",
    "topk_error",
    "results_from_probs",
    "predict_probs",
    "evaluate",
    "ensemble_probs",
    "extract_features",
    "nearest_neighbours",
    "conv1_kernels",
    "kernel_colour_statistic",
    "conv1_colour_statistics",
    "plot_conv1_kernels",
]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class EvalResult:
    """Error rates of one evaluation (fractions in [0, 1], not percent).

    ``per_class_top1[c]`` is the top-1 error over the images of class ``c`` (NaN for a
    class with no images). ``top5_indices`` are the five highest-scoring classes per
    image, best first. ``probs`` (the averaged softmax, [N,C]) is kept only on request.
    """

    top1: float
    top5: float
    n: int
    views: str  # "center", "ten_crop", "ensemble(center)", ...
    per_class_top1: np.ndarray
    per_class_top5: np.ndarray
    top5_indices: np.ndarray
    probs: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict[str, float | int | str]:
        """The scalar part, JSON-ready."""
        return {"top1": self.top1, "top5": self.top5, "n": self.n, "views": self.views}

    def to_dict(self) -> dict:
        """Everything, arrays as numpy (``probs`` omitted when not kept)."""
        out = asdict(self)
        if out["probs"] is None:
            del out["probs"]
        return out


@dataclass
class Neighbours:
    """k nearest database rows per query, nearest first: indices [Q,k], Euclidean distances [Q,k]."""

    indices: np.ndarray
    distances: np.ndarray


# ---------------------------------------------------------------------------
# Top-k error
# ---------------------------------------------------------------------------


def topk_correct(scores, labels, k: int) -> np.ndarray:
    """Whether each label is among the ``k`` highest scores of its row: bool [N].

    ``scores`` [N,C] may be logits or probabilities (the ranking is the same). ``k``
    larger than C counts every prediction correct.
    """
    scores = torch.as_tensor(np.asarray(scores) if not isinstance(scores, Tensor) else scores)
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels).long()
    k = min(int(k), scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return (top == labels.to(top.device)[:, None]).any(1).cpu().numpy()


def topk_error(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose label is not among the ``k`` highest scores (Section 6)."""
    return float(1.0 - topk_correct(scores, labels, k).mean())


def _per_class_error(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    wrong = np.bincount(labels, weights=~correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, wrong / counts, np.nan)


def results_from_probs(probs, labels, views: str = "center", keep_probs: bool = False) -> EvalResult:
    """Top-1/top-5 error, overall and per class, from scores [N,C] and labels [N]."""
    probs = np.asarray(probs, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"scores {probs.shape} and labels {labels.shape} disagree")
    num_classes = probs.shape[1]
    correct1 = topk_correct(probs, labels, 1)
    correct5 = topk_correct(probs, labels, 5)
    top5 = torch.from_numpy(probs).topk(min(5, num_classes), dim=1).indices.numpy()
    return EvalResult(
        top1=float(1.0 - correct1.mean()) if len(labels) else float("nan"),
        top5=float(1.0 - correct5.mean()) if len(labels) else float("nan"),
        n=int(len(labels)),
        views=views,
        per_class_top1=_per_class_error(correct1, labels, num_classes),
        per_class_top5=_per_class_error(correct5, labels, num_classes),
        top5_indices=top5,
        probs=probs if keep_probs else None,
    )


# ---------------------------------------------------------------------------
# Running a model
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model.eval()`` inside, each submodule's own previous mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _batches(images, batch_size: int, device: torch.device) -> Iterable[Tensor]:
    """uint8 NCHW batches on ``device`` from a numpy array (memory map ok) or tensor."""
    for start in range(0, len(images), batch_size):
        yield as_nchw_uint8(images[start : start + batch_size]).to(device, non_blocking=True)


def _forward(fn, x: Tensor, device: torch.device, autocast_dtype, channels_last: bool) -> Tensor:
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(device, autocast_dtype):
        return fn(x).float()


def predict_probs(
    model: nn.Module,
    images,
    augmenter: BatchAugmenter,
    *,
    ten_crop: bool = False,
    batch_size: int = 256,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Softmax outputs [N,C] (float32) from the centre view, or averaged over the ten views.

    ``images`` is uint8 [N,H,W,3] or [N,3,H,W] (numpy, memory map, or tensor), at the
    size of the augmenter's mean image. ``device`` defaults to the model's.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    chunks = []
    with eval_mode(model), torch.inference_mode():
        for batch in _batches(images, batch_size, device):
            if ten_crop:  # Section 4.1: softmax averaged over the ten patches
                iterate = getattr(augmenter, "iter_ten_crop", None)  # one view at a time when offered
                views = iterate(batch) if iterate is not None else augmenter.ten_crop(batch)
                probs = sum(_forward(model, v, device, autocast_dtype, channels_last).softmax(1) for v in views) / 10
            else:
                logits = _forward(model, augmenter.center(batch), device, autocast_dtype, channels_last)
                probs = logits.softmax(1)
            chunks.append(probs.cpu().numpy())
    if not chunks:
        raise ValueError("no images to evaluate")
    return np.concatenate(chunks)


def evaluate(
    model: nn.Module,
    images,
    labels,
    augmenter: BatchAugmenter,
    *,
    ten_crop: bool = False,
    batch_size: int = 256,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
    keep_probs: bool = False,
) -> EvalResult:
    """Top-1/top-5 error of ``model`` on uint8 ``images`` (centre view or ten views)."""
    probs = predict_probs(
        model,
        images,
        augmenter,
        ten_crop=ten_crop,
        batch_size=batch_size,
        autocast_dtype=autocast_dtype,
        channels_last=channels_last,
        device=device,
    )
    return results_from_probs(probs, labels, "ten_crop" if ten_crop else "center", keep_probs)


def ensemble_probs(member_probs: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """The paper's ensemble prediction: the (weighted) mean of the members' softmax outputs."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])
    weights = np.ones(len(stacked)) if weights is None else np.asarray(weights, dtype=np.float64)
    return (np.tensordot(weights, stacked, axes=1) / weights.sum()).astype(np.float32)


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


def ensemble_subset_effects(member_probs: Sequence, labels, size: int, k: int = 1, max_subsets: int = 252,
                            seed: int = 0) -> np.ndarray:
    """How much averaging ``size`` nets lowers the top-``k`` error (Section 6, Table 2), per subset.

    For each subset of ``size`` members (every subset when there are at most ``max_subsets``,
    else that many drawn by ``seed``): the error of the subset's averaged softmax outputs minus
    the mean error of its members, as fractions. Their spread over subsets is the bootstrap over
    member subsets that gives the ensemble claim its interval; one subset (``size`` equal to the
    number of members) has none.
    """
    members = [np.asarray(p, dtype=np.float32) for p in member_probs]
    if not 1 < size <= len(members):
        raise ValueError(f"an ensemble of {size} needs 2..{len(members)} members")
    labels = np.asarray(labels)
    single = np.array([topk_error(p, labels, k) for p in members])
    subsets = list(itertools.combinations(range(len(members)), size))
    if len(subsets) > max_subsets:
        pick = np.random.default_rng(seed).choice(len(subsets), size=max_subsets, replace=False)
        subsets = [subsets[i] for i in sorted(pick)]
    return np.array([topk_error(ensemble_probs([members[i] for i in subset]), labels, k)
                     - single[list(subset)].mean() for subset in subsets])


# ---------------------------------------------------------------------------
# Fig. 4: feature vectors and nearest neighbours
# ---------------------------------------------------------------------------


def extract_features(
    model: nn.Module,
    images,
    augmenter: BatchAugmenter,
    *,
    batch_size: int = 256,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
    dtype=np.float32,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``model.features`` (FC7, the last hidden layer) of each image's centre view: [N,D].

    For 100k x 4096 features pass ``dtype=np.float16`` (0.8 GB) or an ``out`` array,
    e.g. ``np.lib.format.open_memmap(path, "w+", np.float32, (N, D))``; rows are
    written batch by batch.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    start = 0
    chunks = []
    with eval_mode(model), torch.inference_mode():
        for batch in _batches(images, batch_size, device):
            feats = _forward(model.features, augmenter.center(batch), device, autocast_dtype, channels_last)
            feats = feats.reshape(len(feats), -1).cpu().numpy()
            if out is not None:
                out[start : start + len(feats)] = feats
            else:
                chunks.append(feats.astype(dtype, copy=False))
            start += len(feats)
    return out if out is not None else np.concatenate(chunks)


def _rows(array, start: int, stop: int, device, dtype) -> Tensor:
    """Rows ``start:stop`` of a tensor or numpy array (memory map ok) as a tensor."""
    rows = array[start:stop]
    if not isinstance(rows, Tensor):
        rows = torch.from_numpy(np.array(rows))  # a copy: memory-map slices are read-only
    return rows.to(device=device, dtype=dtype)


def nearest_neighbours(
    queries,
    database,
    k: int = 6,
    *,
    chunk_size: int = 8192,
    query_chunk_size: int = 1024,
    device: torch.device | str | None = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Neighbours:
    """The ``k`` database rows nearest to each query row in Euclidean distance (Fig. 4).

    Works through the database ``chunk_size`` rows at a time (numpy memory maps fine),
    keeping a running top-k, so 100k x 4096 training features never need to be in
    memory at once as floats of a larger type. Distances use
    ``|q|^2 - 2 q.d + |d|^2`` in ``dtype`` (float64 for exact ties).
    """
    n_queries, n_database = len(queries), len(database)
    k = min(int(k), n_database)
    all_indices, all_distances = [], []
    for q_start in range(0, n_queries, query_chunk_size):
        q = _rows(queries, q_start, q_start + query_chunk_size, device, dtype)
        q_norm = (q * q).sum(1, keepdim=True)
        best_d = torch.full((len(q), 0), float("inf"), dtype=dtype, device=q.device)
        best_i = torch.empty((len(q), 0), dtype=torch.long, device=q.device)
        for d_start in range(0, n_database, chunk_size):
            d = _rows(database, d_start, d_start + chunk_size, q.device, dtype)
            squared = (q_norm - 2.0 * q @ d.T + (d * d).sum(1)[None, :]).clamp_min_(0.0)
            chunk_indices = torch.arange(d_start, d_start + len(d), device=q.device).expand(len(q), -1)
            candidates_d = torch.cat([best_d, squared], 1)
            candidates_i = torch.cat([best_i, chunk_indices], 1)
            best_d, position = candidates_d.topk(min(k, candidates_d.shape[1]), dim=1, largest=False, sorted=True)
            best_i = candidates_i.gather(1, position)
        all_indices.append(best_i.cpu().numpy())
        all_distances.append(best_d.sqrt().to(torch.float32).cpu().numpy())
    return Neighbours(np.concatenate(all_indices), np.concatenate(all_distances))


# ---------------------------------------------------------------------------
# Fig. 3: conv1 kernels and how colourful they are
# ---------------------------------------------------------------------------


def conv1_kernels(model_or_weights) -> list[Tensor]:
    """conv1 weights per tower, each [K,3,h,w] float32 on the CPU.

    Accepts a model with ``conv1_weights()`` (the AlexNet of ``replication.models``), any
    other model (its first Conv2d with 3 input channels, one tower), a tensor, or a
    list of tensors.
    """
    if isinstance(model_or_weights, Tensor):
        weights = [model_or_weights]
    elif isinstance(model_or_weights, (list, tuple)):
        weights = list(model_or_weights)
    elif hasattr(model_or_weights, "conv1_weights"):
        weights = list(model_or_weights.conv1_weights())
    else:
        convs = [m for m in model_or_weights.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3]
        if not convs:
            raise ValueError("model has no Conv2d with 3 input channels")
        weights = [convs[0].weight]
    return [torch.as_tensor(w).detach().float().cpu() for w in weights]


def kernel_colour_statistic(weights, eps: float = 1e-12) -> np.ndarray:
    """How colour-specific each kernel is, in [0, 1]: [K] for weights [K,3,h,w].

    statistic = mean over the h*w positions of the standard deviation across the
    three colour channels at that position, divided by the standard deviation of all
    3*h*w weights of the kernel (population std throughout).

    0 means a grey kernel (R, G and B weights equal at every position: it sees only
    luminance, like Fig. 3's first tower); values near 1 mean the kernel's variation
    is almost all between colours (the second tower's colour blobs). By the law of
    total variance the mean over positions of the colour std is at most the overall
    std, so the statistic never exceeds 1. A constant kernel gets 0.
    """
    w = torch.as_tensor(weights).detach().to(torch.float64).cpu()
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected conv1 weights [K,3,h,w], got {tuple(w.shape)}")
    colour_std = w.std(dim=1, unbiased=False).flatten(1).mean(1)
    overall_std = w.flatten(1).std(dim=1, unbiased=False)
    statistic = torch.where(overall_std > eps, colour_std / overall_std.clamp_min(eps), torch.zeros_like(overall_std))
    return statistic.numpy()


def conv1_colour_statistics(model_or_weights) -> list[np.ndarray]:
    """``kernel_colour_statistic`` of each tower's conv1 kernels (Fig. 3)."""
    return [kernel_colour_statistic(w) for w in conv1_kernels(model_or_weights)]


def _kernel_image(kernel: Tensor) -> np.ndarray:
    """One kernel [3,h,w] as an RGB image in [0,1] (min-max per kernel, like Fig. 3)."""
    k = kernel.permute(1, 2, 0).numpy()
    low, high = k.min(), k.max()
    return (k - low) / (high - low) if high > low else np.full_like(k, 0.5)


def plot_conv1_kernels(model_or_weights, ncols: int = 16, title: str | None = None, kernel_inches: float = 0.45):
    """Fig. 3: every conv1 kernel as a small RGB image, one block of rows per tower.

    Each kernel is min-max scaled on its own. Returns a ``matplotlib.figure.Figure``
    (not registered with pyplot, so a notebook shows it once when it is the cell's
    value; ``fig.savefig(path)`` writes it).
    """
    towers = conv1_kernels(model_or_weights)
    statistics = [kernel_colour_statistic(w) for w in towers]
    rows_per_tower = [max(1, -(-len(w) // ncols)) for w in towers]
    figure = Figure(figsize=(ncols * kernel_inches, sum(rows_per_tower) * kernel_inches + 0.4 * len(towers) + 0.5))
    subfigures = figure.subfigures(len(towers), 1, height_ratios=rows_per_tower, squeeze=False)[:, 0]
    for tower, (weights, subfigure, rows, stat) in enumerate(zip(towers, subfigures, rows_per_tower, statistics)):
        axes = subfigure.subplots(rows, ncols, squeeze=False)
        for index, axis in enumerate(axes.flat):
            axis.set_axis_off()
            if index < len(weights):
                axis.imshow(_kernel_image(weights[index]), interpolation="nearest")
        label = f"tower {tower + 1}: " if len(towers) > 1 else ""
        subfigure.suptitle(f"{label}{len(weights)} kernels, mean colour statistic {stat.mean():.2f}", fontsize=9)
    if title:
        figure.suptitle(title)
    return figure
