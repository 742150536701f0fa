"""Notebook 11: the seed's own description of AlexNet, measured (an errata notebook).

A widely read AlexNet tutorial page (Cupoy) describes and codes AlexNet with departures from the
paper. Each is measured alone on the miniature protocol, paired by seed against the baseline,
as what it costs at this scale; the paper gives no number for any of them, so each is judged by
``paired_nonzero`` (does the 95% interval of the paired differences exclude zero?) and the
interval says which way and how much:

- dropout left on at test time (``F.dropout`` called without ``training=self.training``; Section
  4.2 multiplies the outputs by 0.5 at test instead): evaluation only, no new training. Every
  baseline net stores its centre-crop validation error with dropout on (``engine.final``), one
  stochastic pass and the softmax averaged over ten;
- max-pooling before response normalisation in layers 1-2 (arm ``pool_before_lrn``; Section 3.5:
  normalisation, then pooling), and dropout after conv5 as well (arm ``conv5_dropout``; Section
  4.2: FC6 and FC7 only);
- a ReLU on the logits before the softmax (arm ``fc8_relu``; Section 3.5: none);
- torchvision's widths 64-192-384-256-256 with no LRN and no towers, and FC7 of 1,024 (arm
  ``torchvision_widths``; Section 3.5: 96-256-384-384-256, LRN, two towers, FC7 of 4,096);
- 224 px input "pre-processed to 227": notebook 01's arithmetic (``architecture.conv1_output_sides``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from replication import claims
from replication.claims import Claim, register
from replication.experiments import architecture
from replication.experiments.paired import (IMAGENET, Arms, Measured, measure_datasets, not_here, paired_claim, pct,
                                            plan_datasets, scale, with_stopping)
from replication.experiments.protocol import FINAL_BASELINE_MEASUREMENTS

NOTEBOOK = "11_errata"
ARMS = ("pool_before_lrn", "conv5_dropout", "fc8_relu", "torchvision_widths")
AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00): the profile's ImageNet stand-in (Imagenette "
                "below the paper profile, 112 px crops, the recipe's width), paired by seed, nets trained to the end "
                "of the tuned schedule; the paper gives no number for this departure, so the status says only "
                "whether the 95% interval of the paired differences excludes zero (reproduced: a measurable "
                "change; inconclusive: not resolved), and the interval gives its sign and size.")
DRAWS = FINAL_BASELINE_MEASUREMENTS["eval_dropout_draws"]
# (claim id, arm or summary key, the departure in one line, the paper's section, what the paper does)
DEPARTURES = (
    ("errata.dropout_at_test_one_draw", "val_top1_dropout_on_one_draw",
     "Dropout left on at test time (one stochastic pass)", "4.2",
     "dropout only in training; at test all units, outputs × 0.5"),
    ("errata.dropout_at_test_mean", "val_top1_dropout_on_mean",
     f"Dropout left on at test time (the softmax averaged over {DRAWS} passes)", "4.2",
     "dropout only in training; at test all units, outputs × 0.5"),
    ("errata.pool_before_lrn", "pool_before_lrn", "Max-pooling before response normalisation in layers 1-2", "3.5",
     "normalisation, then pooling"),
    ("errata.conv5_dropout", "conv5_dropout", "Dropout after conv5 as well as after FC6 and FC7", "4.2",
     "dropout after FC6 and FC7 only"),
    ("errata.fc8_relu", "fc8_relu", "A ReLU on the logits before the softmax", "3.5", "no ReLU on FC8"),
    ("errata.torchvision_widths", "torchvision_widths",
     "The net at torchvision's widths (64-192-384-256-256, no LRN, no towers, FC7 of 1,024)", "3.5",
     "96-256-384-384-256, LRN, two towers, FC7 of 4,096"),
)
DROPOUT_AT_TEST = {claim_id: key for claim_id, key, *_ in DEPARTURES[:2]}

for claim_id, _, departure, section, paper in DEPARTURES:
    evaluation_only = claim_id in DROPOUT_AT_TEST
    register(Claim(
        id=claim_id, notebook=NOTEBOOK, statement=f"{departure} changes the top-1 error", paper_value=None,
        paper_display=f"the paper: {paper}", source={"section": section}, unit="percentage points",
        rule="paired_nonzero", kind="erratum",
        note=("Evaluation only: the baseline nets' centre-crop validation top-1 error with dropout left on "
              "(engine.final.dropout_left_on) minus the same nets' error in test mode. " if evaluation_only else
              "The arm minus the baseline, ten-crop top-1 error. ") + AT_OUR_SCALE,
    ))
DATASETS = {IMAGENET: "the ImageNet stand-in"}


def plan(params: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{IMAGENET: {"baseline": [...], arm: [...] for each departure's arm}}`` at the seeds of ``params``."""
    return plan_datasets(params, DATASETS, ARMS)


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """The baseline's and every departure's runs (trained when missing), and the claims."""
    return measure_datasets(params, DATASETS, ARMS, claims_of, progress)


def dropout_at_test_claim(arms: Arms, key: str, params: Mapping[str, Any]) -> dict:
    """Dropout left on at test (summary ``key``) minus the test-mode error, centre crop, paired by seed;
    not evaluated on a streamed recipe (ILSVRC at the paper profile), whose nets do not measure it."""
    if arms.recipe.stream:
        return not_here(params, f"{arms.recipe.label} is streamed, and engine/final.py measures dropout at test only on "
                        "in-memory data")
    runs = arms.runs["baseline"]
    missing = [run.hash for run in runs if key not in run.summary]
    if missing:
        raise ValueError(f"baseline runs {', '.join(missing)} have no {key!r}: trained before they stored the "
                         "dropout-at-test errors (protocol.FINAL_BASELINE_MEASUREMENTS); train them again")
    draws = runs[0].summary.get("dropout_on_draws")
    what = ("one stochastic pass" if key.endswith("one_draw") else f"softmax averaged over {draws} passes")
    measurement = claims.paired_measurement([pct(r.summary[key]) for r in runs],
                                            [pct(r.summary["val_top1"]) for r in runs], arms.seeds)
    return {"measurement": with_stopping(measurement, arms, "baseline"),
            "scale": scale(arms, f"dropout on at test ({what}) minus off, centre crop, the baseline nets")}


def claims_of(got: Mapping[str, Arms], params: Mapping[str, Any]) -> dict[str, dict]:
    arms = got[IMAGENET]
    out = {claim_id: dropout_at_test_claim(arms, key, params) for claim_id, key in DROPOUT_AT_TEST.items()}
    for claim_id, arm, *_ in DEPARTURES[2:]:
        out[claim_id] = paired_claim(arms, arm, "ten_crop_top1", f"{arm} minus the baseline, ten-crop, paired by seed")
    return out


def departures_table() -> pd.DataFrame:
    """Each departure in one line: what the retelling does, what the paper does, where."""
    rows = [{"claim": claim_id, "the retelling": departure, "the paper": paper, "section": section}
            for claim_id, _, departure, section, paper in DEPARTURES]
    rows.append({"claim": "(notebook 01)", "the retelling": "224 px input, \"pre-processed to 227\"",
                 "the paper": "224×224×3 input, conv1 55×55×96 (the arithmetic needs 227, or padding)",
                 "section": "3.5, Fig. 2"})
    return pd.DataFrame(rows).set_index("claim")


def dropout_at_test_table(arms: Arms) -> pd.DataFrame:
    """Per seed: the baseline's centre-crop top-1 error in test mode and with dropout left on."""
    if arms.recipe.stream:
        return pd.DataFrame({"seed": ["—"], "what": ["not measured on streamed data"]}).set_index("seed")
    rows = [{"seed": run.config.seed, "test mode %": f"{pct(run.summary['val_top1']):.1f}",
             "dropout on, one pass %": f"{pct(run.summary['val_top1_dropout_on_one_draw']):.1f}",
             f"dropout on, mean of {run.summary.get('dropout_on_draws')} passes %":
                 f"{pct(run.summary['val_top1_dropout_on_mean']):.1f}"}
            for run in arms.runs["baseline"]]
    return pd.DataFrame(rows).set_index("seed")


# A net whose training loss stays within this fraction of ln(classes), the loss of a uniform softmax,
# has stopped telling the classes apart (e.g. a ReLU on the logits that has zeroed them all).
AT_CHANCE_TOLERANCE = 0.001


def at_chance_since(run, classes: int, tolerance: float = AT_CHANCE_TOLERANCE) -> int | None:
    """The first epoch from which ``run``'s training loss stays within ``tolerance`` (relative) of
    ln(``classes``) to the last epoch; None when its last epoch is below that."""
    uniform = math.log(classes)
    since = None
    for row in run.history:
        if abs(row["train_loss"] - uniform) <= tolerance * uniform:
            since = since or row["epoch"]
        else:
            since = None
    return since


def at_chance_table(arms: Arms) -> pd.DataFrame:
    """Every net of the notebook (baseline and each arm, every seed) whose training loss ended at
    ln(classes), with the epoch from which it stayed there; one row saying so when no net did."""
    classes = arms.recipe.classes
    rows = []
    for arm, runs in arms.runs.items():
        for run in runs:
            since = at_chance_since(run, classes)
            if since is None:
                continue
            last = run.history[-1]
            rows.append({"net": f"{arm}, seed {run.config.seed}", "at ln(classes) since epoch": since,
                         "training loss, last epoch": f"{last['train_loss']:.4f}",
                         "ln(classes)": f"{math.log(classes):.4f}",
                         "val top-1 %, last epoch": f"{pct(last['val_top1']):.1f}",
                         "chance %": f"{100 * (1 - 1 / classes):.1f}"})
    if not rows:
        return pd.DataFrame({"net": ["—"], "at ln(classes) since epoch": [
            f"none: every net's last training loss is below ln({classes})"]}).set_index("net")
    return pd.DataFrame(rows).set_index("net")


def input_size_table() -> pd.DataFrame:
    """Notebook 01's 224-vs-227 arithmetic (``architecture.conv1_output_sides``), shown here."""
    rows = architecture.conv1_output_sides()
    return pd.DataFrame([{**row, "conv1 output": "×".join(map(str, row["conv1 output"]))} for row in rows]).set_index("how")
