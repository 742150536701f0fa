"""Notebook 04: error rates (Section 6, Tables 1 and 2) at miniature scale.

- Ten-patch testing (Section 4.1): the softmax averaged over the four corner and centre patches and
  their reflections, against the centre patch alone, per net (paired over seeds).
- Ensembles (Table 2): the softmax of five nets averaged, against each member.
- The CNN against the best non-convolutional method (Table 1): our two classical baselines
  (``baselines``) on the same Tiny ImageNet images, and a longer-trained net (the budget check)
  to see how that comparison moves with training time.
- The absolute ILSVRC-2012 error rates, at the paper profile only.

``plan(params)`` lists the nets of every family and seed (``imagenet.cnn_config``), the baselines and
the budget-check net; ``measure(params)`` fetches (or trains) them and measures every claim.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from replication import claims
from replication.claims import Claim, register
from replication.engine import evaluate
from replication.engine.config import TrainConfig
from replication.experiments.imagenet import (
    AT_OUR_SCALE, Measured, budget_table as budget_table, cnn_config, ensemble_probs_from_topk, fetch, mean_ci, pct,
    plan_table as plan_table, plot_val_curves, scale_entry,
)
from replication.experiments.scales import scale_for, seeds_for

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
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Paper: ILSVRC-2012 validation set. Measured as the ensemble's ten-crop error minus each member's "
         "(the interval reflects the spread of the members, not of ensembles). " + AT_OUR_SCALE,
))
register(Claim(
    id="imagenet.ensemble_top5", notebook=NOTEBOOK,
    statement="Averaging the predictions of five CNNs lowers top-5 error (18.2% → 16.4%)",
    paper_value=-1.8, paper_display="−1.8 pp (18.2 → 16.4)",
    source={"section": "6", "table": "Table 2"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Paper: ILSVRC-2012 validation set. " + AT_OUR_SCALE,
))
register(Claim(
    id="imagenette.ten_crop_top1", notebook=NOTEBOOK,
    statement="Ten-patch averaging lowers top-1 error, with the 11×11 stride-4 first layer (Imagenette)",
    paper_value=-1.5, paper_display="−1.5 pp (39.0 → 37.5)",
    source={"section": "4.1, 6", "table": "Table 1"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="The paper's effect on ILSVRC-2010 set beside ours on Imagenette (10 classes, 128 px images, 112 px "
         "crops), whose error rates are far lower than ILSVRC's: the size is not comparable, the direction is.",
    kind="variant",
))
register(Claim(
    id="imagenette.ensemble_top1", notebook=NOTEBOOK,
    statement="Averaging five CNNs lowers top-1 error, with the 11×11 stride-4 first layer (Imagenette)",
    paper_value=-2.6, paper_display="−2.6 pp (40.7 → 38.1)",
    source={"section": "6", "table": "Table 2"}, unit="percentage points",
    rule="paired_difference_direction", params={"factor": 3.0},
    note="Imagenette (10 classes, 128 px images, 112 px crops); only the direction is comparable.",
    kind="variant",
))
register(Claim(
    id="imagenet.cnn_vs_baselines", notebook=NOTEBOOK,
    statement="The CNN beats the best non-convolutional method by a wide margin (top-5 17.0% vs 25.7%)",
    paper_value=33.9, paper_display="33.9% fewer top-5 errors (17.0 vs 25.7)",
    source={"section": "6", "table": "Table 1"}, unit="percent",
    rule="reduction_at_least", params={"factor": 2.0},
    note="Relative reduction 1 − CNN/baseline of top-5 error against the stronger of our two classical "
         "baselines (softmax on pixels; Coates et al. 2011 k-means patch features + softmax), trained on the "
         "same Tiny ImageNet images; the paper's is against SIFT + Fisher vectors on ILSVRC-2010. A wide margin "
         "means at least half the paper's reduction at the interval's lower end.",
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

def plan(params: Mapping[str, Any]) -> dict[str, list]:
    """{family key: [TrainConfig per seed], "baselines": [BaselineConfig], "budget_check": [TrainConfig]}
    (the budget check is empty at profiles without one)."""
    scale = scale_for(params["profile"])
    seeds = seeds_for(params)
    plan = {f.key: [cnn_config(f, s, "overlapping", params.get("epochs"), params["precision"]) for s in seeds]
            for f in scale.families}
    plan["baselines"] = list(scale.baselines)
    plan["budget_check"] = budget_check_configs(params)
    return plan


def budget_check_configs(params: Mapping[str, Any]) -> list[TrainConfig]:
    """Notebook 04's budget check: the first family's first seed trained for the profile's
    ``budget_check_epochs`` (none at the paper profile, whose nets train the paper's 90 epochs)."""
    scale = scale_for(params["profile"])
    if scale.budget_check_epochs is None:
        return []
    family = scale.families[0]
    return [cnn_config(family, seeds_for(params)[0], "overlapping", scale.budget_check_epochs,
                       params["precision"])]


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Every run of ``plan(params)`` from the store (trained when missing), and the claims they measure."""
    got = fetch(plan(params), params, progress)
    return Measured(got, claims_of(got, params))


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def ensemble_errors(members: Sequence) -> tuple[float, float]:
    """(top-1, top-5) error of the softmax average of ``members`` (fractions)."""
    probs, labels = ensemble_probs_from_topk(members)
    result = evaluate.results_from_probs(probs, labels, "ensemble(ten_crop)")
    return result.top1, result.top5


def single_net_errors(runs: Sequence) -> dict[str, list[float]]:
    """Per-seed errors in percent: centre and ten-crop, top-1 and top-5."""
    return {"centre_top1": [pct(r.summary["val_top1"]) for r in runs],
            "centre_top5": [pct(r.summary["val_top5"]) for r in runs],
            "ten_top1": [pct(r.summary["ten_crop_top1"]) for r in runs],
            "ten_top5": [pct(r.summary["ten_crop_top5"]) for r in runs]}


def best_baseline(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return min(records, key=lambda r: r["val_top5"]) if records else None


def claims_of(got: Mapping[str, list], params: Mapping[str, Any]) -> dict[str, dict]:
    """Every claim of notebook 04 that this profile measures: ``{claim_id: {measurement, scale}}``."""
    out: dict[str, dict] = {}
    scale = scale_for(params["profile"])
    for family in scale.families:
        runs = got[family.key]
        prefix = "imagenette" if family.key == "imagenette" else "imagenet"
        seeds = [r.config.seed for r in runs]
        errors = single_net_errors(runs)
        where = scale_entry(family, [r.config for r in runs], "ten-crop vs centre")
        out[f"{prefix}.ten_crop_top1"] = {
            "measurement": claims.paired_measurement(errors["ten_top1"], errors["centre_top1"], seeds), "scale": where}
        if prefix == "imagenet":
            out["imagenet.ten_crop_top5"] = {
                "measurement": claims.paired_measurement(errors["ten_top5"], errors["centre_top5"], seeds),
                "scale": where}
        top1, top5 = ensemble_errors(runs)
        where = scale_entry(family, [r.config for r in runs], f"ensemble of {len(runs)} vs its members, ten-crop")
        out[f"{prefix}.ensemble_top1"] = {
            "measurement": claims.paired_measurement([pct(top1)] * len(runs), errors["ten_top1"], seeds),
            "scale": where}
        if prefix == "imagenet":
            out["imagenet.ensemble_top5"] = {
                "measurement": claims.paired_measurement([pct(top5)] * len(runs), errors["ten_top5"], seeds),
                "scale": where}
        if family.key == "imagenet":  # the paper profile: the absolute ILSVRC-2012 numbers
            where = scale_entry(family, [r.config for r in runs], "ten-crop")
            out["imagenet.ilsvrc2012_top1"] = {
                "measurement": claims.seeded_measurement(errors["ten_top1"], seeds), "scale": where}
            out["imagenet.ilsvrc2012_top5"] = {
                "measurement": claims.seeded_measurement(errors["ten_top5"], seeds), "scale": where}
    if scale.family("imagenet") is None:  # say which profile evaluates the absolute ILSVRC numbers
        elsewhere = {"dataset": None, "variant": "not at this scale: the paper profile evaluates it "
                     "(ILSVRC-2012, 224 px crops, 90 epochs)", "image_size": None, "epochs": None,
                     "precision": params["precision"], "seeds": []}
        for claim_id in ("imagenet.ilsvrc2012_top1", "imagenet.ilsvrc2012_top5"):
            out[claim_id] = {"measurement": None, "scale": dict(elsewhere)}
    best = best_baseline(got.get("baselines", []))
    tiny = scale.family("tiny")
    if best is not None and tiny is not None:
        reductions = [100.0 * (1.0 - e / pct(best["val_top5"])) for e in single_net_errors(got["tiny"])["ten_top5"]]
        out["imagenet.cnn_vs_baselines"] = {
            "measurement": claims.seeded_measurement(reductions, [r.config.seed for r in got["tiny"]]),
            "scale": scale_entry(tiny, [r.config for r in got["tiny"]],
                                 f"top-5 vs {best['kind']} baseline, ten-crop")}
    return {cid: out[cid] for cid in claims.CLAIMS if cid in out}


# ---------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------

def error_table(got: Mapping[str, list], params: Mapping[str, Any]):
    """Section 6's table: the paper's rows and ours (percent; ours: mean ± 95% half-interval over seeds)."""
    rows = [{"source": "paper, ILSVRC-2010 test" if "2012" not in name else "paper, ILSVRC-2012 val",
             "model": name.replace(" (ILSVRC-2012 val)", ""), "top-1 %": f"{t1:.1f}", "top-5 %": f"{t5:.1f}",
             "seeds": ""} for name, (t1, t5) in PAPER_TABLE.items()]
    for family in scale_for(params["profile"]).families:
        runs = got[family.key]
        errors = single_net_errors(runs)
        ens1, ens5 = ensemble_errors(runs)
        where = f"ours, {family.label}, {runs[0].config.epochs} epochs"
        top5 = family.key != "imagenette"  # ten classes: top-5 says little
        for model, e1, e5 in (("1 CNN, centre patch", errors["centre_top1"], errors["centre_top5"]),
                              ("1 CNN, ten patches", errors["ten_top1"], errors["ten_top5"])):
            rows.append({"source": where, "model": model, "top-1 %": mean_ci(e1),
                         "top-5 %": mean_ci(e5) if top5 else "—", "seeds": str(len(runs))})
        rows.append({"source": where, "model": f"{len(runs)} CNN{'s' if len(runs) > 1 else ''} averaged, ten patches",
                     "top-1 %": f"{pct(ens1):.1f}", "top-5 %": f"{pct(ens5):.1f}" if top5 else "—",
                     "seeds": str(len(runs))})
    return pd.DataFrame(rows).set_index(["source", "model"])


def baseline_table(got: Mapping[str, list], params: Mapping[str, Any]):
    """Table 1's message at our scale: the CNN against the classical baselines, same images (percent)."""
    names = {"softmax_pixels": "softmax on pixels",
             "kmeans_features": "k-means patch features + softmax (Coates et al. 2011)"}
    rows = []
    for record in got.get("baselines", []):
        rows.append({"method": names[record["kind"]], "top-1 %": f"{pct(record['val_top1']):.1f}",
                     "top-5 %": f"{pct(record['val_top5']):.1f}", "train top-1 %": f"{pct(record['train_top1']):.1f}"})
    if "tiny" in got:
        errors = single_net_errors(got["tiny"])
        rows.append({"method": f"CNN, ten patches ({len(got['tiny'])} seeds)", "top-1 %": mean_ci(errors["ten_top1"]),
                     "top-5 %": mean_ci(errors["ten_top5"]), "train top-1 %": ""})
    best = best_baseline(got.get("baselines", []))
    if best is not None and "tiny" in got:
        cnn5 = sum(single_net_errors(got["tiny"])["ten_top5"]) / len(got["tiny"])
        rows.append({"method": "relative top-5 reduction, CNN vs best baseline",
                     "top-1 %": "", "top-5 %": f"{100 * (1 - cnn5 / pct(best['val_top5'])):.1f}",
                     "train top-1 %": ""})
    rows.append({"method": "paper: SIFT + FVs → CNN (ILSVRC-2010 test)", "top-1 %": "45.7 → 37.5",
                 "top-5 %": f"25.7 → 17.0 ({100 * (1 - 17.0 / 25.7):.1f} fewer)", "train top-1 %": ""})
    return pd.DataFrame(rows).set_index("method")


def _top5_reduction(cnn_top5: float, baseline: Mapping[str, Any]) -> float:
    """Relative top-5 reduction 1 − CNN/baseline, in percent (the measure of imagenet.cnn_vs_baselines)."""
    return 100.0 * (1.0 - cnn_top5 / pct(baseline["val_top5"]))


def budget_check_table(got: Mapping[str, list], check: Sequence, params: Mapping[str, Any]):
    """The claim's short nets, the budget-check net and the baselines side by side (ten patches, percent)."""
    family = scale_for(params["profile"]).families[0]
    best = best_baseline(got.get("baselines", []))
    rows = []
    for runs_, what in ((got[family.key], "the claim's nets"), (list(check), "budget check")):
        if not runs_:
            continue
        errors = single_net_errors(runs_)
        seeds = ", ".join(str(r.config.seed) for r in runs_)
        epochs = runs_[0].config.epochs
        row = {"model": f"CNN, {epochs} epoch{'s' if epochs != 1 else ''} ({what}; seed{'s' if len(runs_) > 1 else ''} {seeds})",
               "top-1 %": mean_ci(errors["ten_top1"]), "top-5 %": mean_ci(errors["ten_top5"])}
        if best is not None:
            row[f"top-5 reduction vs {best['kind']}, %"] = mean_ci(
                [_top5_reduction(e, best) for e in errors["ten_top5"]])
        rows.append(row)
    for record in got.get("baselines", []):
        rows.append({"model": f"baseline: {record['kind']}", "top-1 %": f"{pct(record['val_top1']):.1f}",
                     "top-5 %": f"{pct(record['val_top5']):.1f}"})
    return pd.DataFrame(rows).set_index("model").fillna("")


def budget_check_sentence(got: Mapping[str, list], check: Sequence, params: Mapping[str, Any]) -> str:
    """In words: does training longer change how the CNN compares with the best baseline?"""
    best = best_baseline(got.get("baselines", []))
    if not check or best is None:
        return "No budget check at this profile."
    family = scale_for(params["profile"]).families[0]
    short, long_ = got[family.key], check[0]
    claim = claims.CLAIMS["imagenet.cnn_vs_baselines"]
    wide = claim.paper_value / claim.params["factor"]
    short_reduction = float(np.mean([_top5_reduction(e, best) for e in single_net_errors(short)["ten_top5"]]))
    long_reduction = _top5_reduction(pct(long_.summary["ten_crop_top5"]), best)
    side = "fewer" if long_reduction >= 0 else "more"
    margin = f"half the paper's {claim.paper_value:.1f}%, which the claim's rule calls a wide margin"
    if long_reduction >= wide:
        verdict = f"beyond {margin}"
    elif long_reduction > 0:
        verdict = f"ahead of the baseline, but short of {margin}"
    else:
        verdict = "still behind the baseline"
    return (f"After {long_.config.epochs} epochs one net (seed {long_.config.seed}) makes "
            f"{pct(long_.summary['ten_crop_top5']):.1f}% top-5 errors with ten patches against "
            f"{pct(best['val_top5']):.1f}% for the {best['kind']} baseline: {abs(long_reduction):.1f}% {side} "
            f"errors, {verdict}; the {short[0].config.epochs}-epoch nets of the claim averaged "
            f"{short_reduction:+.1f}%. One net has no interval, so this informs the reading of the verdict "
            f"and does not change it.")


def plot_budget_check(got: Mapping[str, list], check: Sequence, params: Mapping[str, Any]):
    """Validation top-1 and top-5 error over the epochs: the claim's nets, the longer net, the baselines."""
    family = scale_for(params["profile"]).families[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    plt.close(fig)
    for ax, key in zip(axes, ("val_top1", "val_top5")):
        short = got[family.key]
        plot_val_curves(ax, short, key, f"{short[0].config.epochs}-epoch nets ({len(short)} seed"
                         f"{'s' if len(short) != 1 else ''})", ms=2, color="#999999", lw=1)
        for run in check:
            plot_val_curves(ax, [run], key, f"{run.config.epochs}-epoch net (seed {run.config.seed})",
                             ms=3, color="#1f77b4")
        for record, style in zip(got.get("baselines", []), ("--", ":")):
            ax.axhline(pct(record[key]), color="#d62728", ls=style, label=f"baseline: {record['kind']}")
        name = key.replace("val_top", "top-")
        ax.set(xlabel="epoch", ylabel=f"{name} error % (validation, centre patch)", title=name)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    fig.suptitle(f"{family.label}, {family.variant()}: does training longer change the comparison with the "
                 "baselines?", fontsize=9)
    fig.tight_layout()
    return fig


def plot_error_bars(got: Mapping[str, list], params: Mapping[str, Any]):
    """Per seed: centre vs ten-crop top-1 error, and the ensemble, for each family."""
    families = scale_for(params["profile"]).families
    fig, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families), 3.6), squeeze=False)
    plt.close(fig)
    for ax, family in zip(axes[0], families):
        runs = got[family.key]
        errors = single_net_errors(runs)
        x = np.arange(len(runs))
        ax.bar(x - 0.2, errors["centre_top1"], 0.4, label="centre patch", color="#999999")
        ax.bar(x + 0.2, errors["ten_top1"], 0.4, label="ten patches", color="#1f77b4")
        ax.axhline(pct(ensemble_errors(runs)[0]), color="#d62728", label=f"{len(runs)} nets averaged")
        ax.set_xticks(x, [f"seed {r.config.seed}" for r in runs])
        low = min(errors["ten_top1"] + errors["centre_top1"] + [pct(ensemble_errors(runs)[0])])
        ax.set_ylim(max(0, low - 5), None)
        ax.set(ylabel="top-1 error %", title=f"{family.label}, {runs[0].config.epochs} epochs")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
