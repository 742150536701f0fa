"""Notebook 10: Fig. 4, the nearest training images in FC7 space (Section 6.1).

Section 6.1: "If two images produce feature activation vectors with a small Euclidean separation,
we can say that the higher levels of the neural network consider them to be similar. Figure 4
shows five images from the test set and the six images from the training set that are most similar
to each of them according to this measure. Notice that at the pixel level, the retrieved training
images are generally not close in L2 to the query images."

Every baseline net of the paired protocol stores, when it finishes (``engine.final``), the six
nearest training images by Euclidean distance of FC7 activations (centre crop) of 500 validation
queries spread over the classes by a fixed seed, the same queries at every seed (artifacts
``neighbour_queries``: rows of the validation split; ``neighbours``: rows of the training split,
nearest first; ``neighbour_distances``: their FC7 distances). Here the same queries' nearest
training images in *pixel* space (Euclidean distance of the centre crops the net sees), and two
numbers per seed: how often the six FC7 neighbours share the query's class against the six pixel
neighbours (paired by seed), and where the FC7 neighbours rank among all training images by pixel
distance to their query (0%: the closest in pixels; a random training image: 50%).

Both need the images, which a clone of the repository does not have. So what this notebook derives
from them is stored beside the run, like a run (``neighbours_record``: ``<store>/neighbours/<run
id>.json``, the numbers and the labels of every query's neighbours; ``figure_sheet``:
``<run id>.fig4.npz`` and its sealed ``.json``, the thumbnails of the queries drawn), and a committed
report re-executes from them without the dataset.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from replication import claims
from replication.claims import Claim, register
from replication.data.augment import ten_crop_offsets
from replication.data.splits import load_data
from replication.engine import figures, runs as run_store
from replication.experiments import baselines
from replication.paths import atomic_file
from replication.experiments.paired import (IMAGENET, Arms, Measured, available, fetch_arms, plan_arms, recipe,
                                           scale, with_stopping)

NOTEBOOK = "10_neighbours"
NOT_CLOSE_FLOOR = 10.0  # percent: FC7 neighbours beyond the pixel-nearest tenth of the training set
AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00): the finished baseline nets of the profile's "
                "ImageNet stand-in (Imagenette below the paper profile, 112 px centre crops), FC7 of the recipe's "
                "width; the paper's nets are 90 epochs at full width, FC7 of 4,096 units, on 1.2 million "
                "training images.")

register(Claim(
    id="neighbours.label_agreement", notebook=NOTEBOOK,
    statement="The training images nearest a query in FC7 space are alike to the net (Fig. 4): made a number, "
              "they share the query's class more often than the images nearest it in pixel space",
    paper_value=None, paper_display="FC7 neighbours look alike (Fig. 4; no number given)",
    source={"section": "6.1", "figure": "Fig. 4"}, unit="percentage points",
    rule="paired_direction_only", params={"sign": 1},
    note="Per seed: the share of the six nearest training images (Euclidean, FC7, centre crop) of each of the "
         "stored queries that have the query's class, minus the same share for the six nearest in pixel space "
         "(Euclidean on the centre crops; the same for every seed), in percentage points, paired by seed. "
         + AT_OUR_SCALE,
))
register(Claim(
    id="neighbours.not_close_in_l2", notebook=NOTEBOOK,
    statement="At the pixel level, the training images retrieved by FC7 are generally not close in L2 to the query",
    paper_value=None, paper_display="not close in L2 (no number given)",
    source={"section": "6.1", "figure": "Fig. 4"}, unit="percent", rule="seeded_above",
    params={"floor": NOT_CLOSE_FLOOR},
    note="Per seed: for each FC7 neighbour of each query, the share of all training images closer to the query "
         "in pixel L2 (centre crops) than that neighbour, averaged (0%: the pixel-nearest image; a random training "
         "image sits at 50%). Reproduced when the 95% interval over seeds lies above 10%: the retrieved images "
         "are not among the pixel-nearest tenth of the training set. (The ratio of their pixel distance to the "
         "pixel neighbours' is at least 1 by construction, so it is shown, not judged.) " + AT_OUR_SCALE,
))
DATASETS = {IMAGENET: "the ImageNet stand-in"}


def plan(params: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{IMAGENET: {"baseline": [...]}}``: the baseline nets store their FC7 neighbours."""
    return {key: plan_arms(params, key, []) for key in in_memory(params)}


def in_memory(params: Mapping[str, Any]) -> list[str]:
    """The profile's datasets (``available``); a streamed one (ILSVRC at the paper profile) is an error:
    its nets store no neighbours (``engine.final``) and its images are not in memory for pixel space."""
    keys = available(params, DATASETS)
    streamed = [recipe(params, key).label for key in keys if recipe(params, key).stream]
    if streamed:
        raise ValueError(f"notebook 10 needs images in memory, and {', '.join(streamed)} is streamed at the "
                         f"{params['profile']} profile: its baselines store no FC7 neighbours (engine/final.py); "
                         "run it at the smoke or cpu profile")
    return keys


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """The baselines' runs (trained when missing), their neighbours in both spaces, and the claims."""
    got = {key: fetch_arms(params, key, [], progress) for key in in_memory(params)}
    return Measured(got, claims_of(got, params))


# ---------------------------------------------------------------------------
# The images and their distances in pixel space
# ---------------------------------------------------------------------------

_SPLITS: dict[tuple, tuple] = {}     # (dataset, variant, size) -> (train, val): loaded once a notebook
_DISTANCES: dict[tuple, np.ndarray] = {}  # (dataset, variant, size, crop, queries) -> [Q, N] pixel distances


def images_of(run):
    """``(train, val)`` splits of a run's data (``data.splits.load_data`` of its config: the rows
    its neighbours index), loaded once per dataset."""
    c = run.config
    if c.holdout_per_class or c.train_per_class is not None or c.val_per_class is not None:
        raise ValueError(f"run {run.hash}: its training split is a subset; the neighbours are stored for baselines")
    key = (c.dataset, c.data_variant, c.image_size)
    if key not in _SPLITS:
        _SPLITS[key] = load_data(c)
    return _SPLITS[key]


def distances_of(run) -> np.ndarray:
    """``pixel_distances`` [Q, N] of a run's stored queries to every training image (computed once
    per set of queries: every seed has the same)."""
    c, queries = run.config, run.artifact("neighbour_queries")
    key = (c.dataset, c.data_variant, c.image_size, c.crop, queries.tobytes())
    if key not in _DISTANCES:
        train, val = images_of(run)
        _DISTANCES[key] = pixel_distances(val.images[torch.from_numpy(queries)], train.images, c.crop)
    return _DISTANCES[key]


def pixel_distances(query_images, train_images, crop: int, chunk: int = 1024) -> np.ndarray:
    """Euclidean distances [Q, N] between the centre ``crop`` of each query and of each training
    image (uint8 [*, H, W, 3]) on the 0..1 pixel scale, in chunks of the training images.

    The training images' mean is subtracted first, as the net's input is (Section 2); it changes no
    distance, and with float64 keeps |q|^2 - 2 q.d + |d|^2 exact enough that near ties rank alike
    on every CPU (the ranks and label agreements here are compared digit for digit by nbval).
    """
    top, left, _ = ten_crop_offsets(train_images.shape[1], train_images.shape[2], crop)[4]

    def vectors(batch):
        batch = torch.as_tensor(np.asarray(batch))[:, top:top + crop, left:left + crop]
        return batch.reshape(len(batch), -1).to(torch.float64) / 255.0

    n = len(train_images)
    with torch.inference_mode():
        mean = sum(vectors(train_images[i:i + chunk]).sum(0) for i in range(0, n, chunk)) / n
        q = vectors(query_images) - mean
        q_norm = (q * q).sum(1, keepdim=True)
        out = np.empty((len(q), n), dtype=np.float64)
        for start in range(0, n, chunk):
            d = vectors(train_images[start:start + chunk]) - mean
            squared = (q_norm - 2.0 * q @ d.T + (d * d).sum(1)[None, :]).clamp_min_(0.0)
            out[:, start:start + len(d)] = squared.sqrt().numpy()
    return out


def pixel_neighbours(distances: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` columns of smallest distance per row, nearest first (ties: lower index first)."""
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def rank_percent(distances: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """[Q, k]: the share (percent) of all training images closer to the query than each neighbour."""
    chosen = np.take_along_axis(distances, neighbours, axis=1)
    return 100.0 * (distances[:, None, :] < chosen[:, :, None]).mean(axis=2)


def neighbour_numbers(run, distances: np.ndarray, train_labels, val_labels) -> dict:
    """One net's numbers: label agreement (percent) of its FC7 neighbours and of the pixel
    neighbours, the mean pixel distance of each and of all training images, and the FC7
    neighbours' pixel-distance rank (percent)."""
    queries, fc7 = run.artifact("neighbour_queries"), run.artifact("neighbours")
    pixels = pixel_neighbours(distances, fc7.shape[1])
    train_labels, query_labels = np.asarray(train_labels), np.asarray(val_labels)[queries]
    mean_distance = lambda cols: float(np.take_along_axis(distances, cols, axis=1).mean())  # noqa: E731
    return {"fc7_agreement": 100.0 * claims.neighbour_label_agreement(query_labels, train_labels[fc7]),
            "pixel_agreement": 100.0 * claims.neighbour_label_agreement(query_labels, train_labels[pixels]),
            "fc7_pixel_distance": mean_distance(fc7), "pixel_pixel_distance": mean_distance(pixels),
            "any_pixel_distance": float(distances.mean()), "fc7_rank": float(rank_percent(distances, fc7).mean()),
            "queries": len(queries), "k": fc7.shape[1]}


def numbers_of(runs: Sequence) -> list[dict]:
    """``neighbour_numbers`` of each net, from its stored record (``neighbours_record``)."""
    return [neighbours_record(run)["numbers"] for run in runs]


# ---------------------------------------------------------------------------
# What the images give, stored beside the run
# ---------------------------------------------------------------------------

RECORD_VERSION = 1   # bump when what a record holds or how it is computed changes
SHEET_SIZE = 64      # px: the thumbnails of a stored Fig. 4 sheet (the paper's Fig. 4 shows them smaller)


def record_path(run, suffix: str) -> Path | None:
    """``<store>/neighbours/<run id><suffix>`` beside the store that holds ``run`` (None for a run
    that is not stored: its records are computed and not kept)."""
    if getattr(run, "path", None) is None:
        return None
    return Path(run.path).parent / "neighbours" / f"{run.hash}{suffix}"


def stored_or_computed(run, suffix: str, wanted: Mapping[str, Any], compute: Callable[[], dict]) -> dict:
    """The sealed record ``<run id><suffix>`` when it is stored and matches ``wanted`` (and this
    module's RECORD_VERSION); else ``compute()``d from the images and stored (``baselines.stored_record``).
    A project store that is read-only (``REPLICATION_STORE_READONLY``, CI) refuses to compute it,
    naming the file to commit."""
    path = record_path(run, suffix)
    head = {"version": RECORD_VERSION, "run": run.hash, **wanted}
    if path is None:  # a run that is not stored: computed, not kept
        return baselines.seal({**head, **compute()})
    refusal = None
    if run_store.read_only() and path.parent.parent.resolve() != run_store.scratch_store_dir().resolve():
        refusal = run_store.RunNotStoredError(
            f"{path} (what notebook 10 derives from run {run.hash}'s images) is missing or out of date, and "
            "REPLICATION_STORE_READONLY=1 forbids computing it here; execute notebook 10 with the dataset "
            f"(`python -m replication data prepare {run.config.dataset}`) and commit {path.parent}/")
    return baselines.stored_record(path, lambda: {**head, **compute()}, refusal,
                                   current=lambda record: all(record.get(k) == v for k, v in head.items()))


def neighbours_record(run) -> dict:
    """A baseline net's neighbours in both spaces: ``numbers`` (``neighbour_numbers``), its queries'
    labels, the pixel neighbours of every query, both neighbour sets' labels and the class names."""
    def compute() -> dict:
        train, val = images_of(run)
        distances = distances_of(run)
        train_labels = train.labels.numpy()
        queries, fc7 = run.artifact("neighbour_queries"), run.artifact("neighbours")
        pixels = pixel_neighbours(distances, fc7.shape[1])
        return {"numbers": neighbour_numbers(run, distances, train_labels, val.labels.numpy()),
                "query_labels": val.labels.numpy()[queries].tolist(), "pixel_neighbours": pixels.tolist(),
                "fc7_labels": train_labels[fc7].tolist(), "pixel_labels": train_labels[pixels].tolist(),
                "class_names": list(train.class_names)}

    return stored_or_computed(run, ".json", {}, compute)


def thumbnails(images, size: int = SHEET_SIZE) -> np.ndarray:
    """uint8 [n, H, W, 3] images as uint8 [n, size, size, 3] (antialiased bilinear)."""
    batch = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).to(torch.float32)
    small = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)
    return small.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def figure_sheet(run, rows: Sequence[int]) -> dict[str, np.ndarray]:
    """The thumbnails Fig. 4 draws for ``rows`` (positions in the run's stored queries): ``queries``
    [R, s, s, 3], and ``fc7`` and ``pixels`` [R, k, s, s, 3], the neighbours in each space, nearest
    first; stored as ``<run id>.fig4.npz`` with a sealed ``.fig4.json`` holding its sha256."""
    rows = [int(r) for r in rows]
    path = record_path(run, ".fig4.npz")
    arrays: dict[str, np.ndarray] = {}

    def compute() -> dict:
        train, val = images_of(run)
        queries, fc7 = run.artifact("neighbour_queries"), run.artifact("neighbours")
        pixels = np.asarray(neighbours_record(run)["pixel_neighbours"])
        neighbour_thumbs = lambda found: thumbnails(train.images[torch.from_numpy(found[rows].ravel())]) \
            .reshape(len(rows), found.shape[1], SHEET_SIZE, SHEET_SIZE, 3)  # noqa: E731
        arrays.update(queries=thumbnails(val.images[torch.from_numpy(queries[rows])]),
                      fc7=neighbour_thumbs(fc7), pixels=neighbour_thumbs(pixels))
        if path is None:
            return {}
        with atomic_file(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        return {"file": path.name, "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

    record = stored_or_computed(run, ".fig4.json", {"rows": rows, "size": SHEET_SIZE}, compute)
    if arrays:
        return arrays
    if hashlib.sha256(path.read_bytes()).hexdigest() != record["file_sha256"]:
        raise run_store.StoreError(f"{path} is not the sheet that was stored (its sha256 does not match the one in "
                                   f"{path.with_suffix('.json').name}); restore it from git, or delete both to "
                                   "compute them again from the dataset")
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in ("queries", "fc7", "pixels")}


def claims_of(got: Mapping[str, Arms], params: Mapping[str, Any]) -> dict[str, dict]:
    arms = got[IMAGENET]
    numbers = numbers_of(arms.runs["baseline"])
    k, queries = numbers[0]["k"], numbers[0]["queries"]
    return {
        "neighbours.label_agreement": {
            "measurement": with_stopping(claims.paired_measurement([n["fc7_agreement"] for n in numbers],
                                                                   [n["pixel_agreement"] for n in numbers],
                                                                   arms.seeds), arms, "baseline"),
            "scale": scale(arms, f"{k} neighbours of {queries} val queries; FC7 minus pixel label agreement, "
                                 "paired by seed")},
        "neighbours.not_close_in_l2": {
            "measurement": with_stopping(claims.seeded_measurement([n["fc7_rank"] for n in numbers], arms.seeds),
                                         arms, "baseline"),
            "scale": scale(arms, f"{k} FC7 neighbours of {queries} val queries; their rank by pixel L2 among "
                                 "the training images")},
    }


# ---------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------

def numbers_table(arms: Arms) -> pd.DataFrame:
    """Per seed: label agreement in both spaces, the pixel distances of the FC7 neighbours, of the
    pixel neighbours and of a typical training image, and the FC7 neighbours' pixel rank."""
    rows = []
    for run, n in zip(arms.runs["baseline"], numbers_of(arms.runs["baseline"])):
        rows.append({"seed": run.config.seed, "same class, FC7 %": f"{n['fc7_agreement']:.1f}",
                     "same class, pixels %": f"{n['pixel_agreement']:.1f}",
                     "pixel L2: FC7 nbrs / pixel nbrs": f"{n['fc7_pixel_distance'] / n['pixel_pixel_distance']:.2f}",
                     "pixel L2: any image / pixel nbrs": f"{n['any_pixel_distance'] / n['pixel_pixel_distance']:.2f}",
                     "FC7 nbrs' pixel rank %": f"{n['fc7_rank']:.1f}"})
    return pd.DataFrame(rows).set_index("seed")


def figure_rows(run, count: int = 6, seed: int = 0) -> np.ndarray:
    """Positions (in the run's stored queries) of ``count`` queries for the figure, spread over the
    classes by ``seed`` (``figures.spread_queries``), not the first rows."""
    return figures.spread_queries(np.asarray(neighbours_record(run)["query_labels"]), count, seed)


def plot_neighbours(run, rows: Sequence[int], space: str = "fc7"):
    """Fig. 4: each chosen query (left column) and its nearest training images, nearest first, in
    FC7 space (the run's stored neighbours) or in pixel space (``space="pixels"``), drawn from the
    stored sheet (``figure_sheet``). A neighbour's frame is green when it has the query's class, red
    otherwise."""
    if space not in ("fc7", "pixels"):
        raise ValueError(f"space {space!r}: 'fc7' or 'pixels'")
    record, sheet = neighbours_record(run), figure_sheet(run, rows)
    names, labels = record["class_names"], np.asarray(record["fc7_labels" if space == "fc7" else "pixel_labels"])
    k = labels.shape[1]
    figure = Figure(figsize=(1.3 * (k + 1), 1.45 * len(rows) + 0.4), layout="constrained")
    axes = figure.subplots(len(rows), k + 1, squeeze=False)
    for line, row in enumerate(rows):
        query_label = int(record["query_labels"][row])
        cells = [(sheet["queries"][line], query_label, "query")] + [
            (sheet[space][line, j], int(labels[row, j]), None) for j in range(k)]
        for column, (image, label, what) in enumerate(cells):
            ax = axes[line, column]
            ax.imshow(image)
            ax.set_xticks([]), ax.set_yticks([])
            colour = "black" if what else ("tab:green" if label == query_label else "tab:red")
            for spine in ax.spines.values():
                spine.set_edgecolor(colour), spine.set_linewidth(2.5 if what is None else 1)
            ax.set_title(f"{what + ': ' if what else ''}{names[label]}"[:22], fontsize=6)
    figure.suptitle(f"seed {run.config.seed}: the {k} nearest training images in "
                    f"{'FC7 space' if space == 'fc7' else 'pixel space (L2, centre crop)'}", fontsize=9)
    return figure
