"""The figures' measurements (Sections 6.1 and Fig. 3, Fig. 4) of a trained net.

Fig. 4: FC7 feature vectors and the nearest training images of a query by Euclidean distance.
Fig. 3: the conv1 kernels of each tower, a per-kernel colour statistic (how much a kernel's
weights differ between the colour channels), and the kernels drawn as small RGB images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from replication.data.augment import BatchAugmenter
from replication.engine.evaluate import _batches, _forward, _model_device, eval_mode

@dataclass
class Neighbours:
    """k nearest database rows per query, nearest first: indices [Q,k], Euclidean distances [Q,k]."""

    indices: np.ndarray
    distances: np.ndarray


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


def spread_queries(labels: np.ndarray, count: int, seed: int | None) -> np.ndarray:
    """Indices of ``count`` Fig. 4 query images. ``seed`` None: the first ``count`` rows. Else drawn
    by ``seed`` and spread over the classes: one image of every class (in a seeded class order)
    before a second of any, so that five queries show five classes, not five of the first."""
    labels = np.asarray(labels)
    count = min(int(count), len(labels))
    if seed is None:
        return np.arange(count)
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in classes]
    picked = []
    while len(picked) < count:
        for pool in pools:
            if pool and len(picked) < count:
                picked.append(int(pool.pop()))
    return np.asarray(picked, dtype=np.int64)


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

    Accepts what a run stores, the ``conv1`` artifact (a numpy array [towers,K,3,h,w], see
    ``engine.final``), one tower's weights [K,3,h,w] (array or tensor), a list of those, a
    model with ``conv1_weights()`` (the AlexNet of ``replication.models``), or any other
    model (its first Conv2d with 3 input channels, one tower).
    """
    if isinstance(model_or_weights, (np.ndarray, Tensor)):
        weights = _towers_of_array(model_or_weights)
    elif isinstance(model_or_weights, (list, tuple)):
        weights = list(model_or_weights)
    elif hasattr(model_or_weights, "conv1_weights"):
        weights = list(model_or_weights.conv1_weights())
    elif isinstance(model_or_weights, nn.Module):
        convs = [m for m in model_or_weights.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3]
        if not convs:
            raise ValueError("model has no Conv2d with 3 input channels")
        weights = [convs[0].weight]
    else:
        raise TypeError(f"expected a model or conv1 weights ([K,3,h,w], or the stored [towers,K,3,h,w]), "
                        f"got {type(model_or_weights).__name__}")
    return [torch.as_tensor(np.asarray(w) if not isinstance(w, Tensor) else w).detach().float().cpu()
            for w in weights]


def _towers_of_array(array) -> list:
    """[towers,K,3,h,w] (the stored ``conv1``) -> one entry per tower; [K,3,h,w] -> one tower."""
    if array.ndim == 5:
        return list(array)
    if array.ndim == 4:
        return [array]
    raise ValueError(f"expected conv1 weights [K,3,h,w] or the stored [towers,K,3,h,w], got shape {tuple(array.shape)}")


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

    Takes a model or the stored ``conv1`` artifact (``conv1_kernels``). Each kernel is
    min-max scaled on its own (the figure shows patterns, not magnitudes); at most ``ncols``
    kernels a row, rows filled evenly (48 kernels: 3 x 16; 24: 2 x 12). Returns a
    ``matplotlib.figure.Figure`` (not registered with pyplot, so a notebook shows it once
    when it is the cell's value; ``fig.savefig(path)`` writes it).
    """
    towers = conv1_kernels(model_or_weights)
    statistics = [kernel_colour_statistic(w) for w in towers]
    most = max(len(w) for w in towers)
    rows = max(1, -(-most // ncols))
    ncols = max(1, -(-most // rows))
    block_inches = rows * kernel_inches + 0.35  # a tower's kernels and its one-line title
    title_inches = 0.2 + 0.2 * (title.count("\n") + 1) if title else 0.0
    height = len(towers) * block_inches + title_inches
    figure = Figure(figsize=(max(ncols * kernel_inches, 4.0), height))
    # row 0 of the grid holds the title (subfigures fill their grid cells, ignoring margins)
    blocks = figure.add_gridspec(len(towers) + 1, 1,
                                 height_ratios=[title_inches or 1e-6] + [block_inches] * len(towers))
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")
    for tower, (weights, stat) in enumerate(zip(towers, statistics)):
        subfigure = figure.add_subfigure(blocks[tower + 1])
        axes = subfigure.subplots(rows, ncols, squeeze=False, gridspec_kw={
            "wspace": 0.06, "hspace": 0.06, "left": 0.02, "right": 0.98, "bottom": 0.02,
            "top": 1 - 0.35 / block_inches})
        for index, axis in enumerate(axes.flat):
            axis.set_axis_off()
            if index < len(weights):
                axis.imshow(_kernel_image(weights[index]), interpolation="nearest")
        label = f"tower {tower + 1}: " if len(towers) > 1 else ""
        subfigure.suptitle(f"{label}{len(weights)} kernels, mean colour statistic {stat.mean():.2f}", fontsize=9)
    return figure
