"""A trained run's figures drawn from plain arrays: what the run store holds, or the same from a live net.

- ``plot_learning_curves``: training and validation error and loss per epoch (a run's
  ``metrics.jsonl`` rows), the epochs where the learning rate was lowered marked (Section 5).
- ``plot_neighbours``: Fig. 4, query images in the first column and their nearest training
  images by FC7 distance in the others (``figures.nearest_neighbours`` finds them).
- ``plot_per_class_errors``: top-1 error of every class, sorted.
- Fig. 3's kernels: ``figures.plot_conv1_kernels`` (takes the stored ``conv1`` array too).

Each returns a ``matplotlib.figure.Figure`` that is not registered with pyplot (a notebook
shows it once; no display needed); ``save_png`` writes one atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from replication.paths import atomic_file

# one colour per quantity, the same in every panel
TRAIN_COLOUR, VAL_COLOUR, TRAIN_EVAL_COLOUR, DROP_COLOUR = "#ff7f0e", "#1f77b4", "#2ca02c", "grey"


def save_png(figure: Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` as a PNG atomically (complete, or not there at all)."""
    with atomic_file(Path(path)) as partial:
        figure.savefig(partial, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


# ---------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------


def lr_drop_epochs(history: Sequence[Mapping]) -> list[int]:
    """Epochs trained at a lower learning rate than the epoch before (the rate was divided
    between them, Section 5), from each row's ``lr``."""
    return [int(now["epoch"]) for before, now in pairwise(history)
            if now.get("lr") is not None and before.get("lr") is not None and now["lr"] < before["lr"]]


def _series(history: Sequence[Mapping], key: str, scale: float = 1.0) -> tuple[list, list] | None:
    """(epochs, values) of one metric, or None when no row has it."""
    rows = [(row["epoch"], row[key] * scale) for row in history if row.get(key) is not None]
    return (list(zip(*rows))) if rows else None


def plot_learning_curves(history: Sequence[Mapping], title: str | None = None) -> Figure:
    """Error (%) and loss per epoch: training (augmented, dropout on, averaged over the epoch)
    and validation; training images in test mode too where the run measured them. Dotted
    lines: the learning rate was lowered before that epoch."""
    figure = Figure(figsize=(10, 3.8))
    error_axis, loss_axis = figure.subplots(1, 2)
    lines = [(error_axis, "train_error", 100, "training (running, augmented)", TRAIN_COLOUR, "-"),
             (error_axis, "train_eval_top1", 100, "training images, test mode", TRAIN_EVAL_COLOUR, "-"),
             (error_axis, "val_top1", 100, "validation top-1", VAL_COLOUR, "-"),
             (error_axis, "val_top5", 100, "validation top-5", VAL_COLOUR, "--"),
             (loss_axis, "train_loss", 1, "training (running, augmented)", TRAIN_COLOUR, "-"),
             (loss_axis, "val_loss", 1, "validation", VAL_COLOUR, "-")]
    for axis, key, scale, label, colour, style in lines:
        series = _series(history, key, scale)
        if series is not None:
            axis.plot(*series, style, color=colour, label=label, marker="o" if len(series[0]) < 15 else None,
                      markersize=3)
    by_epoch = {int(row["epoch"]): row for row in history}
    for axis in (error_axis, loss_axis):
        for index, epoch in enumerate(lr_drop_epochs(history)):
            axis.axvline(epoch - 0.5, color=DROP_COLOUR, lw=0.9, ls=":",
                         label="learning rate lowered" if index == 0 else None)
            axis.text(epoch - 0.3, 0.98, f"lr {by_epoch[epoch]['lr']:g}", transform=axis.get_xaxis_transform(),
                      fontsize=6, color=DROP_COLOUR, va="top")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    error_axis.set_ylabel("error %")
    loss_axis.set_ylabel("cross-entropy loss")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------------
# Fig. 4: query images and their nearest training images
# ---------------------------------------------------------------------------


def _class_label(label, class_names: Sequence[str] | None) -> str:
    if label is None:
        return ""
    name = class_names[int(label)] if class_names is not None and 0 <= int(label) < len(class_names) else None
    return name if name is not None else f"class {int(label)}"


def plot_neighbours(query_images, neighbour_images, *, query_labels=None, neighbour_labels=None,
                    class_names: Sequence[str] | None = None, distances=None, title: str | None = None,
                    image_inches: float = 1.1) -> Figure:
    """Fig. 4: each query image (first column) and its k nearest training images, nearest first.

    ``query_images`` uint8 [Q,H,W,3]; ``neighbour_images`` uint8 [Q,k,H,W,3]; labels ([Q], [Q,k]),
    class names and distances ([Q,k]) are optional captions. A neighbour of another class than
    its query is captioned in red.
    """
    query_images, neighbour_images = np.asarray(query_images), np.asarray(neighbour_images)
    n_queries, k = neighbour_images.shape[:2]
    height = n_queries * (image_inches + 0.25) + (0.9 if title else 0.4)
    figure = Figure(figsize=((k + 1) * image_inches + 0.2, height))
    axes = figure.subplots(n_queries, k + 1, squeeze=False, gridspec_kw={
        "wspace": 0.05, "hspace": 0.35, "width_ratios": [1.15] + [1] * k, "left": 0.02, "right": 0.98,
        "bottom": 0.2 / height, "top": 1 - (0.75 if title else 0.3) / height})
    for row in range(n_queries):
        query_label = None if query_labels is None else query_labels[row]
        _show(axes[row, 0], query_images[row], _class_label(query_label, class_names), "black", frame="black")
        for column in range(k):
            label = None if neighbour_labels is None else neighbour_labels[row][column]
            caption = _class_label(label, class_names)
            if distances is not None:
                caption = f"{caption} {distances[row][column]:.3g}".strip()
            other = label is not None and query_label is not None and int(label) != int(query_label)
            _show(axes[row, column + 1], neighbour_images[row, column], caption, "red" if other else "black")
    axes[0, 0].set_title("query (val)", fontsize=8, pad=12)
    axes[0, 1].set_title(f"{k} nearest training images by FC7 distance", fontsize=8, pad=12, loc="left")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def _show(axis, image, caption: str, colour: str, frame: str | None = None) -> None:
    axis.imshow(image, interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_linewidth(2)
            spine.set_color(frame)
    axis.set_xlabel(caption[:24], fontsize=6, color=colour, labelpad=1)


# ---------------------------------------------------------------------------
# per-class errors
# ---------------------------------------------------------------------------


def plot_per_class_errors(errors, class_names: Sequence[str] | None = None, title: str | None = None,
                          most: int = 50, views: str = "") -> Figure:
    """Top-1 error of every class, hardest first, as horizontal bars; the mean over classes dotted.
    ``views``: how the errors were measured, for the axis label (e.g. "ten crops").

    ``errors`` [C] in [0, 1] (NaN: a class without validation images, left out and counted
    in the title). More than ``most`` classes: the ``most // 2`` hardest and easiest.
    """
    errors = np.asarray(errors, dtype=np.float64)
    names = list(class_names) if class_names is not None and len(class_names) == len(errors) else None
    measured = np.flatnonzero(~np.isnan(errors))
    order = measured[np.argsort(-errors[measured], kind="stable")]
    shown = order if len(order) <= most else np.concatenate([order[:most // 2], order[-(most // 2):]])
    labels = [names[i] if names else f"class {i}" for i in shown]
    figure = Figure(figsize=(7, 0.8 + 0.18 * len(shown)))
    axis = figure.subplots()
    positions = np.arange(len(shown))[::-1]
    axis.barh(positions, 100 * errors[shown], color=VAL_COLOUR, height=0.75)
    axis.set_yticks(positions, labels, fontsize=7 if len(shown) <= 20 else 5)
    if len(shown) < len(order):  # a gap between the hardest and the easiest
        axis.axhline(len(shown) - most // 2 - 0.5, color="black", lw=0.8, ls="--")
    mean = 100 * errors[measured].mean() if len(measured) else float("nan")
    axis.axvline(mean, color="black", lw=0.9, ls=":", label=f"mean over classes {mean:.1f}%")
    axis.set_xlabel("top-1 error % on the class's validation images" + (f" ({views})" if views else ""))
    axis.set_ylim(-0.6, len(shown) - 0.4)
    axis.legend(fontsize=7, loc="lower right")
    notes = []
    if len(shown) < len(order):
        notes.append(f"the {most // 2} hardest and {most // 2} easiest of {len(order)} classes")
    if len(measured) < len(errors):
        left_out = len(errors) - len(measured)
        notes.append(f"{left_out} class{'es' if left_out != 1 else ''} without validation images left out")
    axis.set_title("; ".join(notes), fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
