"""Notebook 04: error rates (Section 6, Tables 1 and 2) on the miniature protocol.

- Ten-patch testing (Section 4.1): the softmax averaged over the four corner and centre patches and
  their reflections, against the centre patch alone, per baseline net (paired by net).
- Ensembles (Table 2): the baseline nets' complete predictions averaged, against their mean error,
  with a jackknife interval over the ensembles that leave one net out.
- The CNN against the best non-convolutional method (Table 1): the classical baselines
  (``protocol.CLASSICAL``) on the images the CNN sees, each trained to the end of its budget.
- The absolute ILSVRC error rates, at the paper profile only (ILSVRC-2010's test set at none).

Every claim is measured on the profile's ImageNet stand-in (``protocol.IMAGENET_STAND_IN``:
Imagenette below the paper profile, where top-5 of ten classes is not evaluated). ``plan(params)``
lists its baselines at the seeds of ``params`` and the classical methods; ``measure(params)`` fetches (or trains) them and measures every claim.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from replication import claims
from replication.claims import Claim, register
from replication.engine import evaluate
from replication.experiments.paired import (IMAGENET, Arms, Measured, available, fetch, few_classes, mean_ci, pct, recipe,
                                           scale, with_stopping,
                                           top5_measurable)
from replication.experiments.baselines import BaselineConfig
from replication.experiments.protocol import CLASSICAL

AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00): baseline nets trained to the end of the tuned "
                "schedule; the paper's ILSVRC nets are 90 epochs at full width.")

NOTEBOOK = "04_error_rates"

register(Claim(
    id="imagenet.ten_crop_top1", notebook=NOTEBOOK,
    statement="Averaging the softmax over ten patches lowers top-1 error (39.0% → 37.5%)",
    paper_value=-1.5, paper_display="−1.5 pp (39.0 → 37.5)",
    source={"section": "4.1, 6", "table": "Table 1"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Paper: one CNN on ILSVRC-2010 test, centre patch vs ten patches. " + AT_OUR_SCALE,
))
register(Claim(
    id="imagenet.ten_crop_top5", notebook=NOTEBOOK,
    statement="Averaging the softmax over ten patches lowers top-5 error (18.3% → 17.0%)",
    paper_value=-1.3, paper_display="−1.3 pp (18.3 → 17.0)",
    source={"section": "4.1, 6", "table": "Table 1"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Paper: one CNN on ILSVRC-2010 test. " + AT_OUR_SCALE,
))
register(Claim(
    id="imagenet.ensemble_top1", notebook=NOTEBOOK,
    statement="Averaging the predictions of five CNNs lowers top-1 error (40.7% → 38.1%)",
    paper_value=-2.6, paper_display="−2.6 pp (40.7 → 38.1)",
    source={"section": "6", "table": "Table 2"}, unit="percentage points",
    rule="jackknife_direction", params={"factor": 3.0},
    note="Paper: ILSVRC-2012 validation set. Measured as the ten-crop error of the baseline nets' averaged "
         "complete predictions minus their mean error, with a jackknife interval over the ensembles that leave "
         "one net out. " + AT_OUR_SCALE,
))
register(Claim(
    id="imagenet.ensemble_top5", notebook=NOTEBOOK,
    statement="Averaging the predictions of five CNNs lowers top-5 error (18.2% → 16.4%)",
    paper_value=-1.8, paper_display="−1.8 pp (18.2 → 16.4)",
    source={"section": "6", "table": "Table 2"}, unit="percentage points",
    rule="jackknife_direction", params={"factor": 3.0},
    note="Paper: ILSVRC-2012 validation set. " + AT_OUR_SCALE,
))
register(Claim(
    id="imagenet.cnn_vs_baselines", notebook=NOTEBOOK,
    statement="The CNN beats the best non-convolutional method by a wide margin (top-5 17.0% vs 25.7%)",
    paper_value=33.9, paper_display="33.9% fewer top-5 errors (17.0 vs 25.7)",
    source={"section": "6", "table": "Table 1"}, unit="percent",
    rule="reduction_at_least", params={"factor": 2.0},
    note="Relative reduction 1 − CNN/baseline of top-5 error (CNN ten-crop) against the stronger of our two "
         "classical baselines (softmax on pixels; Coates et al. 2011 k-means patch features + softmax), trained "
         "on the images the CNN sees; the paper's is against SIFT + Fisher vectors on ILSVRC-2010. A wide margin "
         "means at least half the paper's reduction at the interval's lower end.",
))
register(Claim(
    id="imagenet.cnn_vs_baselines_top1", notebook=NOTEBOOK,
    statement="The CNN beats the best non-convolutional method in top-1 error too (37.5% vs 45.7%)",
    paper_value=17.9, paper_display="17.9% fewer top-1 errors (37.5 vs 45.7)",
    source={"section": "6", "table": "Table 1"}, unit="percent",
    rule="reduction_at_least", params={"factor": 2.0},
    note="As imagenet.cnn_vs_baselines, with top-1 error: the form of Table 1's comparison that a stand-in "
         "with few classes can measure.",
))
register(Claim(
    id="imagenet.ilsvrc2010_top1", notebook=NOTEBOOK,
    statement="One CNN: 37.5% top-1 error on the ILSVRC-2010 test set (ten patches)",
    paper_value=37.5, paper_display="37.5%", source={"section": "6", "table": "Table 1"}, unit="percent",
    rule="not_evaluated",
    note="ILSVRC-2010's test labels are needed, which no profile here has; registered beside Table 2's numbers.",
))
register(Claim(
    id="imagenet.ilsvrc2010_top5", notebook=NOTEBOOK,
    statement="One CNN: 17.0% top-5 error on the ILSVRC-2010 test set (ten patches)",
    paper_value=17.0, paper_display="17.0%", source={"section": "6", "table": "Table 1"}, unit="percent",
    rule="not_evaluated",
    note="ILSVRC-2010's test labels are needed, which no profile here has; registered beside Table 2's numbers.",
))
register(Claim(
    id="imagenet.ilsvrc2012_top1", notebook=NOTEBOOK,
    statement="One CNN: 40.7% top-1 error on the ILSVRC-2012 validation set",
    paper_value=40.7, paper_display="40.7%",
    source={"section": "6", "table": "Table 2"}, unit="percent",
    rule="within_points", params={"points": 2.0},
    note="Evaluated only by the paper profile (ILSVRC-2012 supplied by the user, 224 px crops of 256 px "
         "images, 90 epochs, ten-crop test); not evaluated at the smoke and cpu scales.",
))
register(Claim(
    id="imagenet.ilsvrc2012_top5", notebook=NOTEBOOK,
    statement="One CNN: 18.2% top-5 error on the ILSVRC-2012 validation set",
    paper_value=18.2, paper_display="18.2%",
    source={"section": "6", "table": "Table 2"}, unit="percent",
    rule="within_points", params={"points": 2.0},
    note="Evaluated only by the paper profile; not evaluated at the smoke and cpu scales.",
))

#: The paper's numbers the notebook sets ours beside (percent).
PAPER_TABLE = {
    # Table 1, ILSVRC-2010 test: top-1, top-5
    "Sparse coding [2]": (47.1, 28.2),
    "SIFT + FVs [24]": (45.7, 25.7),
    "CNN, centre patch (Sec. 6 text)": (39.0, 18.3),
    "CNN, ten patches": (37.5, 17.0),
    # Table 2, ILSVRC-2012 validation
    "1 CNN (ILSVRC-2012 val)": (40.7, 18.2),
    "5 CNNs (ILSVRC-2012 val)": (38.1, 16.4),
}



# ---------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------

DATASETS = (IMAGENET,)


def plan(params: Mapping[str, Any]) -> dict[str, list]:
    """``{"imagenet": [baseline per seed of the ImageNet stand-in], "classical": [BaselineConfig]}``."""
    out: dict[str, list] = {key: [recipe(params, key).config(seed) for seed in params["seeds"]]
                            for key in available(params, DATASETS)}
    out["classical"] = [on_your_images(c, params) for c in CLASSICAL.get(params["profile"], ())]
    return out


def on_your_images(config: BaselineConfig, params: Mapping[str, Any]) -> BaselineConfig:
    """A classical method of Table 1's comparison on the notebook's ``dataset`` (your images), when it
    names one: their folder's contents enter the record's identity."""
    if not params.get("dataset"):
        return config
    from replication.data.folders import describe_folder

    return replace(config, dataset=params["dataset"], data_variant=None,
                   data_fingerprint=describe_folder(params["dataset"]).fingerprint)


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Every run of ``plan(params)`` from the store (trained when missing), and the claims they measure."""
    got = fetch(plan(params), params, progress)
    return Measured(got, claims_of(got, params))


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def member_probs(runs: Sequence) -> tuple[list[np.ndarray], np.ndarray]:
    """Each net's complete validation predictions (ten-crop softmax, ``save_val_probs``) and the labels."""
    labels = runs[0].artifact("val_labels").astype(np.int64)
    for run in runs[1:]:
        if not np.array_equal(run.artifact("val_labels").astype(np.int64), labels):
            raise ValueError(f"run {run.hash} was evaluated on other validation images")
    return [run.artifact("val_probs").astype(np.float32) for run in runs], labels


def ensemble_claim(arms: Arms, k: int) -> dict:
    """The ensemble of all the baseline nets against their mean top-``k`` error, with its jackknife."""
    probs, labels = member_probs(arms.runs["baseline"])
    full, leave_one_out = evaluate.ensemble_effects(probs, labels, k)
    measurement = claims.ensemble_measurement(pct(full), [pct(v) for v in leave_one_out], arms.seeds)
    return {"measurement": with_stopping(measurement, arms, "baseline"),
            "scale": scale(arms, f"ensemble of {len(probs)} nets vs their mean, ten-crop, jackknife")}


def ten_crop_claim(arms: Arms, k: int) -> dict:
    runs = arms.runs["baseline"]
    ten = [pct(r.summary[f"ten_crop_top{k}"]) for r in runs]
    centre = [pct(r.summary[f"val_top{k}"]) for r in runs]
    return {"measurement": with_stopping(claims.paired_measurement(ten, centre, arms.seeds), arms, "baseline"),
            "scale": scale(arms, "ten-crop vs centre, paired by net")}


def best_classical(records: Sequence[Mapping[str, Any]], k: int) -> Mapping[str, Any] | None:
    return min(records, key=lambda r: r[f"val_top{k}"]) if records else None


def classical_claim(arms: Arms, records: Sequence[Mapping[str, Any]], k: int) -> dict | None:
    """How many fewer top-``k`` errors each CNN (ten-crop) makes than the best classical method (percent)."""
    best = best_classical(records, k)
    if best is None:
        return None
    if best[f"val_top{k}"] == 0:  # nothing left to reduce (an easy set of your own images)
        return {"measurement": None, "scale": scale(arms, f"the {best['kind']} baseline makes no top-{k} errors: "
                                                          "no reduction to measure")}
    reductions = [100.0 * (1.0 - pct(r.summary[f"ten_crop_top{k}"]) / pct(best[f"val_top{k}"]))
                  for r in arms.runs["baseline"]]
    return {"measurement": with_stopping(claims.seeded_measurement(reductions, arms.seeds), arms, "baseline"),
            "scale": scale(arms, f"top-{k} vs the {best['kind']} baseline, ten-crop")}


def claims_of(got: Mapping[str, list], params: Mapping[str, Any]) -> dict[str, dict]:
    """Every claim of notebook 04 that this profile measures: ``{claim_id: {measurement, scale}}``."""
    arms = Arms(recipe(params, IMAGENET), {"baseline": got[IMAGENET]})
    many = top5_measurable(arms.recipe)
    out = {"imagenet.ten_crop_top1": ten_crop_claim(arms, 1),
           "imagenet.ten_crop_top5": ten_crop_claim(arms, 5) if many else few_classes(params, arms.recipe)}
    for claim_id, k in {"imagenet.ensemble_top1": 1, "imagenet.ensemble_top5": 5}.items():
        if k == 5 and not many:
            out[claim_id] = few_classes(params, arms.recipe)
        elif len(arms.seeds) >= 3:  # a jackknife needs three nets at least
            out[claim_id] = ensemble_claim(arms, k)
        else:
            out[claim_id] = {"measurement": None, "scale": scale(arms, "not measured: an ensemble's jackknife needs "
                                                                     "three nets or more")}
    elsewhere = {"dataset": None, "variant": "not at this scale: the paper profile evaluates it (ILSVRC-2012, "
                 "224 px crops, 90 epochs)", "image_size": None, "epochs": None,
                 "precision": params["precision"], "seeds": []}
    nowhere = dict(elsewhere, variant="no profile has ILSVRC-2010's test labels")
    for claim_id in ("imagenet.ilsvrc2012_top1", "imagenet.ilsvrc2012_top5"):
        out[claim_id] = {"measurement": None, "scale": dict(elsewhere)}
    for claim_id in ("imagenet.ilsvrc2010_top1", "imagenet.ilsvrc2010_top5"):
        out[claim_id] = {"measurement": None, "scale": dict(nowhere)}
    records = got.get("classical", [])
    for claim_id, k in {"imagenet.cnn_vs_baselines": 5, "imagenet.cnn_vs_baselines_top1": 1}.items():
        measured = classical_claim(arms, records, k) if (k == 1 or many) else few_classes(params, arms.recipe)
        if measured is not None:
            out[claim_id] = measured
    return {cid: out[cid] for cid in claims.CLAIMS if cid in out}


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

def error_table(got: Mapping[str, list], params: Mapping[str, Any]) -> pd.DataFrame:
    """Section 6's table: the paper's rows and ours (percent; ours: mean ± 95% half-interval over nets)."""
    rows = [{"source": "paper, ILSVRC-2010 test" if "2012" not in name else "paper, ILSVRC-2012 val",
             "model": name.replace(" (ILSVRC-2012 val)", ""), "top-1 %": f"{t1:.1f}", "top-5 %": f"{t5:.1f}",
             "nets": ""} for name, (t1, t5) in PAPER_TABLE.items()]
    runs, chosen = got[IMAGENET], recipe(params, IMAGENET)
    where = f"ours, {chosen.label}, {chosen.epochs} epochs"
    top5 = top5_measurable(chosen)
    for model, prefix in (("1 CNN, centre patch", "val_top"), ("1 CNN, ten patches", "ten_crop_top")):
        rows.append({"source": where, "model": model, "top-1 %": mean_ci([pct(r.summary[f"{prefix}1"]) for r in runs]),
                     "top-5 %": mean_ci([pct(r.summary[f"{prefix}5"]) for r in runs]) if top5 else "—",
                     "nets": str(len(runs))})
    probs, labels = member_probs(runs)
    averaged = evaluate.ensemble_probs(probs)
    rows.append({"source": where, "model": f"{len(runs)} CNNs averaged, ten patches",
                 "top-1 %": f"{pct(evaluate.topk_error(averaged, labels, 1)):.1f}",
                 "top-5 %": f"{pct(evaluate.topk_error(averaged, labels, 5)):.1f}" if top5 else "—",
                 "nets": str(len(runs))})
    return pd.DataFrame(rows).set_index(["source", "model"])


def classical_table(got: Mapping[str, list], params: Mapping[str, Any]) -> pd.DataFrame:
    """Table 1's message at our scale: the CNN against the classical methods, same images (percent)."""
    names = {"softmax_pixels": "softmax on pixels",
             "kmeans_features": "k-means patch features + softmax (Coates et al. 2011)"}
    top5 = top5_measurable(recipe(params, IMAGENET))
    rows = [{"method": names[r["kind"]], "top-1 %": f"{pct(r['val_top1']):.1f}",
             "top-5 %": f"{pct(r['val_top5']):.1f}" if top5 else "—",
             "epochs": str(r["config"]["epochs"])} for r in got.get("classical", [])]
    runs = got[IMAGENET]
    rows.append({"method": f"CNN, ten patches ({len(runs)} nets)",
                 "top-1 %": mean_ci([pct(r.summary["ten_crop_top1"]) for r in runs]),
                 "top-5 %": mean_ci([pct(r.summary["ten_crop_top5"]) for r in runs]) if top5 else "—",
                 "epochs": str(runs[0].config.epochs)})
    rows.append({"method": "paper: SIFT + FVs → CNN (ILSVRC-2010 test)",
                 "top-1 %": f"45.7 → 37.5 ({100 * (1 - 37.5 / 45.7):.1f}% fewer)",
                 "top-5 %": f"25.7 → 17.0 ({100 * (1 - 17.0 / 25.7):.1f}% fewer)", "epochs": ""})
    return pd.DataFrame(rows).set_index("method")


# ---------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------

def plot_errors(got: Mapping[str, list], params: Mapping[str, Any]):
    """Top-1 error of each net from the centre patch and from ten patches (a line per net: the
    paired difference the ten-patch claim measures), and of all the nets averaged."""
    import matplotlib.pyplot as plt

    runs, chosen = got[IMAGENET], recipe(params, IMAGENET)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    plt.close(fig)
    for run in runs:
        ax.plot([0, 1], [pct(run.summary["val_top1"]), pct(run.summary["ten_crop_top1"])], "o-", color="grey",
                lw=1, label=None)
        ax.annotate(f"seed {run.config.seed}", (1.03, pct(run.summary["ten_crop_top1"])), fontsize=7, va="center")
    probs, labels = member_probs(runs)
    ensemble = pct(evaluate.topk_error(evaluate.ensemble_probs(probs), labels, 1))
    nets = f"{len(runs)} nets averaged" if len(runs) > 1 else "one net: no ensemble"
    ax.plot([2], [ensemble], "s", color="C3", label=f"{nets} (ten patches)")
    ax.set_xticks([0, 1, 2], ["centre patch", "ten patches", "ensemble"])
    ax.set_xlim(-0.4, 2.6)
    ax.set(ylabel="top-1 error %", title=f"One net, ten patches, several nets\n{chosen.label}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
