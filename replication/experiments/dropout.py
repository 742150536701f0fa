"""Notebook 08: dropout (Section 4.2), paired arms on the miniature protocol.

Section 4.2: dropout (probability 0.5) on the outputs of FC6 and FC7. "Without dropout, our network
exhibits substantial overfitting. Dropout roughly doubles the number of iterations required to
converge." Here the baseline against the arm ``no_dropout``, paired by seed on the profile's ImageNet
stand-in, both trained to the end of the tuned schedule:

- overfitting: the gap between validation and training top-1 error (both in test mode, after the last
  epoch), without minus with dropout (``paired.final_gap``);
- convergence: the epochs each net needs before its validation error stops improving by more than a
  point (``paired.epochs_to_converge``: the first learning-rate phase, ``claims.epochs_to_plateau``),
  with over without dropout, as a paired ratio with its interval on the logs.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from replication.claims import Claim, register
from replication.experiments.paired import (IMAGENET, PLATEAU_TOLERANCE, READERS, Arms, Measured, first_phase,
                                            measure_datasets, paired_claim, paired_ratio_claim, plan_datasets)

NOTEBOOK = "08_dropout"
ARM = "no_dropout"
AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00), paired by seed, nets trained to the end of the "
                "tuned schedule; the paper's ILSVRC nets are 90 epochs at full width.")

register(Claim(
    id="dropout.overfitting", notebook=NOTEBOOK,
    statement="Without dropout, the network exhibits substantial overfitting",
    paper_value=None, paper_display="substantial overfitting (no number given)", source={"section": "4.2"},
    unit="percentage points", rule="paired_direction_only", params={"sign": 1},
    note="The gap between validation and training top-1 error (both in test mode, centre crop, a fixed sample of "
         "training images) after the last epoch, without minus with dropout, on the profile's ImageNet stand-in. "
         "The paper gives no size, so the rule asks for the direction only: the interval must lie above zero; "
         "the notebook shows each net's gap beside it. " + AT_OUR_SCALE,
))
register(Claim(
    id="dropout.convergence", notebook=NOTEBOOK,
    statement="Dropout roughly doubles the number of iterations required to converge",
    paper_value=2.0, paper_display="roughly 2×", source={"section": "4.2"}, unit="ratio",
    rule="paired_ratio_direction", params={"factor": 1.5},
    note=f"Epochs to converge with over without dropout, paired by seed (geometric mean, interval on the logs): in "
         f"the first learning-rate phase (the paper divided the rate once the error stopped improving), the first "
         f"epoch from which the validation top-1 error never again lies more than {PLATEAU_TOLERANCE:g} point above "
         f"the level the phase settled at (the mean of its final fifth). 'Roughly doubles': reproduced when the "
         f"interval lies above 1 and reaches the ratios 1.33-3. " + AT_OUR_SCALE,
))
DATASETS = {IMAGENET: "the ImageNet stand-in"}


def plan(params: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{dataset: {"baseline": [...], "no_dropout": [...]}}`` at the seeds of ``params``."""
    return plan_datasets(params, DATASETS, [ARM])


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Both arms' runs of every dataset the profile has (trained when missing), and the claims."""
    return measure_datasets(params, DATASETS, [ARM], claims_of, progress)


def claims_of(got: Mapping[str, Arms], params: Mapping[str, Any]) -> dict[str, dict]:
    imagenet = got[IMAGENET]
    return {
        "dropout.overfitting": paired_claim(imagenet, ARM, "gap", "without minus with dropout, val − train top-1 gap "
                                            "after the last epoch, paired by seed"),
        "dropout.convergence": paired_ratio_claim(imagenet, ARM, "epochs_to_converge", "with over without dropout, "
                                                  "epochs to converge in the first learning-rate phase, paired by seed",
                                                  baseline_over_arm=True),
    }


def convergence_table(arms: Arms) -> pd.DataFrame:
    """Per seed and arm: the first learning-rate phase's length, the level its validation error settled
    at, and the epoch it converged (the criterion of ``paired.epochs_to_converge``)."""
    rows = []
    for arm, runs in arms.runs.items():
        for run in runs:
            phase = first_phase(run)
            settled = READERS["epochs_to_converge"](run)
            rows.append({"arm": arm, "seed": run.config.seed, "first phase (epochs)": len(phase),
                         "val top-1 % at its end": f"{100 * phase[-1]['val_top1']:.1f}",
                         "converged at epoch": settled})
    return pd.DataFrame(rows).set_index(["arm", "seed"])
