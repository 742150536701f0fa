"""Notebook 05: overlapping pooling (Section 3.4), paired arms on the miniature protocol.

Section 3.4: pooling over 3x3 windows with stride 2 (z=3, s=2) instead of 2x2 windows with stride 2
lowers top-1 and top-5 error by 0.4 and 0.3 points, and nets with overlapping pooling find it slightly
harder to overfit. Both poolings give the same map sizes here, so only the pooling differs: the arm
``non_overlapping`` of ``protocol.ARMS`` against the baseline, at the same seeds (same data order,
augmentation draws and initial weights), both trained to the end of the tuned schedule.

``plan(params)`` lists both datasets' nets; ``measure(params)`` fetches (or trains) them and measures
the paired ten-crop differences on the profile's ImageNet stand-in (Imagenette below the paper
profile, where top-5 of ten classes is not evaluated) and the paired
difference of the overfitting gap (validation minus training error, both in test mode, at the end).
"""

from __future__ import annotations

from typing import Any, Mapping

from replication.claims import Claim, register
from replication.experiments.paired import (IMAGENET, Arms, Measured, measure_datasets, paired_claim,
                                            paired_top5_claim, plan_datasets)

NOTEBOOK = "05_overlapping_pooling"
ARM = "non_overlapping"
AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00): overlapping (the baseline) minus "
                "non-overlapping pooling, paired by seed, ten-crop, nets trained to the end of the tuned "
                "schedule; the paper's ILSVRC nets are 90 epochs at full width.")

register(Claim(
    id="pooling.top1", notebook=NOTEBOOK,
    statement="Overlapping pooling (z=3, s=2) lowers top-1 error by 0.4 points against z=2, s=2",
    paper_value=-0.4, paper_display="−0.4 pp", source={"section": "3.4"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Ten-crop, on the profile's ImageNet stand-in (the scale column names it). " + AT_OUR_SCALE,
))
register(Claim(
    id="pooling.top5", notebook=NOTEBOOK,
    statement="Overlapping pooling (z=3, s=2) lowers top-5 error by 0.3 points against z=2, s=2",
    paper_value=-0.3, paper_display="−0.3 pp", source={"section": "3.4"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Ten-crop, on the profile's ImageNet stand-in (the scale column names it). " + AT_OUR_SCALE,
))
register(Claim(
    id="pooling.overfitting", notebook=NOTEBOOK,
    statement="Models with overlapping pooling find it slightly harder to overfit",
    paper_value=None, paper_display="slightly harder to overfit (no number given)",
    source={"section": "3.4"}, unit="percentage points", rule="paired_direction_only", params={"sign": -1},
    note="The gap between validation and training top-1 error (both in test mode, centre crop, a fixed "
         "sample of training images) after the last epoch, overlapping minus non-overlapping, paired by seed, "
         "on the profile's ImageNet stand-in. " + AT_OUR_SCALE,
))
DATASETS = {IMAGENET: "the ImageNet stand-in"}


def plan(params: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{dataset: {"baseline": [...], "non_overlapping": [...]}}`` at the seeds of ``params``."""
    return plan_datasets(params, DATASETS, [ARM])


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Both poolings' runs of every dataset the profile has (trained when missing), and the claims."""
    return measure_datasets(params, DATASETS, [ARM], claims_of, progress)


def claims_of(got: Mapping[str, Arms], params: Mapping[str, Any]) -> dict[str, dict]:
    imagenet = got[IMAGENET]
    what = "overlapping minus non-overlapping pooling, ten-crop, paired by seed"
    return {
        "pooling.top1": paired_claim(imagenet, ARM, "ten_crop_top1", what, baseline_minus_arm=True),
        "pooling.top5": paired_top5_claim(imagenet, ARM, what, params, baseline_minus_arm=True),
        "pooling.overfitting": paired_claim(imagenet, ARM, "gap", "overlapping minus non-overlapping, val − train "
                                            "top-1 gap after the last epoch, paired by seed", baseline_minus_arm=True),
    }
