"""Notebook 00: the miniature, what scale and why.

Every claim of notebooks 03-05 (and the claims of Sections 3.2, 4.1, 4.2 and 6.1 to come) is an
ablation of one recipe, ``protocol.Recipe``, on data that a CPU can train to the end: Imagenette at
112 px (the paper's 11x11 stride-4 first layer, 10 classes) stands for ImageNet, and CIFAR-10 carries
Section 3.3's own net. This module measures the two things that make such a recipe worth ablating:

- it was *tuned without looking at val*: each point of its grid (width, learning rate) trained on
  the training set minus ``holdout_per_class`` images a class and validated on those held-out
  images; the recipe's point must be the grid's best, and not at the grid's edge;
- its baseline nets *have finished learning*: over the last fifth of the epochs, in the last phase
  of the schedule, their mean validation top-1 error improves by less than half a point, read from
  the least-squares trend (``protocol.stopping_check``).

Both are checks (kind ``check``), not claims of the paper. The tables put the baselines' errors
beside published results on the same data, and the cost of every choice in minutes.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from replication import claims
from replication.bench import protocol as bench_protocol
from replication.claims import CHECK, Claim, register
from replication.experiments.paired import Measured, fetch, pct
from replication.engine import runs
from replication.engine.config import TrainConfig
from replication.experiments import baselines
from replication.experiments.baselines import BaselineConfig
from replication.experiments.protocol import ARMS, Recipe, recipes_for, runs_stopping
from replication.paths import REPO
from replication.provenance import describe_machines

NOTEBOOK = "00_miniature"
STOP_LIMIT_POINTS = 0.5  # the stopping check: less than half a point of val top-1 over the final fifth

# Published single-model results on the same data, for scale (top-1 error, %). Not the same net:
# they say how far a narrow 2012 architecture on a CPU budget is from what the data allows.
PUBLISHED = {
    "imagenette": [
        {"result": "fastai Imagenette leaderboard, 128 px, 5 epochs (xresnet, mean of 5 runs)", "top-1 %": 14.23,
         "source": "github.com/fastai/imagenette README, 85.77% accuracy"},
        {"result": "fastai Imagenette leaderboard, 128 px, 20 epochs (xresnet + MaxBlurPool, mean of 5 runs)",
         "top-1 %": 8.43, "source": "github.com/fastai/imagenette README, 91.57% accuracy"},
    ],
    "cifar": [
        {"result": "the paper (Section 3.3): cuda-convnet's layers-conv-local-11pct net with LRN, 24 px crops, "
                   "trained for 350+ epochs", "top-1 %": 11.0, "source": "Krizhevsky et al. 2012, Sec. 3.3"},
        {"result": "the same net without LRN (layers-conv-local-13pct)", "top-1 %": 13.0,
         "source": "Krizhevsky et al. 2012, Sec. 3.3"},
    ],
}

for _key, _label in (("imagenette", "Imagenette"), ("cifar", "CIFAR-10")):
    register(Claim(
        id=f"miniature.{_key}_tuned", notebook=NOTEBOOK, kind=CHECK,
        statement=f"{_label}: the recipe's width and learning rate are the best of its tuning grid, "
                  "measured on images held out of the training set, and not at the grid's edge",
        paper_value=True, paper_display="best, inside the grid",
        source={"section": "5"}, unit="check", rule="exact",
        note="Held-out top-1 error after the last epoch (centre crop); val is never looked at. A best "
             "rate at the edge of the grid would mean the grid must grow.",
    ))
    register(Claim(
        id=f"miniature.{_key}_stopped", notebook=NOTEBOOK, kind=CHECK,
        statement=f"{_label}: the baseline nets have stopped improving (their mean val top-1 error gains "
                  f"less than {STOP_LIMIT_POINTS} points over the last fifth of the epochs, by its trend in the last "
                  "learning-rate phase)",
        paper_value=STOP_LIMIT_POINTS, paper_display=f"< {STOP_LIMIT_POINTS} pp",
        source={"section": "5"}, unit="percentage points", rule="all_below",
        params={"limit": STOP_LIMIT_POINTS},
        note="The paper trained until the validation error stopped improving (Section 5); a verdict on a "
             "net still learning measures the start of learning, not the recipe.",
    ))


def plan(params: Mapping[str, Any]) -> dict[str, list]:
    """``{"<key>_tuning": [...], "<key>_baseline": [...]}`` for every recipe of the profile: the
    tuning grid on the held-out split, and the baseline at each of ``params["seeds"]``."""
    out: dict[str, list] = {}
    for recipe in recipes_for(params["profile"]):
        out[f"{recipe.key}_tuning"] = recipe.tuning_configs()
        out[f"{recipe.key}_baseline"] = [recipe.config(seed) for seed in params["seeds"]]
    return out


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """The plan's runs from the store (trained when missing) and the four checks."""
    got = fetch(plan(params), params, progress)
    return Measured(got, checks_of(got, params))


def grid_point(run) -> dict:
    return {"width": float(run.config.model.get("width", 1.0)), "lr": float(run.config.lr)}


def best_of(tuning: Sequence) -> Any:
    """The tuning run with the lowest held-out top-1 error after its last epoch."""
    return min(tuning, key=lambda run: run.summary["val_top1"])


def at_grid_edge(best, tuning: Sequence) -> bool:
    """Is the best learning rate the smallest or largest tried at its width?"""
    rates = sorted(run.config.lr for run in tuning if run.config.model.get("width", 1.0) == best.config.model.get("width", 1.0))
    return len(rates) > 1 and best.config.lr in (rates[0], rates[-1])


def gain_points(check: Mapping[str, Any]) -> float | None:
    """A stopping check's gain in percentage points; None when its last phase had no trend to read."""
    return None if check["gain"] is None else pct(check["gain"])


def final_gains(runs: Sequence) -> list[float | None]:
    """Each run's gain in val top-1 (percentage points) over the final fifth of its epochs."""
    return [gain_points(runs_stopping([run])) for run in runs]


def scale_of(recipe: Recipe, configs: Sequence, what: str) -> dict:
    model = configs[0].model
    return {"dataset": recipe.label,
            "variant": f"{recipe.net_label(model.get('width'))}; {what}",
            "image_size": recipe.crop, "epochs": configs[0].epochs, "precision": configs[0].precision,
            "seeds": sorted({c.seed for c in configs})}


def checks_of(got: Mapping[str, list], params: Mapping[str, Any]) -> dict[str, dict]:
    out = {}
    for recipe in recipes_for(params["profile"]):
        tuning, baseline = got[f"{recipe.key}_tuning"], got[f"{recipe.key}_baseline"]
        best = best_of(tuning)
        chosen = {"width": recipe.width, "lr": recipe.lr}
        passed = grid_point(best) == chosen and not at_grid_edge(best, tuning)
        measurement = dict(claims.exact_measurement(passed), chosen=chosen, best=grid_point(best),
                           best_at_edge=at_grid_edge(best, tuning))
        out[f"miniature.{recipe.key}_tuned"] = {
            "measurement": measurement,
            "scale": scale_of(recipe, [r.config for r in tuning],
                              f"tuning grid, {recipe.holdout_per_class} images a class held out of train")}
        seeds = [r.config.seed for r in baseline]
        check = runs_stopping(baseline)  # the seeds' mean curve: less noise
        what = "baseline, val top-1 over the final fifth, in the last learning-rate phase"
        out[f"miniature.{recipe.key}_stopped"] = {
            "measurement": None if check["gain"] is None else
            {"value": gain_points(check), "seeds": seeds, "per_seed": final_gains(baseline)},
            "scale": scale_of(recipe, [r.config for r in baseline],
                              what if check["gain"] is not None else f"{what}; not measurable: {check['why']}")}
    return out


# ---------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------

def _minutes(run) -> float:
    return run.summary.get("train_seconds", 0.0) / 60


def tuning_table(got: Mapping[str, list], params: Mapping[str, Any]) -> pd.DataFrame:
    """Every tuning run: its grid point, held-out error, the stopping check, and what it cost."""
    rows = []
    for recipe in recipes_for(params["profile"]):
        tuning = got[f"{recipe.key}_tuning"]
        best = best_of(tuning)
        for run in tuning:
            gain = gain_points(runs_stopping([run]))
            last = run.history[-1]
            rows.append({
                "dataset": recipe.key, "width": f"{run.config.model.get('width', 1.0):g}", "lr": f"{run.config.lr:g}",
                "held-out top-1 %": f"{pct(run.summary['val_top1']):.1f}",
                "held-out top-5 %": f"{pct(run.summary['val_top5']):.1f}",
                "train top-1 % (test mode)": f"{pct(last['train_eval_top1']):.1f}" if "train_eval_top1" in last else "—",
                "gain over final fifth, pp": "—" if gain is None else f"{gain:.2f}",
                "best": "◀" if run is best else "",
                "minutes": f"{_minutes(run):.1f}",
            })
    return pd.DataFrame(rows).set_index(["dataset", "width", "lr"])


def baseline_table(got: Mapping[str, list], params: Mapping[str, Any]) -> pd.DataFrame:
    """The baselines' val errors (mean ± 95% half-interval over seeds) beside published results."""
    rows = []
    for recipe in recipes_for(params["profile"]):
        baseline = got[f"{recipe.key}_baseline"]
        rows.append({"dataset": recipe.key,
                     "result": f"this package: {recipe.net_label()}, {recipe.epochs} epochs, "
                               f"{len(baseline)} seeds, {recipe.precision}",
                     "top-1 %": _mean_ci([pct(r.summary["val_top1"]) for r in baseline]),
                     "ten-crop top-1 %": _mean_ci([pct(r.summary["ten_crop_top1"]) for r in baseline]),
                     "source": "runs/ (val split)"})
        if params["profile"] != "smoke":
            for published in PUBLISHED[recipe.key]:
                rows.append({"dataset": recipe.key, "result": published["result"],
                             "top-1 %": f"{published['top-1 %']:.1f}", "ten-crop top-1 %": "—",
                             "source": published["source"]})
    return pd.DataFrame(rows).set_index(["dataset", "result"])


def _mean_ci(values: Sequence[float]) -> str:
    interval = claims.t_interval(values)
    mean = float(np.mean(values))
    return f"{mean:.1f}" if interval is None else f"{mean:.1f} ± {(interval[1] - interval[0]) / 2:.1f}"


def cost_table(got: Mapping[str, list]) -> pd.DataFrame:
    """Per group of runs: how many, epochs, training time, seconds an epoch and the machines."""
    rows = []
    for group, items in got.items():
        seconds = [m["seconds"] for r in items for m in r.history]
        rows.append({"runs": group, "count": len(items), "epochs": sum(len(r.history) for r in items),
                     "training time": f"{sum(_minutes(r) for r in items):.1f} min",
                     "s / epoch (median)": f"{float(np.median(seconds)):.0f}" if seconds else "—",
                     "machine": describe_machines([r.summary.get("hardware") for r in items])})
    return pd.DataFrame(rows).set_index("runs")


def cpu_cost_table(got: Mapping[str, list], params: Mapping[str, Any]) -> pd.DataFrame:
    """What one baseline run of each ``cpu`` recipe costs on every CPU measured so far (the records of
    ``make cost`` in benchmarks/protocol), beside the stored baselines trained on that machine (only
    at the cpu profile: the smoke runs are a few steps on the committed sample)."""
    records = bench_protocol.load_records(profile="cpu")
    runs = ({recipe.key: got[f"{recipe.key}_baseline"] for recipe in recipes_for("cpu")}
            if params["profile"] == "cpu" else {})
    return bench_protocol.cost_table(records, runs)


def arm_cost_table() -> pd.DataFrame:
    """Every arm's training step on each CPU measured, beside the baseline's of the same rounds (the
    ``cpu`` recipes' records of ``make cost``)."""
    return bench_protocol.arm_table(bench_protocol.load_records(profile="cpu"))


def planned_runs(profile: str) -> dict[str, Any]:
    """``{run id: config}`` of every run and classical baseline the profile's notebooks read (each
    notebook's ``plan`` at the profile's parameters, seeds raised where a notebook needs more), each once."""
    from replication import experiments, profiles

    params = profiles.validate_parameters(**profiles.load_profile(profile))
    seen: dict[str, Any] = {}

    def walk(item):
        if isinstance(item, Mapping):
            for value in item.values():
                yield from walk(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                yield from walk(value)
        else:
            yield item

    for name in experiments.__all__:
        module = getattr(experiments, name)
        for config in walk(module.plan(profiles.notebook_parameters(params, module.NOTEBOOK))):
            key = config.hash if isinstance(config, BaselineConfig) else runs.config_hash(runs.identify(config))
            seen.setdefault(key, config)
    return seen


def _protocol_runs(profile: str, seeds: Sequence[int]) -> dict[str, tuple[Recipe, str]]:
    """{run id: (recipe, arm)} of the protocol's runs at ``seeds`` ("tuning" for the tuning grid)."""
    out = {}
    for recipe in recipes_for(profile):
        for config in recipe.tuning_configs():
            out[runs.config_hash(runs.identify(config))] = (recipe, "tuning")
        for arm, delta in ARMS.items():
            if recipe.arch in delta.archs:
                for seed in seeds:
                    out[runs.config_hash(runs.identify(recipe.config(seed, arm)))] = (recipe, arm)
    return out


def _stored_minutes(config) -> float | None:
    """Training minutes of a stored run or classical baseline (None when it is not in the store)."""
    if isinstance(config, BaselineConfig):
        path = baselines.record_path(config)
        return json.loads(path.read_text())["seconds"] / 60 if path.is_file() else None
    summary = runs.run_dir(runs.identify(config)) / "summary.json"
    return json.loads(summary.read_text())["train_seconds"] / 60 if summary.is_file() else None


def _reported_runs(profile: str) -> dict[str, float | None]:
    """{run id: training minutes} of every run the profile's committed reports read (their provenance):
    it holds runs a plan does not name, such as the learning-rate grids Fig. 1's rates were picked from."""
    out: dict[str, float | None] = {}
    for path in sorted((REPO / "reports" / profile).glob("*.json")):
        for run_id, seconds in (json.loads(path.read_text()).get("provenance", {}).get("runs") or {}).items():
            out[run_id] = None if seconds is None else seconds / 60
    return out


def budget_table(profile: str = "cpu", records: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """What training the whole profile takes, on each CPU ``make cost`` measured: the protocol's runs
    estimated from the record (each arm's minutes a run with its evaluations; a tuning run as a
    baseline run on the training set less the held-out images), the other runs (Fig. 1's and the
    learning-rate grids they were picked from, the classical baselines) as long as they took where
    they were trained (the store, and the committed reports' provenance)."""
    planned = planned_runs(profile)
    seeds = sorted({c.seed for c in planned.values() if isinstance(c, TrainConfig)})
    protocol_runs = _protocol_runs(profile, seeds)
    ours, others = [], {}
    for key, config in planned.items():
        if key in protocol_runs:
            ours.append(key)
        else:
            others[key] = _stored_minutes(config)
    for key, minutes in _reported_runs(profile).items():
        if key not in protocol_runs:
            others[key] = minutes if minutes is not None else others.get(key)
    known = [m for m in others.values() if m is not None]
    rows = []
    for record in bench_protocol.load_records(profile=profile) if records is None else records:
        minutes = {(e["recipe"], r["arm"]): r["minutes_per_run"]
                   for e in record["recipes"] for r in e["rows"] if r["precision"] == e["precision"]}
        total, missing = 0.0, 0
        for key in ours:
            recipe, arm = protocol_runs[key]
            cost = minutes.get((recipe.key, "baseline" if arm == "tuning" else arm))
            if cost is not None and arm == "tuning":  # trained on the images not held out
                cost *= 1 - recipe.holdout_per_class * recipe.classes / bench_protocol.run_shape(recipe)["train_images"]
            missing += cost is None
            total += cost or 0.0
        rows.append({"CPU": f"{record['cpu']}, {record['threads']} threads",
                     "kernels": bench_protocol.kernels_label(record),
                     "protocol runs": len(ours),
                     "their hours (estimated)": f"{total / 60:.1f}" + (f" (+{missing} not timed)" if missing else ""),
                     "other runs": len(others),
                     "their hours (as trained)": f"{sum(known) / 60:.1f}"
                     + (f" (+{len(others) - len(known)} not stored)" if len(known) < len(others) else ""),
                     "total hours": f"{(total + sum(known)) / 60:.1f}"})
    if not rows:
        return pd.DataFrame({"note": [f"no cost record of the {profile} recipes in benchmarks/protocol: run "
                                      "`make cost` (nothing else training) to measure this CPU"]})
    return pd.DataFrame(rows).set_index(["CPU", "kernels"])


def plot_curves(got: Mapping[str, list], params: Mapping[str, Any]):
    """Per dataset: held-out error of each tuning run (left) and val / training error of the
    baselines (right), with the epochs where the learning rate was divided by 10."""
    recipes = recipes_for(params["profile"])
    fig, axes = plt.subplots(len(recipes), 2, figsize=(11, 3.6 * len(recipes)), squeeze=False)
    plt.close(fig)
    for (left, right), recipe in zip(axes, recipes):
        for run in got[f"{recipe.key}_tuning"]:
            left.plot([m["epoch"] for m in run.history], [pct(m["val_top1"]) for m in run.history], "-o", ms=2,
                      label=f"width {run.config.model.get('width', 1.0):g}, lr {run.config.lr:g}")
        for i, run in enumerate(got[f"{recipe.key}_baseline"]):
            epochs = [m["epoch"] for m in run.history]
            right.plot(epochs, [pct(m["val_top1"]) for m in run.history], "-", color="#1f77b4",
                       label="validation" if i == 0 else None)
            if "train_eval_top1" in run.history[-1]:
                right.plot(epochs, [pct(m["train_eval_top1"]) for m in run.history], "--", color="#ff7f0e",
                           label="training (test mode)" if i == 0 else None)
        for ax, title in ((left, "tuning: held-out part of train"), (right, "baseline seeds: val")):
            for drop in recipe.lr_drop_epochs:
                ax.axvline(drop + 0.5, color="grey", lw=0.8, ls=":")
            ax.set(xlabel="epoch", ylabel="top-1 error %", title=f"{recipe.label}\n{title}")
            ax.title.set_fontsize(9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
