"""Claims as paired differences between an ablation arm and the baseline, on the protocol's runs.

Every claim of notebooks 03-05 (and of the towers, lighting, dropout and errata notebooks) has the
same shape: the baseline recipe of one dataset (``protocol.Recipe``) and one arm, trained at the
same seeds; per seed the difference arm minus baseline (or baseline minus arm) of one number of the
finished nets; the mean difference with its paired 95% t interval, a bootstrap check and the
smallest effect the seeds detect. Here: fetching the arms' runs, that measurement with its scale,
and the tables and curves the notebooks show.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from replication import claims
from replication.engine import runs as run_store
from replication.data import DataError
from replication.experiments import baselines, presets
from replication.experiments.baselines import BaselineConfig
from replication.experiments.protocol import (ARMS, IMAGENET_STAND_IN, MIN_TOP5_CLASSES, Recipe, final_fifth,
                                              imagenet_recipe, recipes_for, runs_stopping)
from replication.paths import user_store_dir
from replication.provenance import describe_machines


# ---------------------------------------------------------------------------
# Runs from the store (trained when missing)
# ---------------------------------------------------------------------------

def pct(value: float) -> float:
    return 100.0 * float(value)


def fetch(plan: Mapping[str, list], params: Mapping[str, Any], progress: bool = False) -> dict[str, list]:
    """The stored run (or baseline record) of every config in ``plan``; missing ones are trained.

    The smoke profile uses the uncommitted scratch store; the others the run store
    (read-only in CI, where a missing run is an error naming it).
    """
    scratch = params["profile"] == "smoke"
    # runs on your images go to your store (REPLICATION_STORE, else outside the repository), never runs/
    store = user_store_dir() if params.get("dataset") and not scratch else None
    out: dict[str, list] = {}
    for key, configs in plan.items():
        out[key] = [baselines.get(c, scratch=scratch, store=store) if isinstance(c, BaselineConfig)
                    else run_store.get(c, progress=progress, device=params.get("device"), scratch=scratch,
                                       store=store)
                    for c in configs]
    return out


@dataclass
class Measured:
    """What an ImageNet-protocol notebook shows and records: its runs (and baseline records) by
    group, and ``{claim_id: {"measurement", "scale"}}``."""

    runs: dict[str, list]
    claims: dict[str, dict]


# The key of the ImageNet claims' recipe: ILSVRC itself at the paper profile, Imagenette below it.
IMAGENET = "imagenet"


def recipe(params: Mapping[str, Any], key: str) -> Recipe:
    """The profile's recipe for ``key``: "cifar", "imagenette", or ``IMAGENET``, the recipe that stands
    for ImageNet in the profile's ImageNet claims (``protocol.IMAGENET_STAND_IN``), or the notebook's
    ``preset`` trained on its ``dataset`` (your images) when the parameters name them."""
    if key == IMAGENET:
        preset, dataset = params.get("preset"), params.get("dataset")
        chosen = (presets.notebook_recipe(preset, params["profile"]) if preset
                  else imagenet_recipe(params["profile"]))
        return your_images(chosen, dataset) if dataset else chosen
    found = {r.key: r for r in recipes_for(params["profile"])}
    if key not in found:
        raise ValueError(f"profile {params['profile']!r} has no {key!r} recipe; it has {', '.join(found)}")
    return found[key]


def available(params: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """Which of ``keys`` this profile has a recipe for (``IMAGENET`` when it names a stand-in). On your
    images (``dataset``) only ``IMAGENET``: the other datasets' claims are not about them."""
    if params.get("dataset"):
        return [k for k in keys if k == IMAGENET]
    found = {r.key for r in recipes_for(params["profile"])}
    stand_in = IMAGENET_STAND_IN.get(params["profile"])
    return [k for k in keys if k in found or (k == IMAGENET and stand_in in found)]


def your_images(chosen: Recipe, dataset: str) -> Recipe:
    """``chosen`` trained on your folder of images (``folder:PATH``): its classes counted there, named
    as yours in every scale column. Raises the data package's error when the folder is unusable."""
    from replication.data.folders import describe_folder

    summary = describe_folder(dataset)
    if summary.problems:
        raise DataError(f"{dataset}: " + "; ".join(summary.problems))
    classes = len(next(iter(summary.listings.values())).classes)
    return replace(chosen, dataset=dataset, data_variant=None, classes=classes,
                   label=f"your images ({dataset[len('folder:'):]}, {classes} classes, "
                         f"{chosen.crop} px crops of {chosen.image_size} px)")


def top5_measurable(chosen: Recipe) -> bool:
    """Top-5 error is the paper's measure for 1000 classes; with ten, five guesses cover half of them."""
    return chosen.classes >= MIN_TOP5_CLASSES


def few_classes(params: Mapping[str, Any], chosen: Recipe) -> dict:
    """A top-5 claim on a recipe with too few classes: not evaluated, with the reason."""
    return not_here(params, f"top-5 error needs many classes ({MIN_TOP5_CLASSES} or more); "
                            f"{chosen.label} has {chosen.classes}")


def not_here(params: Mapping[str, Any], what: str) -> dict:
    """The ``{"measurement": None, "scale"}`` of a claim this profile has no data for."""
    return {"measurement": None, "scale": {"dataset": None, "variant": f"not at the {params['profile']} profile: {what}",
                                           "image_size": None, "epochs": None, "precision": params["precision"],
                                           "seeds": []}}


def plan_arms(params: Mapping[str, Any], key: str, arms: Sequence[str]) -> dict[str, list]:
    """``{arm: [config per seed]}`` for one dataset: the baseline first, then each arm, at the
    seeds of ``params`` (the seeds that run are the seeds the parameters name)."""
    chosen = recipe(params, key)
    return {arm: [chosen.config(seed, arm) for seed in params["seeds"]] for arm in ("baseline", *arms)}


def plan_datasets(params: Mapping[str, Any], datasets: Sequence[str], arms: Sequence[str]) -> dict[str, dict]:
    """``{dataset: {arm: [config per seed]}}``: the baseline and ``arms`` of each of ``datasets`` the
    profile has (a notebook's ``plan``)."""
    return {key: plan_arms(params, key, arms) for key in available(params, datasets)}


@dataclass
class Arms:
    """The finished runs of one dataset's baseline and arms, by arm, in seed order."""

    recipe: Recipe
    runs: dict[str, list]

    @property
    def seeds(self) -> list[int]:
        return [run.config.seed for run in self.runs["baseline"]]


def fetch_arms(params: Mapping[str, Any], key: str, arms: Sequence[str], progress: bool = False) -> Arms:
    """The runs of ``plan_arms`` from the store (trained when missing, smoke in the scratch store)."""
    return Arms(recipe(params, key), fetch(plan_arms(params, key, arms), params, progress))


def measure_datasets(params: Mapping[str, Any], datasets: Sequence[str], arms: Sequence[str],
                     claims_of: Callable[[Mapping[str, Arms], Mapping[str, Any]], dict],
                     progress: bool = False) -> "Measured":
    """Every run of ``plan_datasets`` from the store (trained when missing) and the claims ``claims_of``
    measures on them (a notebook's ``measure``)."""
    got = {key: fetch_arms(params, key, arms, progress) for key in available(params, datasets)}
    return Measured(got, claims_of(got, params))


def final_gap(run) -> float:
    """Validation minus training top-1 error (percentage points, both in test mode) after the last epoch."""
    last = run.history[-1]
    return pct(last["val_top1"]) - pct(last["train_eval_top1"])


def seconds_per_epoch(run) -> float:
    """The median training time of one epoch (the history's ``seconds``: training steps only, not the
    evaluations); the median, so that one epoch slowed by other work on the machine does not count."""
    return float(np.median([row["seconds"] for row in run.history]))


# Section 4.2's "iterations required to converge", made a number: the epochs of the run's first
# learning-rate phase (the paper divided the rate once the error stopped improving, so the first
# phase at a constant rate is where convergence shows) until the validation top-1 error stays within
# this many points of the level the phase settled at (the mean of its final fifth).
PLATEAU_TOLERANCE = 1.0


def first_phase(run) -> list[dict]:
    """The history rows trained at the run's first learning rate (before the first division)."""
    rate = run.history[0]["lr"]
    rows = []
    for row in run.history:
        if row["lr"] != rate:
            break
        rows.append(row)
    return rows


def epochs_to_converge(run, tolerance: float = PLATEAU_TOLERANCE) -> int:
    """``claims.epochs_to_plateau`` of the first learning-rate phase's validation top-1 error (percent)."""
    curve = [pct(row["val_top1"]) for row in first_phase(run)]
    return claims.epochs_to_plateau(curve, tolerance, min(final_fifth(len(curve)), len(curve)))


READERS: dict[str, Callable[[Any], float]] = {
    "ten_crop_top1": lambda run: pct(run.summary["ten_crop_top1"]),
    "ten_crop_top5": lambda run: pct(run.summary["ten_crop_top5"]),
    "val_top1": lambda run: pct(run.summary["val_top1"]),
    "val_top5": lambda run: pct(run.summary["val_top5"]),
    "gap": final_gap,
    "seconds_per_epoch": seconds_per_epoch,
    "epochs_to_converge": epochs_to_converge,
}


def scale(arms: Arms, what: str) -> dict:
    """The ``scale`` entry of a claim measured on these runs (every number states its scale)."""
    config = arms.runs["baseline"][0].config
    return {"dataset": arms.recipe.label, "variant": f"{arms.recipe.net_label()}; {what}",
            "image_size": arms.recipe.crop, "epochs": config.epochs, "precision": config.precision,
            "seeds": arms.seeds}


def pairs(arms: Arms, arm: str, reader: str, baseline_first: bool) -> tuple[list[float], list[float]]:
    """``reader`` of the arm's runs and of the baseline's, seed by seed (the baseline's first when
    ``baseline_first``); an error when the two ran at different seeds."""
    read = READERS[reader]
    if [r.config.seed for r in arms.runs[arm]] != arms.seeds:
        raise ValueError(f"arm {arm!r} and the baseline ran at different seeds: no pairs")
    base, other = [read(run) for run in arms.runs["baseline"]], [read(run) for run in arms.runs[arm]]
    return (base, other) if baseline_first else (other, base)


def with_stopping(measurement: Mapping[str, Any], arms: Arms, *names: str) -> dict:
    """The measurement with its ``stopping`` entry: the protocol's stopping check on each named arm's mean
    validation curve (``protocol.runs_stopping``). ``claims.verdict`` reads it: a claim on an arm still
    improving is inconclusive, and so is one on nets whose last phase is too short to show a trend."""
    return {**measurement, "stopping": {name: runs_stopping(arms.runs[name]) for name in names}}


def paired_claim(arms: Arms, arm: str, reader: str, what: str, baseline_minus_arm: bool = False) -> dict:
    """``{"measurement", "scale"}``: per seed, ``reader`` of the arm minus the baseline's (or the
    reverse), paired (``claims.paired_measurement``), with its scale and both arms' stopping checks."""
    first, second = pairs(arms, arm, reader, baseline_minus_arm)
    measurement = claims.paired_measurement(first, second, arms.seeds)
    return {"measurement": with_stopping(measurement, arms, "baseline", arm), "scale": scale(arms, what)}


def paired_ratio_claim(arms: Arms, arm: str, reader: str, what: str, baseline_over_arm: bool = False) -> dict:
    """``{"measurement", "scale"}``: per seed, ``reader`` of the arm over the baseline's (or the
    reverse), a paired ratio with its interval on the logs (``claims.paired_ratio_measurement``), with
    both arms' stopping checks."""
    first, second = pairs(arms, arm, reader, baseline_over_arm)
    measurement = claims.paired_ratio_measurement(first, second, arms.seeds)
    return {"measurement": with_stopping(measurement, arms, "baseline", arm), "scale": scale(arms, what)}


def paired_top5_claim(arms: Arms, arm: str, what: str, params: Mapping[str, Any],
                      baseline_minus_arm: bool = False) -> dict:
    """``paired_claim`` of ten-crop top-5 error, or not evaluated where the recipe has too few classes."""
    if not top5_measurable(arms.recipe):
        return few_classes(params, arms.recipe)
    return paired_claim(arms, arm, "ten_crop_top5", what, baseline_minus_arm=baseline_minus_arm)


def contrast(arms: Arms, first: str, second: str, reader: str) -> dict:
    """The paired measurement of ``reader`` of arm ``first`` minus arm ``second``, seed by seed."""
    read = READERS[reader]
    return claims.paired_measurement([read(r) for r in arms.runs[first]], [read(r) for r in arms.runs[second]],
                                     arms.seeds)


def default_readers(chosen: Recipe, *extra: str) -> tuple[str, ...]:
    """Ten-crop top-1, and top-5 where the recipe has classes enough for it to mean something."""
    return ("ten_crop_top1", *(("ten_crop_top5",) if top5_measurable(chosen) else ()), *extra)


def contrast_table(arms: Arms | None, contrasts: Sequence[tuple[str, str, str]],
                   readers: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (label, first arm, second arm): the paired difference of each number, its 95%
    interval and the smallest effect the seeds detect (``None``: a dataset this profile lacks)."""
    if arms is None:
        return pd.DataFrame({"contrast": ["—"], "arms": ["not at this profile"]}).set_index("contrast")
    readers = readers or default_readers(arms.recipe)
    rows = []
    for label, first, second in contrasts:
        row = {"contrast": label, "arms": f"{first} − {second}"}
        for reader in readers:
            m = contrast(arms, first, second, reader)
            interval = m["ci95"]
            row[reader.replace("_", " ")] = (f"{m['value']:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"
                                             if interval else f"{m['value']:+.2f}")
            row[f"detectable ({reader.split('_')[-1]})"] = "—" if m["detectable"] is None else f"{m['detectable']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("contrast")


# ---------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------

def interval_sentence(entry: Mapping[str, Any], subject: str = "overlapping pooling") -> str:
    """Whether a recorded difference's 95% interval resolves the effect, in words; ``subject`` is
    what the difference measures (its first group: "overlapping pooling", "the error without LRN")."""
    measured = entry["measured"]
    if measured is None:
        return "not measured at this profile"
    seeds = len(measured.get("seeds") or [])
    value = measured["value"]
    if measured.get("scale") == "log":
        return ratio_sentence(measured, subject)
    if not measured.get("ci95"):
        return f"{value:+.2f} pp from {seeds} seed{'s' if seeds != 1 else ''}: no interval, so no verdict"
    low, high = measured["ci95"]
    if low <= 0.0 <= high:
        return (f"{value:+.2f} pp, 95% interval [{low:+.2f}, {high:+.2f}] spans zero: "
                f"{seeds} seeds do not resolve an effect of this size")
    side = "lower" if high < 0 else "higher"
    return (f"{value:+.2f} pp, 95% interval [{low:+.2f}, {high:+.2f}] excludes zero: {subject} is "
            f"resolved as {side}")


def ratio_sentence(measured: Mapping[str, Any], subject: str) -> str:
    """``interval_sentence`` for a paired ratio (``claims.paired_ratio_measurement``): does its
    interval exclude 1?"""
    seeds, value = len(measured.get("seeds") or []), measured["value"]
    if not measured.get("ci95"):
        return f"{value:.2f}× from {seeds} seed{'s' if seeds != 1 else ''}: no interval, so no verdict"
    low, high = measured["ci95"]
    if low <= 1.0 <= high:
        return (f"{value:.2f}×, 95% interval [{low:.2f}, {high:.2f}] spans 1: "
                f"{seeds} seeds do not resolve a ratio of this size")
    side = "below" if high < 1.0 else "above"
    return f"{value:.2f}×, 95% interval [{low:.2f}, {high:.2f}] excludes 1: {subject} is resolved {side} 1"


def interval_sentences(report, claim_ids: Sequence[str], subject: str = "overlapping pooling"):
    """One sentence per claim: does the interval over seeds resolve the effect?"""
    rows = [{"claim": cid, "what the interval says": interval_sentence(report.entries[cid], subject)}
            for cid in claim_ids if cid in report.entries]
    return pd.DataFrame(rows, columns=["claim", "what the interval says"]).set_index("claim")



def mean_ci(values: Sequence[float]) -> str:
    interval = claims.t_interval(values)
    mean = float(np.mean(values))
    return f"{mean:.1f}" if interval is None else f"{mean:.1f} ± {(interval[1] - interval[0]) / 2:.1f}"


def arms_table(arms: Arms | None, readers: Sequence[str] | None = None) -> pd.DataFrame:
    """Per arm: the mean of each number over seeds with its 95% half-interval, and whether the
    arm's nets stopped improving (the protocol's check on their mean curve). ``None`` (a dataset
    this profile does not have): a one-line table saying so."""
    if arms is None:
        return pd.DataFrame({"arm": ["—"], "what": ["not at this profile"]}).set_index("arm")
    labels = {"ten_crop_top1": "top-1 % (ten-crop)", "ten_crop_top5": "top-5 % (ten-crop)",
              "val_top1": "top-1 % (centre)", "val_top5": "top-5 % (centre)", "gap": "val − train top-1, pp",
              "seconds_per_epoch": "s / epoch (median)", "epochs_to_converge": "epochs to converge (1st lr phase)"}
    readers = readers or default_readers(arms.recipe, "gap")
    rows = []
    for arm, runs in arms.runs.items():
        row = {"arm": arm, "what": ARMS[arm].what}
        for reader in readers:
            row[labels[reader]] = mean_ci([READERS[reader](run) for run in runs])
        row["stopped improving"] = "yes" if runs_stopping(runs)["passed"] else "no"
        row["seeds"] = len(runs)
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def plot_arms(arms: Arms, title: str):
    """Validation top-1 error over the epochs (solid) and training error in test mode (dashed), per
    arm, every seed; the learning-rate divisions dotted."""
    fig, ax = plt.subplots(figsize=(8, 4))
    plt.close(fig)
    for colour, (arm, runs) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], arms.runs.items()):
        for i, run in enumerate(runs):
            epochs = [m["epoch"] for m in run.history]
            ax.plot(epochs, [pct(m["val_top1"]) for m in run.history], "-", color=colour, lw=1,
                    label=f"{arm}: validation" if i == 0 else None)
            if "train_eval_top1" in run.history[-1]:
                ax.plot(epochs, [pct(m["train_eval_top1"]) for m in run.history], "--", color=colour, lw=0.8,
                        label=f"{arm}: training (test mode)" if i == 0 else None)
    for drop in arms.recipe.lr_drop_epochs:
        ax.axvline(drop + 0.5, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="epoch", ylabel="top-1 error %", title=f"{title}\n{arms.recipe.label}, {arms.recipe.net_label()}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def trained_table(groups: Mapping[str, Arms]) -> pd.DataFrame:
    """Every run behind a report: per dataset and arm, how many, epochs, time and machines."""
    rows = []
    for key, arms in groups.items():
        for arm, runs in arms.runs.items():
            seconds = [m["seconds"] for r in runs for m in r.history]
            rows.append({"runs": f"{key}: {arm}", "count": len(runs), "epochs": sum(len(r.history) for r in runs),
                         "training time": f"{sum(r.summary.get('train_seconds', 0.0) for r in runs) / 60:.1f} min",
                         "s / epoch (median)": f"{float(np.median(seconds)):.0f}" if seconds else "—",
                         "git commits": ", ".join(sorted({(r.summary.get("git_commit") or "?")[:8] for r in runs})),
                         "machine": describe_machines([r.summary.get("hardware") for r in runs])})
    return pd.DataFrame(rows).set_index("runs")
