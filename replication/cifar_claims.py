"""The CIFAR-10 claims: ReLU vs tanh (Section 3.1, Fig. 1) and LRN (Section 3.3).

Notebooks 02_relu_speedup and 03_lrn call into this module; every number
they show is computed here from runs of the run store (``runs.get``).

- **Configs per profile.** ``fig1_config`` (the four-layer net of Fig. 1 in
  the paper's setting or the modern default one) and ``lrn_config`` (the
  Section 3.3 conv-local net with and without LRN). The cpu-profile configs
  define the committed run hashes: do not change them without retraining.
- **Measurements.** ``epochs_to_threshold`` (epochs until the running
  training error first falls below 25%, interpolated linearly between epoch
  ends; a run that never gets there is *censored* at its last epoch),
  ``choose_lr`` (the fastest rate of a sweep), ``speedup_measurement`` (the
  tanh/ReLU ratio over seeds with its 95% interval, censoring kept),
  ``lrn_measurement`` (the test-error difference with its Welch interval).
- **Figures.** ``plot_fig1`` (as Fig. 1: tanh dashed, the 25% line) and
  ``plot_learning_curves``.
- **The driver.** ``python -m replication.cifar_claims --profile cpu`` trains
  every run the two notebooks need, in priority order, each stored
  atomically in ``runs/<hash>/`` as it finishes; killed, it resumes from the
  checkpoint cache. ``--profile smoke`` trains into the scratch store.

A run whose loss becomes NaN (a learning rate too large, in a sweep) is
recorded in ``runs/_diverged/<hash>.json`` and counts as never reaching 25%.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from replication import claims

THRESHOLD = 0.25  # Fig. 1: 25% training error
SETTINGS = ("paper", "modern")
ACTIVATIONS = ("relu", "tanh")
DATASET = "cifar10-jpeg"

# The learning-rate sweep of Fig. 1 (the paper: "the learning rates for each network were chosen
# independently to make training as fast as possible"): the same three rates for both activations.
# Paper setting: on this net with raw 0..255 pixels, ReLU at 0.003 reached 25% in 14 epochs of the cpu
# subset and was ahead of 0.01 at every epoch, so the grid brackets 0.003. Modern setting: around the
# issue's quick-run rate 0.01.
LR_GRID = {"paper": (0.001, 0.003, 0.01), "modern": (0.003, 0.01, 0.03)}
MODERN_INPUT_SCALE = 64.0  # ~ the std of CIFAR-10's mean-subtracted pixels on the 0..255 scale


@dataclass(frozen=True)
class Scale:
    """What a profile trains for one notebook (documented in the notebooks' budget cells)."""

    fig1_train_per_class: int | None
    fig1_val_per_class: int | None
    fig1_epoch_cap: int
    fig1_extra_epochs: int
    lrn_train_per_class: int | None
    lrn_val_per_class: int | None
    lrn_epochs: int
    lrn_lr: float
    data_variant: str | None = None  # None: the full release; "sample": data/sample/ (smoke)


SCALES = {
    # the committed sample (30 train and 20 test images a class), a few steps: the same cells and
    # figures, in about a minute, with nothing downloaded
    "smoke": Scale(None, None, 2, 1, None, None, 1, 0.001, data_variant="sample"),
    # about an hour of training a notebook on 2 uncontended cores (fp32, 1,000 img/s for Fig. 1's net,
    # ~450 img/s for the conv-local net): Fig. 1 on a 10,000-image class-balanced subset (1,000 per class),
    # capped at 30 epochs; LRN on the full 50,000 for 5 epochs
    "cpu": Scale(1000, 200, 30, 2, None, None, 5, 0.001),
    # the paper's own scale: all of CIFAR-10; Fig. 1 to 35+ epochs, the conv-local net for cuda-convnet's 350
    "paper": Scale(None, None, 60, 5, None, None, 350, 0.001),
}


def scale_for(profile: str) -> Scale:
    try:
        return SCALES[profile]
    except KeyError:
        raise ValueError(f"no CIFAR-10 scale for profile {profile!r}; known: {sorted(SCALES)}") from None


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------

def fig1_config(setting: str, activation: str, lr: float, seed: int, profile: str,
                epochs: int | None = None, precision: str = "fp32"):
    """One Fig. 1 run: the four-layer net, no regularisation of any kind, constant lr, momentum 0.9,
    stopped ``extra_epochs`` after its running training error crosses 25% (or at the epoch cap).

    ``paper``: the Gaussian initialisation of cuda-convnet's CIFAR configs (conv1 std 1e-4, others 1e-2,
    zero biases) and the paper's preprocessing, raw 0..255 pixels minus the mean image.
    ``modern``: PyTorch's default (Kaiming-uniform) initialisation and standardised inputs
    (mean image subtracted, divided by 64).
    """
    from replication.engine.config import TrainConfig

    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    s = scale_for(profile)
    model = {"arch": "fig1", "activation": activation}
    if setting == "modern":
        model["paper_init"] = False
    return TrainConfig(
        model=model, dataset=DATASET, train_per_class=s.fig1_train_per_class, val_per_class=s.fig1_val_per_class,
        crop=None, flip=False, lighting_std=0.0, mean_subtraction=True,
        input_scale=1.0 if setting == "paper" else MODERN_INPUT_SCALE,
        optimizer="paper", lr=lr, momentum=0.9, weight_decay=0.0, schedule="constant",
        epochs=epochs or s.fig1_epoch_cap, stop_at_train_error=THRESHOLD, extra_epochs=s.fig1_extra_epochs,
        seed=seed, precision=precision, channels_last=False, data_variant=s.data_variant,
    )


def lrn_config(lrn: bool, seed: int, profile: str, epochs: int | None = None, precision: str = "fp32"):
    """One Section 3.3 run: cuda-convnet's conv-local net (24 px crops), with or without LRN.

    The paper's CIFAR augmentation (random 24 px crops of the 32 px images and horizontal flips;
    centre crop at test), mean image subtracted from raw pixels, cuda-convnet's Gaussian init,
    momentum 0.9, weight decay 0.0005, lr constant then divided by 10 for the last epoch.
    """
    from replication.engine.config import TrainConfig

    s = scale_for(profile)
    epochs = epochs or s.lrn_epochs
    return TrainConfig(
        model={"arch": "conv_local", "lrn": bool(lrn)}, dataset=DATASET,
        train_per_class=s.lrn_train_per_class, val_per_class=s.lrn_val_per_class,
        crop=24, flip=True, lighting_std=0.0, mean_subtraction=True,
        optimizer="paper", lr=s.lrn_lr, momentum=0.9, weight_decay=5e-4,
        schedule="fixed" if epochs > 1 else "constant", lr_drop_epochs=(epochs - 1,) if epochs > 1 else (),
        epochs=epochs, seed=seed, precision=precision, channels_last=False, data_variant=s.data_variant,
    )


def sweep_configs(setting: str, profile: str, seed: int, epochs: int | None = None, precision: str = "fp32"):
    """``{(activation, lr): config}`` of one setting's learning-rate sweep (one seed)."""
    return {(a, lr): fig1_config(setting, a, lr, seed, profile, epochs, precision)
            for a in ACTIVATIONS for lr in LR_GRID[setting]}


# ---------------------------------------------------------------------------
# Getting runs (trains when missing; smoke runs go to the scratch store)
# ---------------------------------------------------------------------------

def _diverged_path(config) -> Path:
    from replication.engine import runs

    return runs.store_dir() / "_diverged" / f"{runs.config_hash(config)}.json"


@dataclass
class Diverged:
    """A run whose training loss became NaN/inf: it never reaches the threshold."""

    config: object
    hash: str
    epoch: int
    history: list

    summary = {}


def get_run(config, profile: str, progress: bool = False, threads: int | None = None):
    """``runs.get`` (scratch store for smoke), or a :class:`Diverged` record for a NaN run."""
    from replication.engine import runs
    from replication.engine.config import config_hash
    from replication.engine.trainer import NonFiniteLossError

    scratch = profile == "smoke"
    path = _diverged_path(config) if not scratch else runs.scratch_store_dir() / "_diverged" / \
        f"{config_hash(config)}.json"
    if path.exists():
        record = json.loads(path.read_text())
        return Diverged(config, record["hash"], record["epoch"], record.get("history", []))
    try:
        return runs.get(config, progress=progress, threads=threads, scratch=scratch)
    except NonFiniteLossError as error:
        if runs.read_only() and not scratch:
            raise
        history = []
        if error.checkpoint is not None and Path(error.checkpoint).exists():
            from replication.engine.checkpoints import load_checkpoint

            history = load_checkpoint(error.checkpoint)["metrics"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"hash": config_hash(config), "epoch": error.epoch, "step": error.step,
                                    "config": config.to_dict(), "history": history}, indent=1) + "\n")
        return Diverged(config, config_hash(config), error.epoch, history)


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
    import pandas as pd

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


def lrn_measurement(without: Sequence[float], with_: Sequence[float], seeds: Sequence[int]) -> dict:
    """Test error without LRN minus with LRN (percentage points), per seed, with Welch's 95% interval."""
    return claims.difference_measurement([100 * v for v in without], [100 * v for v in with_], seeds)


def test_errors_measurement(values: Sequence[float], seeds: Sequence[int]) -> dict:
    """Per-seed test errors (fractions) as a seeded measurement in percent."""
    return claims.seeded_measurement([100 * v for v in values], seeds)


def scale_of(config, seeds: Sequence[int], variant: str, epochs: int | None = None) -> dict:
    """The ``scale`` block of a claim entry for runs of ``config``."""
    size = config.crop or 32
    dataset = config.dataset + (f" ({config.data_variant})" if config.data_variant else "")
    return {"dataset": dataset, "variant": variant, "image_size": size,
            "epochs": epochs if epochs is not None else config.epochs,
            "precision": config.precision, "seeds": [int(s) for s in seeds]}


# ---------------------------------------------------------------------------
# The two experiments as the notebooks use them
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
        import pandas as pd

        rows = []
        for a in ACTIVATIONS:
            for seed, run in zip(self.seeds, self.runs[a]):
                epochs, censored = run_epochs_to_threshold(run)
                rows.append({"activation": a, "lr": f"{self.chosen[a]:g}", "seed": seed,
                             "epochs to 25%": f"> {epochs:.0f} (censored)" if censored else f"{epochs:.2f}"})
        return pd.DataFrame(rows).set_index(["activation", "seed"])


def speedup_experiment(setting: str, profile: str, seeds: Sequence[int], epochs: int | None = None,
                       precision: str = "fp32", progress: bool = False) -> SpeedupResult:
    """Sweep the learning rate on the first seed, then run the fastest rate of each activation on every seed."""
    seeds = [int(s) for s in seeds]
    sweep = {key: get_run(c, profile, progress) for key, c in
             sweep_configs(setting, profile, seeds[0], epochs, precision).items()}
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
    import pandas as pd

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
class LRNResult:
    seeds: list
    runs: dict            # True/False -> [run per seed]
    measurement: dict

    def per_seed_table(self):
        import pandas as pd

        rows = [{"LRN": "with" if lrn else "without", "seed": s, "test error": f"{100 * r.summary['val_top1']:.2f}%",
                 "final running train error": f"{100 * r.history[-1]['train_error']:.2f}%"}
                for lrn in (False, True) for s, r in zip(self.seeds, self.runs[lrn])]
        return pd.DataFrame(rows).set_index(["LRN", "seed"])


def lrn_experiment(profile: str, seeds: Sequence[int], epochs: int | None = None, precision: str = "fp32",
                   progress: bool = False) -> LRNResult:
    seeds = [int(s) for s in seeds]
    runs_ = {lrn: [get_run(lrn_config(lrn, s, profile, epochs, precision), profile, progress) for s in seeds]
             for lrn in (False, True)}
    errors = {lrn: [r.summary["val_top1"] for r in runs_[lrn]] for lrn in (False, True)}
    return LRNResult(seeds, runs_, lrn_measurement(errors[False], errors[True], seeds))


def lrn_claims(result: LRNResult, profile: str) -> dict:
    """``{claim_id: {"measurement", "scale"}}`` for notebook 03."""
    config = lrn_config(True, result.seeds[0], profile)
    variant = "conv-local net, 24 px crops" + (", full train set" if config.train_per_class is None else
                                               f", {config.train_per_class * 10:,} train images")
    scale = scale_of(config, result.seeds, variant, len(result.runs[True][0].history))
    return {
        "lrn.cifar_without": {"measurement": test_errors_measurement(
            [r.summary["val_top1"] for r in result.runs[False]], result.seeds), "scale": scale},
        "lrn.cifar_with": {"measurement": test_errors_measurement(
            [r.summary["val_top1"] for r in result.runs[True]], result.seeds), "scale": scale},
        "lrn.cifar_difference": {"measurement": result.measurement, "scale": scale},
    }


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def plot_fig1(results: Sequence[SpeedupResult], threshold: float = THRESHOLD):
    """Training error against epochs, ReLU solid and tanh dashed, the 25% line, one panel a setting."""
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

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


def plot_learning_curves(result: LRNResult):
    """Running training error and test error per epoch, with and without LRN, every seed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for lrn, colour in ((False, "C3"), (True, "C0")):
        for i, run in enumerate(result.runs[lrn]):
            epochs = [r["epoch"] for r in run.history]
            label = ("with LRN" if lrn else "without LRN") if i == 0 else None
            axes[0].plot(epochs, [100 * r["train_error"] for r in run.history], color=colour, alpha=0.8, label=label)
            axes[1].plot(epochs, [100 * r["val_top1"] for r in run.history], color=colour, alpha=0.8, label=label)
    axes[0].set_title("training error (running, per epoch)")
    axes[1].set_title("test error (10,000 test images, centre crop)")
    for ax in axes:
        ax.set_xlabel("epochs")
        ax.set_ylabel("error (%)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# The driver: train everything the two notebooks need, in priority order
# ---------------------------------------------------------------------------

def _params(profile: str) -> dict:
    from replication import profiles

    return profiles.load_profile(profile)


def drive(profile: str = "cpu", only: Iterable[str] = ("02", "03"), threads: int | None = 2,
          progress: bool = False, log=print) -> None:
    """Train (or find) every run of notebooks 02 and 03 for ``profile``, most important first.

    Order: 02's paper-setting sweep, its chosen rates on the other seeds, the modern setting;
    then 03's runs seed by seed (both arms of a seed before the next seed). Each finished run
    is stored at once; a killed driver resumes from the checkpoint cache.
    """
    import time

    import torch

    if threads:
        torch.set_num_threads(threads)
    params = _params(profile)
    seeds, epochs, precision = params["seeds"], params["epochs"], params["precision"]
    only = set(only)

    def fetch(config, what):
        from replication.engine.config import config_hash

        began = time.time()
        log(f"[{time.strftime('%H:%M:%S')}] {what} {config_hash(config)} ...")
        run = get_run(config, profile, progress, threads)
        status = "diverged" if isinstance(run, Diverged) else \
            f"{len(run.history)} epochs, to 25%: {run_epochs_to_threshold(run)}" if config.stop_at_train_error \
            else f"{len(run.history)} epochs, val top-1 {run.summary['val_top1']:.4f}"
        log(f"[{time.strftime('%H:%M:%S')}]   done in {time.time() - began:.0f} s: {status}")
        return run

    settings = [s for s in SETTINGS if "02" in only or f"02-{s}" in only]
    if settings:
        for setting in settings:
            sweep = {key: fetch(c, f"02 {setting} sweep {key}")
                     for key, c in sweep_configs(setting, profile, seeds[0], epochs, precision).items()}
            chosen = {a: choose_lr(sweep, a) for a in ACTIVATIONS}
            log(f"02 {setting}: chosen {chosen}")
            for s in seeds[1:]:
                for a in ACTIVATIONS:
                    fetch(fig1_config(setting, a, chosen[a], s, profile, epochs, precision),
                          f"02 {setting} {a} lr {chosen[a]:g} seed {s}")
    if "03" in only:
        for s in seeds:
            for lrn in (True, False):
                fetch(lrn_config(lrn, s, profile, epochs, precision), f"03 lrn={lrn} seed {s}")
    log("all runs done")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.cifar_claims", description=drive.__doc__)
    parser.add_argument("--profile", default="cpu", help="profile whose runs to train (default: cpu)")
    parser.add_argument("--only", nargs="+", default=["02", "03"], help="notebooks: 02, 03, or one setting of 02: 02-paper, 02-modern "
                        "(default: 02 03)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    args = parser.parse_args(argv)
    drive(args.profile, args.only, args.threads, log=lambda *a: print(*a, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------------------
# The budget: what was trained, and how long it took (from the stored summaries)
# ---------------------------------------------------------------------------

def all_runs_of(result) -> list:
    """Every distinct stored run behind a SpeedupResult or LRNResult."""
    found = {}
    if isinstance(result, SpeedupResult):
        candidates = list(result.sweep.values()) + [r for rs in result.runs.values() for r in rs]
    else:
        candidates = [r for rs in result.runs.values() for r in rs]
    for run in candidates:
        found[run.hash] = run
    return list(found.values())


def budget_table(results: Mapping[str, object]):
    """Per experiment: runs, epochs and images trained, training hours, precision, memory format and
    the machines they ran on."""
    import pandas as pd

    from replication.provenance import describe_machines

    rows = []
    for name, result in results.items():
        stored = [r for r in all_runs_of(result) if not isinstance(r, Diverged)]
        seconds = sum(r.summary.get("train_seconds", 0.0) for r in stored)
        epochs = sum(len(r.history) for r in stored)
        images = sum(len(r.history) * r.summary.get("train_images", 0) for r in stored)
        rows.append({"experiment": name, "runs": len(all_runs_of(result)), "epochs": epochs,
                     "images trained": f"{images:,}", "training time": f"{seconds / 60:.1f} min",
                     "precision": ", ".join(sorted({r.config.precision for r in stored})) or "—",
                     "channels_last": ", ".join(sorted({str(r.config.channels_last) for r in stored})) or "—",
                     "machine": describe_machines([r.summary.get("hardware") for r in stored])})
    return pd.DataFrame(rows).set_index("experiment")
