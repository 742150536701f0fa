"""Notebook 02: ReLUs train faster than tanh units (Section 3.1, Fig. 1).

Fig. 1: a four-layer convolutional net with ReLUs reaches 25% training error on CIFAR-10 six times
faster than the same net with tanh units, each at the learning rate that makes it fastest. We
measure it in two settings (``cifar.fig1_config``): the paper's (cuda-convnet's Gaussian init, raw
mean-subtracted pixels, no regularisation) and the modern default one (PyTorch's init,
standardised inputs), each with a learning-rate sweep on the first seed and the fastest rate of each
activation on every seed.

- ``epochs_to_threshold``: epochs until the running training error first falls below 25%,
  interpolated linearly between epoch ends; a run that never gets there is *censored* at its last
  epoch (a lower bound, kept).
- ``choose_lr`` (the fastest rate of a sweep), ``speedup_measurement`` (the tanh/ReLU ratio over
  seeds with its 95% interval, censoring kept).
- ``plan(params)``: the sweeps' runs; ``measure(params)``: both settings and the claims.
- Figures: ``plot_fig1`` (as Fig. 1: tanh dashed, the 25% line) and ``plot_sweep``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from replication import claims
from replication.claims import Claim, register
from replication.experiments.cifar import (
    ACTIVATIONS, SETTINGS, THRESHOLD, Diverged, budget_table as budget_table, fig1_config, get_run, scale_of,
)
from replication.experiments.scales import scale_for

NOTEBOOK = "02_relu_speedup"

register(Claim(
    id="relu.speedup", notebook=NOTEBOOK,
    statement="A four-layer CNN with ReLUs reaches 25% training error on CIFAR-10 six times faster than "
              "with tanh (the paper's setting: Gaussian init, raw mean-subtracted pixels, no regularisation)",
    paper_value=6.0, paper_display="6× faster",
    source={"section": "3.1", "figure": "Fig. 1"}, unit="ratio",
    rule="censored_ratio", params={"factor": 2.0},
    note="Ratio tanh/ReLU of epochs to 25% running training error, each activation at the fastest rate of "
         "its own sweep; a run that never reaches 25% within its epoch cap counts as censored (a lower bound).",
))
register(Claim(
    id="relu.speedup_modern", notebook=NOTEBOOK,
    statement="The same comparison in the modern default setting (PyTorch's default init, standardised inputs)",
    paper_value=6.0, paper_display="6× faster",
    source={"section": "3.1", "figure": "Fig. 1"}, unit="ratio",
    rule="censored_ratio", params={"factor": 2.0},
    note="Not the paper's conditions: measured to show what the speed-up depends on. The verdict of the "
         "paper's claim is relu.speedup.",
    kind="variant",
))

# The learning-rate sweep of Fig. 1 (the paper: "the learning rates for each network were chosen
# independently to make training as fast as possible"). Each activation starts from the same three
# rates and the grid grows, a step of the 1-3-10 ladder at a time, while its fastest rate sits at
# an edge: a rate is chosen only once a slower (or diverging) rate lies on both sides of it, so the
# ratio measures tanh against ReLU, not against the end of the grid.
LR_GRID = {"paper": (0.001, 0.003, 0.01), "modern": (0.003, 0.01, 0.03)}
LR_LADDER = tuple(round(k * 10.0 ** e, 12) for e in range(-6, 1) for k in (1, 3))  # 1e-6, 3e-6 ... 1, 3
MAX_GRID_STEPS = 4  # per activation and setting: a bound on the extra runs


def sweep_configs(setting: str, profile: str, seed: int, epochs: int | None = None, precision: str = "fp32"):
    """``{(activation, lr): config}`` of one setting's learning-rate sweep (one seed)."""
    return {(a, lr): fig1_config(setting, a, lr, seed, profile, epochs, precision)
            for a in ACTIVATIONS for lr in LR_GRID[setting]}


def scale_summary(params: Mapping[str, Any]) -> dict:
    """What the profile trains for Fig. 1: the subset, the epoch cap and the epochs run past 25%."""
    s = scale_for(params["profile"])
    return {"train_per_class": s.fig1_train_per_class, "val_per_class": s.fig1_val_per_class,
            "epoch_cap": s.fig1_epoch_cap, "extra_epochs": s.fig1_extra_epochs, "data_variant": s.cifar_variant}


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def epochs_to_threshold(history: Sequence[Mapping], threshold: float = THRESHOLD,
                        start_error: float = 0.9) -> tuple[float, bool]:
    """(epochs until the running training error first falls below ``threshold``, censored?).

    The running error of epoch k (its average over that epoch's images) is plotted at k, as in
    Fig. 1; the crossing is interpolated linearly between the two epoch ends around it (from
    ``start_error``, chance, at epoch 0). A run that never crosses returns (its last epoch, True):
    a lower bound, kept and reported as censored, not dropped.
    """
    previous_epoch, previous_error = 0.0, float(start_error)
    for row in history:
        epoch, error = float(row["epoch"]), float(row["train_error"])
        if error < threshold:
            if previous_error < threshold:  # only when start_error is below the threshold
                return epoch, False
            fraction = (previous_error - threshold) / (previous_error - error)  # previous >= threshold > error
            return previous_epoch + fraction * (epoch - previous_epoch), False
        previous_epoch, previous_error = epoch, error
    return float(len(history)), True


def run_epochs_to_threshold(run, threshold: float = THRESHOLD) -> tuple[float, bool]:
    """``epochs_to_threshold`` of a stored run; a diverged run is censored at its cap."""
    if isinstance(run, Diverged):
        return float(run.config.epochs), True
    return epochs_to_threshold(run.history, threshold)


def grid_extension(sweep: Mapping[tuple[str, float], object], activation: str) -> float | None:
    """The next rate to try for ``activation``, or None once its fastest rate has a rate on both sides.

    A fastest rate at the top of the grid asks for the next rate up the 1-3-10 ladder, at the
    bottom for the next one down. A diverged run counts as slower, so a grid that ends in a
    diverging rate is closed on that side.
    """
    rates = sorted(lr for a, lr in sweep if a == activation)
    best = choose_lr(sweep, activation)
    if len(rates) < 2 or rates[0] < best < rates[-1]:
        return None
    if best == rates[-1]:
        higher = [r for r in LR_LADDER if r > best * 1.0001]
        return higher[0] if higher else None
    lower = [r for r in LR_LADDER if r < best * 0.9999]
    return lower[-1] if lower else None


def run_sweep(setting: str, profile: str, seed: int, get, epochs: int | None = None,
              precision: str = "fp32") -> dict:
    """``{(activation, lr): run}``: the starting grid, grown until each activation's fastest rate
    has a slower rate on both sides (at most ``MAX_GRID_STEPS`` more rates each). ``get(config,
    what)`` returns a config's run (from the store, trained when missing)."""
    sweep = {key: get(config, f"{setting} sweep {key[0]} lr {key[1]:g}")
             for key, config in sweep_configs(setting, profile, seed, epochs, precision).items()}
    for activation in ACTIVATIONS:
        for _ in range(MAX_GRID_STEPS):
            lr = grid_extension(sweep, activation)
            if lr is None:
                break
            sweep[(activation, lr)] = get(fig1_config(setting, activation, lr, seed, profile, epochs, precision),
                                          f"{setting} sweep {activation} lr {lr:g} (grid extended)")
    return sweep


def choose_lr(sweep: Mapping[tuple[str, float], object], activation: str) -> float:
    """The fastest rate of one activation's sweep: fewest epochs to 25%; censored runs last
    (ties: the lower final training error)."""
    candidates = []
    for (a, lr), run in sweep.items():
        if a != activation:
            continue
        epochs, censored = run_epochs_to_threshold(run)
        final = math.inf if isinstance(run, Diverged) or not run.history else run.history[-1]["train_error"]
        candidates.append((censored, epochs, final, lr))
    if not candidates:
        raise ValueError(f"no sweep runs for {activation!r}")
    return min(candidates)[3]


def sweep_table(sweep: Mapping[tuple[str, float], object]):
    """One row per sweep run: activation, lr, epochs to 25% (censored marked), final running error."""
    rows = []
    chosen = {a: choose_lr(sweep, a) for a in {a for a, _ in sweep}}
    for (a, lr), run in sorted(sweep.items()):
        epochs, censored = run_epochs_to_threshold(run)
        diverged = isinstance(run, Diverged)
        rates = sorted(r for b, r in sweep if b == a)
        edge = " (edge of the grid)" if lr in (rates[0], rates[-1]) and len(rates) > 1 else ""
        final = None if diverged or not run.history else run.history[-1]["train_error"]
        rows.append({"activation": a, "lr": f"{lr:g}",
                     "epochs to 25%": "diverged (NaN)" if diverged else
                     (f"> {epochs:.0f} (censored)" if censored else f"{epochs:.2f}"),
                     "epochs trained": 0 if diverged else len(run.history),
                     "final running error": "—" if final is None else f"{final:.3f}",
                     "chosen": f"fastest{edge}" if lr == chosen[a] else ""})
    return pd.DataFrame(rows).set_index(["activation", "lr"])


def speedup_measurement(tanh: Sequence[tuple[float, bool]], relu: Sequence[tuple[float, bool]],
                        seeds: Sequence[int]) -> dict:
    """The tanh/ReLU ratio of epochs to 25% over seeds, on the log scale, with censoring kept.

    ``tanh`` and ``relu`` are per-seed (epochs, censored) pairs. The ratio is
    exp(mean log tanh - mean log relu) and its interval Welch's on the logs, computed with each
    censored run at its last epoch: a lower bound for a censored tanh run, an upper bound for a
    censored ReLU run (the rule ``censored_ratio`` takes that into account).
    """
    measurement = claims.difference_measurement([e for e, _ in tanh], [e for e, _ in relu], seeds, scale="log")
    measurement["censored"] = {"a": [bool(c) for _, c in tanh], "b": [bool(c) for _, c in relu]}
    return measurement


# ---------------------------------------------------------------------------
# The experiment as the notebook uses it
# ---------------------------------------------------------------------------

@dataclass
class SpeedupResult:
    """Everything notebook 02 shows for one setting."""

    setting: str
    sweep: dict
    chosen: dict          # activation -> lr
    runs: dict            # activation -> [run per seed]
    seeds: list
    measurement: dict

    def per_seed_table(self):
        rows = []
        for a in ACTIVATIONS:
            for seed, run in zip(self.seeds, self.runs[a]):
                epochs, censored = run_epochs_to_threshold(run)
                rows.append({"activation": a, "lr": f"{self.chosen[a]:g}", "seed": seed,
                             "epochs to 25%": f"> {epochs:.0f} (censored)" if censored else f"{epochs:.2f}"})
        return pd.DataFrame(rows).set_index(["activation", "seed"])

    def all_runs(self) -> list:
        return list(self.sweep.values()) + [r for rs in self.runs.values() for r in rs]


def speedup_experiment(setting: str, profile: str, seeds: Sequence[int], epochs: int | None = None,
                       precision: str = "fp32", progress: bool = False) -> SpeedupResult:
    """Sweep the learning rate on the first seed, then run the fastest rate of each activation on every seed."""
    seeds = [int(s) for s in seeds]
    sweep = run_sweep(setting, profile, seeds[0], lambda config, _: get_run(config, profile, progress),
                      epochs, precision)
    chosen = {a: choose_lr(sweep, a) for a in ACTIVATIONS}
    chosen_runs = {a: [sweep[(a, chosen[a])] if s == seeds[0] else
                       get_run(fig1_config(setting, a, chosen[a], s, profile, epochs, precision), profile, progress)
                       for s in seeds] for a in ACTIVATIONS}
    measurement = speedup_measurement([run_epochs_to_threshold(r) for r in chosen_runs["tanh"]],
                                      [run_epochs_to_threshold(r) for r in chosen_runs["relu"]], seeds)
    measurement["lr"] = {a: chosen[a] for a in ACTIVATIONS}
    return SpeedupResult(setting, sweep, chosen, chosen_runs, seeds, measurement)


SETTING_DESCRIPTIONS = {
    "paper": "cuda-convnet's Gaussian init, raw 0-255 pixels minus the mean image",
    "modern": "PyTorch's default init, standardised inputs",
}


def speedup_reading(measurement: Mapping) -> str:
    """What one setting's tanh/ReLU ratio says, in words, from its interval and censoring."""
    ratio, interval = measurement["value"], measurement.get("ci95")
    tanh_censored = any(measurement["censored"]["a"])
    relu_censored = any(measurement["censored"]["b"])
    if interval is None:
        return f"ratio {ratio:.2f} from one seed: no interval"
    low, high = interval
    if relu_censored and not tanh_censored:
        return "ReLU censored: its time, and so the speed-up, is not measured"
    if low > 1:
        bound = " at least (tanh censored)" if tanh_censored else ""
        return f"ReLU faster, {ratio:.1f}×{bound}"
    if high < 1:
        return f"tanh faster, {1 / ratio:.1f}×" + (" at least (ReLU censored)" if relu_censored else "")
    return "no resolved difference (the interval spans 1)"


def settings_table(results: Sequence[SpeedupResult]):
    """One row per setting: chosen rates, mean epochs to 25% per activation, the ratio, what it says."""
    rows = []
    for result in results:
        m = result.measurement
        row = {"setting": result.setting, "init and inputs": SETTING_DESCRIPTIONS.get(result.setting, "")}
        for key, activation in (("b", "relu"), ("a", "tanh")):
            values, censored = m["groups"][key], m["censored"][key]
            mean = math.exp(sum(map(math.log, values)) / len(values))
            row[f"{activation} lr"] = f"{result.chosen[activation]:g}"
            row[f"{activation} epochs to 25%"] = f"{'> ' if any(censored) else ''}{mean:.1f}"
        interval = m.get("ci95")
        row["tanh / ReLU [95% CI]"] = f"{m['value']:.2f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]"
                                                             if interval else "")
        row["reading"] = speedup_reading(m)
        rows.append(row)
    return pd.DataFrame(rows).set_index("setting")


def speedup_scale(result: SpeedupResult, profile: str) -> dict:
    """The scale block of a Fig. 1 claim: subset, stopping rule, and the epoch cap as ``epochs``."""
    config = next(r for rs in result.runs.values() for r in rs).config
    subset = f"{config.train_per_class * 10:,} train images" if config.train_per_class else "50,000 train images"
    variant = f"Fig. 1 net, {result.setting} setting, {subset}, stop {config.extra_epochs} epochs after 25% or at cap"
    return scale_of(config, result.seeds, variant, config.epochs)


@dataclass
class Measured:
    """What notebook 02 shows and records: both settings, and ``{claim_id: {measurement, scale}}``."""

    paper: SpeedupResult
    modern: SpeedupResult
    claims: dict


def plan(params: Mapping[str, Any]) -> dict[str, dict]:
    """``{setting: {(activation, lr): config}}``: each setting's sweep on the first seed. The runs on
    the other seeds use the rate each sweep finds fastest, so they are known only after it."""
    return {setting: sweep_configs(setting, params["profile"], params["seeds"][0], params["epochs"],
                                   params["precision"]) for setting in SETTINGS}


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """Both settings (sweep, then the chosen rates on every seed) and the two claims."""
    profile = params["profile"]
    paper, modern = (speedup_experiment(setting, profile, params["seeds"], params["epochs"], params["precision"],
                                        progress) for setting in SETTINGS)
    return Measured(paper, modern, {
        "relu.speedup": {"measurement": paper.measurement, "scale": speedup_scale(paper, profile)},
        "relu.speedup_modern": {"measurement": modern.measurement, "scale": speedup_scale(modern, profile)},
    })


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def plot_fig1(results: Sequence[SpeedupResult], threshold: float = THRESHOLD):
    """Training error against epochs, ReLU solid and tanh dashed, the 25% line, one panel a setting."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8), squeeze=False)
    for ax, result in zip(axes[0], results):
        for a, style, colour in (("relu", "-", "C0"), ("tanh", "--", "C3")):
            for i, run in enumerate(result.runs[a]):
                history = [] if isinstance(run, Diverged) else run.history
                xs = [0] + [row["epoch"] for row in history]
                ys = [0.9] + [row["train_error"] for row in history]
                ax.plot(xs, ys, style, color=colour, alpha=1.0 if i == 0 else 0.45, lw=1.6 if i == 0 else 1.0,
                        label=f"{a} (lr {result.chosen[a]:g})" if i == 0 else None)
        ax.axhline(threshold, color="k", lw=0.8, ls=":")
        ax.text(0.2, threshold + 0.01, "25%", fontsize=8)
        ax.set_xlabel("epochs")
        ax.set_ylabel("training error rate (running, per epoch)")
        ax.set_ylim(0, 0.95)
        ax.set_xlim(left=0)
        ax.set_title(f"{result.setting} setting ({len(result.seeds)} seed{'s' if len(result.seeds) > 1 else ''})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(result: SpeedupResult, threshold: float = THRESHOLD):
    """Every sweep run's training curve (seed 0), one colour per learning rate."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, a in zip(axes, ACTIVATIONS):
        for i, lr in enumerate(LR_GRID[result.setting]):
            run = result.sweep.get((a, lr))
            if run is None:
                continue
            history = [] if isinstance(run, Diverged) else run.history
            label = f"lr {lr:g}" + (" (diverged)" if isinstance(run, Diverged) else "") + \
                (" ← chosen" if lr == result.chosen[a] else "")
            ax.plot([0] + [r["epoch"] for r in history], [0.9] + [r["train_error"] for r in history],
                    "-" if a == "relu" else "--", color=f"C{i}", label=label)
        ax.axhline(threshold, color="k", lw=0.8, ls=":")
        ax.set_title(f"{a}, {result.setting} setting: lr sweep")
        ax.set_xlabel("epochs")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training error rate")
    fig.tight_layout()
    return fig
