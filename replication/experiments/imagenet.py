"""The ImageNet protocol of notebooks 03 (its Tiny ImageNet half), 04 and 05, at miniature scale.

The paper's protocol, at miniature scale and at full scale for users with GPUs:

- Section 2: images rescaled to a square, the mean training image subtracted;
- Section 4.1: random crops of 7/8 of the side (224 of 256; here 28 of 32 and 112 of 128) with
  horizontal reflections, PCA lighting; ten-patch testing;
- Section 4.2: dropout 0.5 in FC6 and FC7;
- Section 5: batch 128, the paper's SGD (momentum 0.9, weight decay 0.0005, lr 0.01, divided by 10);
- Section 6: top-1/top-5 error, centre patch and ten patches, five-net ensembles.

What runs where (the families of ``scales.SCALES``; ``cnn_config`` builds every net's ``TrainConfig``):

| profile | data | net |
|---|---|---|
| smoke | slices of Tiny ImageNet (32 px mirror) and Imagenette (128 px) | the cpu nets, one epoch |
| cpu   | all of Tiny ImageNet (100k images, 200 classes) and Imagenette (9,469, 10 classes) | 28 px family (5x5 stride-1 conv1) and 112 px family (the paper's 11x11 stride-4 conv1), narrow |
| paper | ILSVRC-2012 (``REPLICATION_IMAGENET``), streamed from JPEG | the paper's net: two towers (grouped), 224 crops with the ceil rule, 90 epochs |

Shared here: ``fetch`` (runs and baseline records from the store, trained when missing), the
ensemble of stored top-k outputs, ten-crop differences between two arms, the plan and budget tables
and the validation-curve plot the three notebooks draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from replication import claims
from replication.engine import evaluate, runs
from replication.engine.config import TrainConfig
from replication.experiments import baselines
from replication.experiments.baselines import BaselineConfig
from replication.experiments.scales import Family, scale_for
from replication.provenance import describe_machines

# The scale every claim of notebooks 04 and 05 is measured at, said in each claim's note.
AT_OUR_SCALE = ("Measured at miniature scale (Tiny ImageNet, 200 classes, 32 px images and 28 px crops, a "
                "narrow AlexNet); the paper's ILSVRC numbers themselves are evaluated by the paper profile only.")

#: Measured training throughput, images/s (fp32, 2 threads, batch 128, synthetic images of the
#: family's size; interleaved rounds of 3 steps, median, on a machine shared with another training
#: job). "free" normalises by the CPU time this process got (what two free cores give); "wall" is
#: what it got. It sets the cpu budget (``scales.SCALES``).
THROUGHPUT = {
    "tiny 28px width 0.25, 1 tower": {"free": 557, "wall": 435},
    "tiny 28px width 0.25, 2 towers": {"free": 716, "wall": 579},
    "tiny 28px width 0.5, 2 towers": {"free": 181, "wall": 117},
    "imagenette 112px width 0.25, 2 towers": {"free": 568, "wall": 482},
    "imagenette 112px width 0.5, 2 towers": {"free": 187, "wall": 117},
}


# ---------------------------------------------------------------------------
# The paper's recipe for one net
# ---------------------------------------------------------------------------

LRN_VARIANTS = ("paper", "none", "scale_only")


def cnn_config(family: Family, seed: int, pooling: str = "overlapping", epochs: int | None = None,
               precision: str = "fp32", lrn: str = "paper") -> TrainConfig:
    """The paper's recipe (Sections 2, 4.1, 4.2, 5) for one family, seed and pooling. ``lrn`` is
    Section 3.3's response normalisation ("paper"), none ("none"), or its constant part alone
    ("scale_only": alpha = 0, so b = a / k^beta): the arms notebook 03 compares."""
    if lrn not in LRN_VARIANTS:
        raise ValueError(f"lrn must be one of {LRN_VARIANTS}, got {lrn!r}")
    epochs = epochs or family.epochs
    model = {"arch": "alexnet", "width": family.width, "towers": family.towers, "pooling": pooling}
    # only the other arms name it, so the hashes of the paper's nets do not change
    if lrn == "none":
        model["lrn"] = None
    elif lrn == "scale_only":
        model["lrn_alpha"] = 0.0
    if family.schedule == "fixed":  # the paper's division by 10, once, after 80% of the epochs
        schedule = {"schedule": "fixed", "lr_drop_epochs": (drop_epoch(epochs),) if epochs > 1 else ()}
    else:  # the paper's rule: divide when the validation error stops improving, at most three times
        schedule = {"schedule": "plateau", "patience": 2, "max_lr_drops": 3}
    return TrainConfig(
        model=model, dataset=family.dataset, image_size=family.image_size,
        train_per_class=family.train_per_class, val_per_class=family.val_per_class,
        crop=family.crop, flip=True, lighting_std=0.1, lighting_eigen_scale="sqrt", mean_subtraction=True,
        optimizer="paper", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128,
        epochs=epochs, seed=seed, precision=precision, ten_crop=True, save_val_topk=10,
        train_eval_images=family.train_eval_images, stream=family.stream, input_scale=family.input_scale,
        init=family.init, data_variant=family.data_variant,
        **schedule,
    )


def drop_epoch(epochs: int) -> int:
    """After which epoch a short run divides the lr by 10: 80% of the way (5 -> 4, 15 -> 12).

    The paper divided three times in ~90 epochs, each time the validation error had stopped
    improving; in a few epochs it does not stop improving, so a short run divides once, late.
    """
    return max(1, min(epochs - 1, round(0.8 * epochs)))


def paper_config(seed: int = 0, pooling: str = "overlapping") -> TrainConfig:
    """The paper's full ILSVRC-2012 recipe (profiles/paper.yaml describes it)."""
    return cnn_config(scale_for("paper").family("imagenet"), seed, pooling)


def scale_entry(family: Family, configs: Sequence[TrainConfig], extra: str = "") -> dict:
    """The ``scale`` of a claim measured on these runs (every number states its scale)."""
    config = configs[0]
    variant = family.variant() + (f"; {extra}" if extra else "")
    return {"dataset": family.label, "variant": variant, "image_size": config.crop,  # the net's input
            "epochs": config.epochs, "precision": config.precision,
            "seeds": [c.seed for c in configs]}


# ---------------------------------------------------------------------------
# Getting the runs (train when missing)
# ---------------------------------------------------------------------------

def fetch(plan: Mapping[str, list], params: Mapping[str, Any], progress: bool = False) -> dict[str, list]:
    """The stored run (or baseline record) of every config in ``plan``; missing ones are trained.

    The smoke profile uses the uncommitted scratch store; the others the run store
    (read-only in CI, where a missing run is an error naming it).
    """
    scratch = params["profile"] == "smoke"
    out: dict[str, list] = {}
    for key, configs in plan.items():
        out[key] = [baselines.get(c, scratch=scratch) if isinstance(c, BaselineConfig)
                    else runs.get(c, progress=progress, device=params.get("device"), scratch=scratch)
                    for c in configs]
    return out


@dataclass
class Measured:
    """What an ImageNet-protocol notebook shows and records: its runs (and baseline records) by
    group, and ``{claim_id: {"measurement", "scale"}}``."""

    runs: dict[str, list]
    claims: dict[str, dict]


# ---------------------------------------------------------------------------
# Measurements shared by the notebooks
# ---------------------------------------------------------------------------

def pct(value: float) -> float:
    return 100.0 * float(value)


def ensemble_probs_from_topk(members: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(averaged softmax [N, C], labels) of runs that stored their top-k outputs (``save_val_topk``).

    Each member's output is rebuilt from its k largest probabilities (the rest count as 0) and the
    members are averaged by the paper's ensemble, ``evaluate.ensemble_probs``. The average is exact
    for every class in some member's top k, and a class outside all members' top 10 cannot reach
    the ensemble's top 5 unless its true mean exceeds values we kept: with k = 10 the ensemble's
    top-1/top-5 match the full average except for rare near-ties.
    """
    labels = members[0].artifact("val_labels").astype(np.int64)
    classes = int(members[0].summary["classes"])
    outputs = []
    for run in members:
        if not np.array_equal(run.artifact("val_labels").astype(np.int64), labels):
            raise ValueError(f"run {run.hash} was evaluated on other validation images")
        probs = np.zeros((len(labels), classes), dtype=np.float32)
        np.put_along_axis(probs, run.artifact("val_topk_classes").astype(np.int64),
                          run.artifact("val_topk_probs").astype(np.float32), axis=1)
        outputs.append(probs)
    return evaluate.ensemble_probs(outputs), labels


def ten_crop_differences(first: Sequence, second: Sequence, claim_ids: Sequence[str],
                         scale: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """Ten-crop top-1 and top-5 error of ``first`` minus ``second`` (two arms of different nets on the
    same seeds), in points, with Welch's interval: ``{claim_ids[0]: top-1, claim_ids[1]: top-5}``."""
    seeds = [r.config.seed for r in first]
    return {claim_id: {"measurement": claims.difference_measurement(
                [pct(r.summary[key]) for r in first], [pct(r.summary[key]) for r in second], seeds),
                "scale": scale}
            for claim_id, key in zip(claim_ids, ("ten_crop_top1", "ten_crop_top5"))}


# ---------------------------------------------------------------------------
# Tables and figures shared by the notebooks
# ---------------------------------------------------------------------------

def mean_ci(values: Sequence[float]) -> str:
    mean = sum(values) / len(values)
    interval = claims.t_interval(values)
    if interval is None:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {(interval[1] - interval[0]) / 2:.1f}"


def plan_table(plan: Mapping[str, list]):
    """What a notebook trains: one row per family of runs (dataset, net, crops, epochs, seeds) or baseline."""
    rows = []
    for key, configs in plan.items():
        for config in configs if key == "baselines" else configs[:1]:
            if isinstance(config, BaselineConfig):
                detail = ("linear softmax on mean-subtracted pixels" if config.kind == "softmax_pixels" else
                          f"{config.centroids} k-means centroids of whitened {config.patch}×{config.patch} "
                          f"patches, triangle code, 4-quadrant pooling, softmax")
                subset = "all" if config.train_per_class is None else f"{config.train_per_class}/class"
                rows.append({"runs": f"baseline: {config.kind}", "dataset": config.dataset,
                             "model": detail, "images": f"{config.image_size} px, train {subset}",
                             "epochs": str(config.epochs), "seeds": "—"})
                continue
            model = config.model
            subset = "all" if config.train_per_class is None else f"{config.train_per_class}/class"
            rows.append({"runs": key if key in ("overlapping", "non_overlapping") else f"CNN: {key.replace('_', ' ')}",
                         "dataset": config.dataset,
                         "model": f"AlexNet width {model['width']:g}, {model['towers']} towers, "
                                  f"{model['pooling']} pooling",
                         "images": f"{config.image_size} px, {config.crop} px crops, train {subset}",
                         "epochs": f"{config.epochs} (lr/10 after {', '.join(map(str, config.lr_drop_epochs)) or '—'})"
                                   if config.schedule == "fixed" else f"{config.epochs} (plateau)",
                         "seeds": ", ".join(str(c.seed) for c in configs)})
    return pd.DataFrame(rows).set_index("runs")


def interval_sentence(entry: Mapping[str, Any], subject: str = "overlapping pooling") -> str:
    """Whether a recorded difference's 95% interval resolves the effect, in words; ``subject`` is
    what the difference measures (its first group: "overlapping pooling", "the error without LRN")."""
    measured = entry["measured"]
    if measured is None:
        return "not measured at this profile"
    seeds = len(measured.get("seeds") or [])
    value = measured["value"]
    if not measured.get("ci95"):
        return f"{value:+.2f} pp from {seeds} seed{'s' if seeds != 1 else ''}: no interval, so no verdict"
    low, high = measured["ci95"]
    if low <= 0.0 <= high:
        return (f"{value:+.2f} pp, 95% interval [{low:+.2f}, {high:+.2f}] spans zero: "
                f"{seeds} seeds do not resolve an effect of this size")
    side = "lower" if high < 0 else "higher"
    return (f"{value:+.2f} pp, 95% interval [{low:+.2f}, {high:+.2f}] excludes zero: {subject} is "
            f"resolved as {side}")


def interval_sentences(report, claim_ids: Sequence[str], subject: str = "overlapping pooling"):
    """One sentence per claim: does the interval over seeds resolve the effect?"""
    rows = [{"claim": cid, "what the interval says": interval_sentence(report.entries[cid], subject)}
            for cid in claim_ids if cid in report.entries]
    return pd.DataFrame(rows, columns=["claim", "what the interval says"]).set_index("claim")


def plot_val_curves(ax, runs: Sequence, key: str, label: str, **style) -> None:
    """Validation error (``key``: val_top1 or val_top5, in %) over the epochs, one line a run, one legend entry."""
    for i, run in enumerate(runs):
        ax.plot([m["epoch"] for m in run.history], [pct(m[key]) for m in run.history], "-o",
                label=label if i == 0 else None, **style)


def budget_table(groups: Mapping[str, Sequence]):
    """What was trained: per group of runs (or baseline records), their count, epochs, images, time
    and the machines they ran on (throughput differs between them)."""
    rows = []
    for name, items in groups.items():
        items = list(items)
        if not items:
            continue
        if isinstance(items[0], Mapping):  # baseline records
            rows.append({"runs": name, "count": len(items), "epochs": sum(r["config"]["epochs"] for r in items),
                         "images trained": f"{sum(r['config']['epochs'] * r['train_images'] for r in items):,}",
                         "training time": f"{sum(r['seconds'] for r in items) / 60:.1f} min",
                         "images/s (median)": "—", "precision": "fp32",
                         "machine": describe_machines([r.get("hardware") for r in items])})
            continue
        seconds = sum(r.summary.get("train_seconds", 0.0) for r in items)
        rates = [m["images_per_s"] for r in items for m in r.history if "images_per_s" in m]
        rows.append({"runs": name, "count": len(items), "epochs": sum(len(r.history) for r in items),
                     "images trained": f"{sum(len(r.history) * r.summary.get('train_images', 0) for r in items):,}",
                     "training time": f"{seconds / 60:.1f} min",
                     "images/s (median)": f"{float(np.median(rates)):.0f}" if rates else "—",
                     "precision": ", ".join(sorted({r.config.precision for r in items})),
                     "machine": describe_machines([r.summary.get("hardware") for r in items])})
    return pd.DataFrame(rows).set_index("runs")
