"""The figures of one stored run, one PNG each (``python -m replication figures``).

Every figure is drawn from what the run store holds (``runs/<hash>/``): the per-epoch metrics,
and the artifacts ``engine.final`` stored when the net finished training. Fig. 4's artifacts are
row indices (of the validation split for the queries, of the training split for their
neighbours), so its images are read back from the dataset the run read, with the same subsets
(``data.splits.load_image_splits``: memory-mapped, only the shown rows are touched).

A figure whose artifact the run did not store is skipped with a one-line note naming the config
setting that stores it; a dataset that is not on this machine is an error for Fig. 4 only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from replication.data.registry import DataError
from replication.data.splits import load_data, load_image_splits
from replication.engine import figures, plots

FIGURES = ("curves", "kernels", "neighbours", "classes")
FILE_NAMES = {"curves": "learning_curves.png", "kernels": "conv1_kernels.png", "neighbours": "neighbours.png",
              "classes": "per_class_error.png"}
# the artifacts each figure needs, and the config setting that makes a run store them
NEEDS = {"kernels": (("conv1",), "save_conv1: true"),
         "neighbours": (("neighbour_queries", "neighbours"),
                        "neighbours_k > 0 (Fig. 4: 6) and neighbour_queries > 0, with in-memory data (stream: false)"),
         "classes": (("per_class_error",), "per_class_error: true")}


@dataclass
class Drawn:
    """What became of one figure: its PNG, or a note (skipped or drawn with a caveat), or an error."""

    figure: str
    path: Path | None = None
    note: str | None = None
    error: str | None = None


def missing_artifacts(run, figure: str) -> str | None:
    """One line saying what ``figure`` needs that ``run`` did not store, or None."""
    names, setting = NEEDS.get(figure, ((), ""))
    missing = [name for name in names if name not in run.artifact_names]
    if not missing:
        return None
    return (f"not drawn: run {run.hash} stores no {' or '.join(missing)} artifact "
            f"(a run stores it when its config sets {setting})")


def dataset_splits(config):
    """The training and validation splits ``config``'s run read, rows in the same order
    (cached datasets memory-mapped; synthetic ones rebuilt; streamed ones listed, not decoded)."""
    if config.dataset == "synthetic" or config.stream:
        return load_data(config)
    return load_image_splits(config, progress=True)


class RunData:
    """A run's dataset splits, read on first use and checked against the run's summary."""

    def __init__(self, run):
        self.run = run
        self._splits = None
        self._error: DataError | None = None  # raised again, not looked up again

    def splits(self):
        if self._error is not None:
            raise self._error
        if self._splits is None:
            try:
                self._splits = self._read()
            except DataError as error:
                self._error = error
                raise
        return self._splits

    def _read(self):
        train, val = dataset_splits(self.run.config)
        for split, key in ((train, "train_images"), (val, "val_images")):
            stored = self.run.summary.get(key)
            if stored is not None and len(split) != stored:
                raise DataError(
                    f"the {key.split('_')[0]} split of {self.run.config.dataset!r} read here has {len(split)} "
                    f"images, but run {self.run.hash} trained with {stored}: its stored indices would point at "
                    "other images. Use the data release the run recorded (data_variant "
                    f"{self.run.config.data_variant!r} in its config.json)")
        return train, val

    def class_names(self) -> list[str] | None:
        """The training split's class names, or None when the dataset is not on this machine."""
        try:
            return list(self.splits()[0].class_names)
        except DataError:
            return None


def rows(images, indices) -> np.ndarray:
    """Rows ``indices`` (any shape) of an image array or tensor [N,H,W,3] as uint8 [..., H, W, 3]."""
    indices = np.asarray(indices, dtype=np.int64)
    flat = indices.reshape(-1)
    picked = images[torch.from_numpy(flat)] if isinstance(images, torch.Tensor) else images[flat]
    picked = picked.numpy() if isinstance(picked, torch.Tensor) else np.asarray(picked)
    return picked.reshape(*indices.shape, *picked.shape[1:])


def _title(run, what: str) -> str:
    arch = run.config.model.get("arch", "?")
    return f"run {run.hash}: {what}\n{run.config.dataset}, {arch}, {len(run.history)} epochs"


def draw_curves(run, data: RunData, queries: int):
    return plots.plot_learning_curves(run.history, title=_title(run, "learning curves")), None


def draw_kernels(run, data: RunData, queries: int):
    """Fig. 3 from the stored conv1 weights [towers,K,3,h,w]."""
    return figures.plot_conv1_kernels(run.artifact("conv1"), title=_title(run, "Fig. 3, conv1 kernels")), None


def draw_neighbours(run, data: RunData, queries: int):
    """Fig. 4: the first ``queries`` stored queries (spread over the classes when the run drew
    them by seed) and their stored nearest training images, read from the dataset."""
    query_rows = run.artifact("neighbour_queries")[:queries]
    neighbour_rows = run.artifact("neighbours")[:queries]
    distances = run.artifact("neighbour_distances")[:queries] if "neighbour_distances" in run.artifact_names else None
    try:
        train, val = data.splits()
    except DataError as error:
        raise DataError(f"run {run.hash} stores the indices of Fig. 4's images, not the images; they are read from "
                        f"the dataset {run.config.dataset!r}, which could not be read here:\n{error}") from None
    for name, split, stored in (("neighbour", train, neighbour_rows), ("query", val, query_rows)):
        if len(stored) and int(stored.max()) >= len(split):
            raise DataError(f"a stored {name} index ({int(stored.max())}) is beyond the {len(split)} images of "
                            f"{run.config.dataset!r} read here: not the data run {run.hash} read")
    figure = plots.plot_neighbours(
        rows(val.images, query_rows), rows(train.images, neighbour_rows),
        query_labels=rows(val.labels, query_rows), neighbour_labels=rows(train.labels, neighbour_rows),
        class_names=train.class_names, distances=distances,
        title=_title(run, "Fig. 4, nearest training images by FC7 features"))
    return figure, None


def draw_classes(run, data: RunData, queries: int):
    errors = run.artifact("per_class_error")
    names = data.class_names()
    note = None
    if names is None:
        note = f"class names unknown (dataset {run.config.dataset!r} not readable here): bars labelled by class number"
    elif len(names) != len(errors):
        note = (f"class names unknown ({run.config.dataset!r} read here has {len(names)} classes, the run stored "
                f"{len(errors)} errors): bars labelled by class number")
        names = None
    views = "ten crops" if run.config.ten_crop else "centre crop"  # engine.final: the ten-crop result when measured
    return plots.plot_per_class_errors(errors, names, title=_title(run, "top-1 error per class"), views=views), note


DRAW: dict[str, Callable] = {"curves": draw_curves, "kernels": draw_kernels, "neighbours": draw_neighbours,
                             "classes": draw_classes}


def draw_run(run, out_dir: Path, only: Iterable[str] = FIGURES, queries: int = 8,
             report: Callable[[Drawn], None] = lambda drawn: None) -> list[Drawn]:
    """Draw the figures ``only`` of ``run`` into ``out_dir`` (one PNG each, written atomically);
    ``report`` is called once per figure as it is done."""
    data, outcomes = RunData(run), []
    for name in only:
        if name not in DRAW:
            raise ValueError(f"unknown figure {name!r}; the figures are {', '.join(FIGURES)}")
        note = missing_artifacts(run, name)
        if note is not None:
            drawn = Drawn(name, note=note)
        else:
            try:
                figure, note = DRAW[name](run, data, queries)
                drawn = Drawn(name, plots.save_png(figure, Path(out_dir) / FILE_NAMES[name]), note)
            except DataError as error:
                drawn = Drawn(name, error=str(error))
        outcomes.append(drawn)
        report(drawn)
    return outcomes
