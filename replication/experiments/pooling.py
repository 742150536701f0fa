"""Notebook 05: overlapping pooling (Section 3.4) at miniature scale.

Section 3.4: pooling over 3x3 windows with stride 2 (z=3, s=2) instead of 2x2 windows with stride 2
lowers top-1 and top-5 error by 0.4 and 0.3 points, and nets with overlapping pooling find it slightly
harder to overfit. Both nets give the same map sizes: only the pooling differs. The overlapping runs
are notebook 04's nets (shared through the run store), the non-overlapping ones the same seeds and
recipe with z=2.

``plan(params)`` lists both poolings' nets; ``measure(params)`` fetches (or trains) them and measures
the ten-crop differences and the overfitting gap (validation minus training error, both in test mode).
"""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib.pyplot as plt
import pandas as pd

from replication import claims
from replication.claims import Claim, register
from replication.engine.config import TrainConfig
from replication.experiments.imagenet import (
    AT_OUR_SCALE, Measured, budget_table as budget_table, cnn_config, fetch, interval_sentences as interval_sentences,
    mean_ci, pct, plan_table as plan_table, scale_entry, ten_crop_differences,
)
from replication.experiments.scales import scale_for, seeds_for

NOTEBOOK = "05_overlapping_pooling"

register(Claim(
    id="pooling.top1", notebook=NOTEBOOK,
    statement="Overlapping pooling (z=3, s=2) lowers top-1 error by 0.4 points against z=2, s=2",
    paper_value=-0.4, paper_display="−0.4 pp",
    source={"section": "3.4"}, unit="percentage points",
    rule="difference_direction", params={"factor": 3.0},
    note="Ten-crop top-1 error, overlapping minus non-overlapping, same seeds. " + AT_OUR_SCALE,
))
register(Claim(
    id="pooling.top5", notebook=NOTEBOOK,
    statement="Overlapping pooling (z=3, s=2) lowers top-5 error by 0.3 points against z=2, s=2",
    paper_value=-0.3, paper_display="−0.3 pp",
    source={"section": "3.4"}, unit="percentage points",
    rule="difference_direction", params={"factor": 3.0},
    note="Ten-crop top-5 error, overlapping minus non-overlapping. " + AT_OUR_SCALE,
))
register(Claim(
    id="pooling.overfitting", notebook=NOTEBOOK,
    statement="Models with overlapping pooling find it slightly harder to overfit",
    paper_value=None, paper_display="slightly harder to overfit (no number given)",
    source={"section": "3.4"}, unit="percentage points",
    rule="direction_only", params={"sign": -1},
    note="Measured as the gap between validation and training top-1 error (both in test mode, centre "
         "crop, a fixed sample of training images) after the last epoch, overlapping minus non-overlapping. "
         + AT_OUR_SCALE,
))


def plan(params: Mapping[str, Any]) -> dict[str, list[TrainConfig]]:
    """{"overlapping": [...], "non_overlapping": [...]}: the first family (Tiny ImageNet, or ILSVRC
    at the paper profile), the same seeds; the overlapping runs are notebook 04's."""
    family = scale_for(params["profile"]).families[0]
    seeds = seeds_for(params)
    return {pooling: [cnn_config(family, s, pooling, params.get("epochs"), params["precision"]) for s in seeds]
            for pooling in ("overlapping", "non_overlapping")}


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Both poolings' runs from the store (trained when missing), and the three claims."""
    got = fetch(plan(params), params, progress)
    return Measured(got, claims_of(got, params))


def final_gap(run) -> float:
    """Validation minus training top-1 error (percentage points, both test mode) after the last epoch."""
    last = run.history[-1]
    return pct(last["val_top1"]) - pct(last["train_eval_top1"])


def claims_of(got: Mapping[str, list], params: Mapping[str, Any]) -> dict[str, dict]:
    over, non = got["overlapping"], got["non_overlapping"]
    family = scale_for(params["profile"]).families[0]
    seeds = [r.config.seed for r in over]
    where = scale_entry(family, [r.config for r in over], "overlapping minus non-overlapping pooling, ten-crop")
    out = ten_crop_differences(over, non, ("pooling.top1", "pooling.top5"), where)
    if all("train_eval_top1" in r.history[-1] for r in over + non):
        gap_scale = dict(where, variant=where["variant"].replace("ten-crop", "val − train top-1 gap, centre crop"))
        out["pooling.overfitting"] = {"measurement": claims.difference_measurement(
            [final_gap(r) for r in over], [final_gap(r) for r in non], seeds), "scale": gap_scale}
    return out


def pooling_table(got: Mapping[str, list]):
    """Per pooling: ten-crop top-1/top-5 and the final val − train gap (mean ± 95% half-interval)."""
    rows = []
    for pooling, runs in got.items():
        row = {"pooling": pooling.replace("_", "-") + (" (z=3, s=2)" if pooling == "overlapping" else " (z=2, s=2)"),
               "top-1 %": mean_ci([pct(r.summary["ten_crop_top1"]) for r in runs]),
               "top-5 %": mean_ci([pct(r.summary["ten_crop_top5"]) for r in runs]),
               "seeds": str(len(runs))}
        if all("train_eval_top1" in r.history[-1] for r in runs):
            row["val − train top-1 gap, pp"] = mean_ci([final_gap(r) for r in runs])
        rows.append(row)
    return pd.DataFrame(rows).set_index("pooling")


def plot_gap(got: Mapping[str, list], params: Mapping[str, Any] | None = None):
    """Training and validation top-1 error over the epochs, and their gap, for both poolings."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    plt.close(fig)
    colours = {"overlapping": "#1f77b4", "non_overlapping": "#d62728"}
    for pooling, runs in got.items():
        for i, run in enumerate(runs):
            epochs = [m["epoch"] for m in run.history]
            val = [pct(m["val_top1"]) for m in run.history]
            seen = [pct(m.get("train_eval_top1", float("nan"))) for m in run.history]
            label = pooling.replace("_", "-") if i == 0 else None
            left.plot(epochs, val, "-o", color=colours[pooling], ms=3, label=f"{label}: validation" if label else None)
            left.plot(epochs, seen, "--", color=colours[pooling], label=f"{label}: training" if label else None)
            right.plot(epochs, [v - s for v, s in zip(val, seen)], "-o", ms=3, color=colours[pooling], label=label)
    left.set(xlabel="epoch", ylabel="top-1 error % (test mode, centre crop)", title="error")
    right.set(xlabel="epoch", ylabel="validation − training top-1 error, pp", title="overfitting gap")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    if params is not None:
        family = scale_for(params["profile"]).families[0]
        epochs = next(iter(got.values()))[0].config.epochs
        fig.suptitle(f"{family.label}, {family.variant()}, {epochs} epochs: overlapping (z=3, s=2) vs "
                     "non-overlapping (z=2, s=2) pooling", fontsize=9)
    fig.tight_layout()
    return fig
