"""Notebook 03: local response normalisation (Section 3.3), paired arms on the miniature protocol.

Section 3.3 reports two effects of response normalisation: on CIFAR-10, the four-layer conv-local
net's test error falls from 13% to 11%; on ImageNet, top-1 and top-5 error fall by 1.4 and 1.2
points. Each is measured here as the arm ``no_lrn`` against the baseline of one dataset's recipe
(notebook 00), paired by seed, both trained to the end of the tuned schedule:

- CIFAR-10: Section 3.3's own conv-local net (cuda-convnet's layer files); the two absolute errors
  and their paired difference;
- the ImageNet claims, ten-crop top-1 and top-5, on the profile's ImageNet stand-in (Imagenette at
  112 px with the paper's 11x11 stride-4 first layer below the paper profile, where top-5 of ten
  classes is not evaluated);
- a control arm, ``lrn_scale_only`` (alpha = 0: only LRN's constant division by k^beta, no
  normalisation by the neighbouring maps), splits each effect into the rescaling and the
  normalisation proper.
"""

from __future__ import annotations

from typing import Any, Mapping

from replication import claims
from replication.claims import Claim, register
from replication.experiments.paired import (IMAGENET, Arms, Measured, measure_datasets, not_here, paired_claim,
                                            paired_top5_claim, plan_datasets, scale, with_stopping)

NOTEBOOK = "03_lrn"
ARMS = ("no_lrn", "lrn_scale_only")
CIFAR_PAPER_EPOCHS = 350  # cuda-convnet's conv-local files trained for 350 epochs and more
AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00): without minus with LRN, paired by seed, "
                "nets trained to the end of the tuned schedule; the paper's ILSVRC nets are 90 epochs at full width.")

register(Claim(
    id="lrn.cifar_without", notebook=NOTEBOOK,
    statement="The four-layer conv-local CNN gets 13% test error on CIFAR-10 without normalisation",
    paper_value=13.0, paper_display="13%", source={"section": "3.3"}, unit="percent",
    rule="absolute_at_paper_budget", params={"factor": 1.25, "paper_epochs": CIFAR_PAPER_EPOCHS},
    note="cuda-convnet's layers-conv-local-13pct, trained for 350+ epochs. Ours trains for the tuned budget in "
         "the scale column: the absolute error is shown, and judged only at the paper's budget.",
))
register(Claim(
    id="lrn.cifar_with", notebook=NOTEBOOK,
    statement="The same net gets 11% test error with local response normalisation",
    paper_value=11.0, paper_display="11%", source={"section": "3.3"}, unit="percent",
    rule="absolute_at_paper_budget", params={"factor": 1.25, "paper_epochs": CIFAR_PAPER_EPOCHS},
    note="cuda-convnet's layers-conv-local-11pct; see lrn.cifar_without about the budget.",
))
register(Claim(
    id="lrn.cifar_difference", notebook=NOTEBOOK,
    statement="Local response normalisation lowers CIFAR-10 test error by 2 points (13% -> 11%)",
    paper_value=2.0, paper_display="2 pp lower (13% → 11%)", source={"section": "3.3"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 2.0},
    note="Test error (centre crop) without LRN minus with LRN, paired by seed. " + AT_OUR_SCALE,
))
register(Claim(
    id="lrn.imagenet_top1", notebook=NOTEBOOK,
    statement="On ImageNet, response normalisation reduces the top-1 error rate by 1.4 points",
    paper_value=1.4, paper_display="1.4 pp lower", source={"section": "3.3"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Ten-crop, on the profile's ImageNet stand-in (the scale column names it). " + AT_OUR_SCALE,
))
register(Claim(
    id="lrn.imagenet_top5", notebook=NOTEBOOK,
    statement="On ImageNet, response normalisation reduces the top-5 error rate by 1.2 points",
    paper_value=1.2, paper_display="1.2 pp lower", source={"section": "3.3"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Ten-crop, on the profile's ImageNet stand-in (the scale column names it). " + AT_OUR_SCALE,
))
DATASETS = {"cifar": "CIFAR-10", IMAGENET: "the ImageNet stand-in"}
# The control's two halves: what the rescaling alone does, and what normalising by the neighbours adds.
CONTROL = (("all of LRN", "no_lrn", "baseline"),
           ("its constant rescaling (1/k^β)", "no_lrn", "lrn_scale_only"),
           ("normalising by the neighbouring maps", "lrn_scale_only", "baseline"))


def plan(params: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{dataset: {"baseline": [...], "no_lrn": [...], "lrn_scale_only": [...]}}`` at the seeds of ``params``."""
    return plan_datasets(params, DATASETS, ARMS)


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Every arm's runs of every dataset from the store (trained when missing), and the claims."""
    return measure_datasets(params, DATASETS, ARMS, claims_of, progress)


def absolute(arms: Arms, arm: str) -> dict:
    """One arm's centre-crop test errors (percent) over seeds, with the epochs its nets trained."""
    runs = arms.runs[arm]
    measurement = claims.seeded_measurement([100 * r.summary["val_top1"] for r in runs], arms.seeds)
    return {"measurement": {**with_stopping(measurement, arms, arm), "epochs": runs[0].config.epochs},
            "scale": scale(arms, f"{'without' if arm == 'no_lrn' else 'with'} LRN, centre crop")}


def claims_of(got: Mapping[str, Arms], params: Mapping[str, Any]) -> dict[str, dict]:
    what = "without minus with LRN, ten-crop, paired by seed"
    imagenet = got[IMAGENET]
    out = {"lrn.imagenet_top1": paired_claim(imagenet, "no_lrn", "ten_crop_top1", what),
           "lrn.imagenet_top5": paired_top5_claim(imagenet, "no_lrn", what, params)}
    cifar = got.get("cifar")
    out["lrn.cifar_without"] = absolute(cifar, "no_lrn") if cifar else not_here(params, "CIFAR-10's recipe")
    out["lrn.cifar_with"] = absolute(cifar, "baseline") if cifar else not_here(params, "CIFAR-10's recipe")
    out["lrn.cifar_difference"] = (paired_claim(cifar, "no_lrn", "val_top1", "without minus with LRN, centre crop, "
                                                "paired by seed") if cifar else not_here(params, "CIFAR-10's recipe"))
    return out
