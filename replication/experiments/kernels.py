"""Notebook 09: Fig. 3, the kernels of conv1 in each tower (Section 6.1).

Section 6.1: "the kernels on GPU 1 are largely color-agnostic, while the kernels on GPU 2 are
largely color-specific. This kind of specialization occurs during every run and is independent of
any particular random weight initialization (modulo a renumbering of the GPUs)."

Made a number: for every conv1 kernel, ``figures.kernel_colour_statistic`` (0: the same weights in
R, G and B, a kernel that sees luminance only; near 1: its variation is all between colours); per
net, a two-sided Mann-Whitney test of one tower's statistics against the other's
(``claims.tower_colour_split``, alpha 0.01); over the seeds, in how many nets one tower is clearly
more colour-specific than the other (either tower: the renumbering). The two-tower baseline nets of
the paired protocol store conv1 when they finish (``engine.final``), so nothing trains for this
notebook that the other notebooks do not train as well. The control is the arm ``one_tower``
(footnote 2's one-tower net): its conv1 split into two halves by kernel index, where nothing ties
a kernel to its half, so no split is expected.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from replication import claims
from replication.claims import Claim, register
from replication.engine import figures
from replication.engine.trainer import initial_model
from replication.experiments.paired import (IMAGENET, Arms, Measured, measure_datasets, plan_datasets, scale,
                                            with_stopping)

NOTEBOOK = "09_kernels"
CONTROL = "one_tower"
ALPHA = 0.01        # per net: the Mann-Whitney test's level (kernels are its units)
MIN_SEEDS = 5       # "every run": judged over five nets at least
# The test needs kernels the net learned: when more than half of a typical conv1 kernel's energy still
# lies along its random initial weights (``init_share``), the colour statistic measures the draw.
INIT_SHARE_LIMIT = 0.5
AT_OUR_SCALE = ("Measured on the miniature protocol (notebook 00): the finished baseline nets of the profile's "
                "ImageNet stand-in (Imagenette below the paper profile: 112 px crops, the paper's 11×11 stride-4 "
                "conv1 at the recipe's width), one net a seed; the paper's nets are 90 epochs at full width.")

register(Claim(
    id="kernels.tower_split", notebook=NOTEBOOK,
    statement="In every run one tower's conv1 kernels are largely colour-agnostic and the other's largely "
              "colour-specific, whatever the initialisation (modulo a renumbering of the GPUs)",
    paper_value=1.0, paper_display="every run (no number given)", source={"section": "6.1", "figure": "Fig. 3"},
    unit="seeds", rule="share_of_seeds",
    params={"alpha": ALPHA, "at_least": 0.8, "min_seeds": MIN_SEEDS},
    note="Measured: the number of seeds whose two towers' colour statistics (figures.kernel_colour_statistic, "
         "one a kernel) differ by a two-sided Mann-Whitney test at alpha 0.01, either tower the more coloured. "
         "Reproduced when at least 4 of 5 seeds (a share of 0.8) split, not reproduced when at most a fifth "
         "do, inconclusive between or below five seeds. " + AT_OUR_SCALE,
))
register(Claim(
    id="kernels.one_tower_control", notebook=NOTEBOOK,
    statement="A one-tower net's conv1 kernels, split in two halves by index, show no such split (the control)",
    paper_value=0.0, paper_display="no split expected (not in the paper)", source={"section": "6.1", "figure": "Fig. 3"},
    unit="seeds", rule="share_of_seeds", params={"alpha": ALPHA, "at_most": 0.2, "min_seeds": MIN_SEEDS},
    kind="check",
    note="The test of kernels.tower_split on footnote 2's one-tower net (arm one_tower, half the kernels in "
         "conv1), its kernels split into a first and a second half by index: nothing ties a kernel to its "
         "half, so a split here would mean the test finds splits where there are none. Each half has half "
         "as many kernels as a baseline tower, so the test is weaker here: the effect size "
         "(P(second more coloured), 0.5 none) is shown beside it. " + AT_OUR_SCALE,
))
DATASETS = {IMAGENET: "the ImageNet stand-in"}


def plan(params: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{IMAGENET: {"baseline": [...], "one_tower": [...]}}`` at the seeds of ``params``."""
    return plan_datasets(params, DATASETS, [CONTROL])


def measure(params: Mapping[str, Any], progress: bool = False) -> Measured:
    """The baselines' and the control's runs (trained when missing), and the claims."""
    return measure_datasets(params, DATASETS, [CONTROL], claims_of, progress)


def groups(run) -> list[np.ndarray]:
    """The colour statistic of each group a net's test compares: the towers of a two-tower net, the
    first and second half (by index) of a one-tower net's kernels."""
    towers = figures.conv1_colour_statistics(run.artifact("conv1"))
    if len(towers) == 1:
        half = len(towers[0]) // 2
        return [towers[0][:half], towers[0][half:2 * half]]
    return towers


def splits(runs: Sequence) -> list[dict]:
    """``claims.tower_colour_split`` of every net, in seed order."""
    return [claims.tower_colour_split(*groups(run), alpha=ALPHA) for run in runs]


def split_measurement(runs: Sequence) -> dict:
    """How many of these nets split (``claims.seed_share_measurement``), with each net's test."""
    tests = splits(runs)
    return claims.seed_share_measurement(
        [t["p"] for t in tests], [run.config.seed for run in runs], ALPHA,
        prob_second_more_coloured=[t["prob_second_more_coloured"] for t in tests],
        coloured_tower=[{1: 2, -1: 1, 0: None}[t["split"]] for t in tests])


# ---------------------------------------------------------------------------
# Did conv1 learn? (the precondition of both claims)
# ---------------------------------------------------------------------------

def initial_conv1(run) -> np.ndarray:
    """conv1's kernels as the run started, [K, 3, h, w] (every tower's, in the stored order), rebuilt from
    its config exactly as the trainer built them (``engine.trainer.initial_model``). conv1's initial
    weights do not depend on the number of classes or the input size (with ``layer_seeds`` each layer
    draws from its own seed; without, conv1 draws first)."""
    classes = run.summary.get("classes")
    with torch.random.fork_rng(devices=[]):
        model = initial_model(run.config, classes if isinstance(classes, int) else 10, run.config.crop or 224)
    return np.concatenate([w.numpy() for w in figures.conv1_kernels(model)])


def init_share(run) -> np.ndarray:
    """Per conv1 kernel: the share of its final weights' energy along its initial weights, the squared
    cosine between the two (1: it is its random initialisation, rescaled; near 0: it moved away)."""
    final = np.concatenate([w.numpy() for w in figures.conv1_kernels(run.artifact("conv1"))])
    start = initial_conv1(run)
    if final.shape != start.shape:
        raise ValueError(f"run {run.hash}: stored conv1 {final.shape} is not the shape its config builds "
                         f"{start.shape}")
    a, b = final.reshape(len(final), -1), start.reshape(len(start), -1)
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return cosine ** 2


def median_init_share(runs: Sequence) -> float:
    """The median over nets of each net's median ``init_share``: how much of a typical kernel is still
    its random initialisation."""
    return float(np.median([np.median(init_share(run)) for run in runs]))


def not_learned(arms: Arms, arm: str, what: str) -> dict | None:
    """The claim's entry when conv1 has not left its random initialisation (``INIT_SHARE_LIMIT``): not
    evaluated, with the number; None when conv1 learned enough for the test to measure it."""
    share = median_init_share(arms.runs[arm])
    if share < INIT_SHARE_LIMIT:
        return None
    nets = f"{len(arms.runs[arm])} net{'s' if len(arms.runs[arm]) != 1 else ''}"
    return {"measurement": None,
            "scale": {**scale(arms, what), "variant": (
                f"{arms.recipe.net_label()}; {what}; not at this scale: conv1 "
                f"kept its random initialisation (a median {share:.0%} of each kernel's energy along its initial "
                f"weights, {nets}; the test needs under {INIT_SHARE_LIMIT:.0%}), so a colour "
                "statistic would measure the initialisation, not what the net learned")}}


def claims_of(got: Mapping[str, Arms], params: Mapping[str, Any]) -> dict[str, dict]:
    arms = got[IMAGENET]
    split_what = "conv1 of the two-tower baseline, one Mann-Whitney test a seed"
    control_what = "conv1 of the one-tower net (arm one_tower), halves by index, one Mann-Whitney test a seed"
    return {
        "kernels.tower_split": not_learned(arms, "baseline", split_what) or {
            "measurement": with_stopping(split_measurement(arms.runs["baseline"]), arms, "baseline"),
            "scale": scale(arms, split_what)},
        "kernels.one_tower_control": not_learned(arms, CONTROL, control_what) or {
            "measurement": with_stopping(split_measurement(arms.runs[CONTROL]), arms, CONTROL),
            "scale": scale(arms, control_what)},
    }


# ---------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------

def plot_kernels(run, title: str | None = None):
    """Fig. 3 for one stored net: every conv1 kernel, one block of rows per tower."""
    return figures.plot_conv1_kernels(run.artifact("conv1"), ncols=12,
                                      title=f"{title + ': ' if title else ''}conv1 of seed {run.config.seed}")


def split_table(arms: Arms) -> pd.DataFrame:
    """Per net (baseline and control, each seed): the median colour statistic of each group, the
    test's p-value, P(a kernel of the second group is more coloured than one of the first) and
    whether the net splits at alpha 0.01."""
    rows = []
    for arm, label in (("baseline", "two towers"), (CONTROL, "one tower, halves by index")):
        for run, test in zip(arms.runs[arm], splits(arms.runs[arm])):
            first, second = groups(run)
            rows.append({"net": f"{label}, seed {run.config.seed}", "kernels a group": len(first),
                         "median, group 1": f"{np.median(first):.2f}", "median, group 2": f"{np.median(second):.2f}",
                         "p (Mann-Whitney)": f"{test['p']:.1e}",
                         "P(group 2 more coloured)": f"{test['prob_second_more_coloured']:.2f}",
                         f"split at {ALPHA:g}": {1: "group 2 coloured", -1: "group 1 coloured", 0: "no"}[test["split"]]})
    return pd.DataFrame(rows).set_index("net")


def init_table(arms: Arms) -> pd.DataFrame:
    """Per net (baseline and control, each seed): how much of its conv1 kernels is still their random
    initialisation (``init_share``: median, the middle half, and the least of any kernel)."""
    rows = []
    for arm, label in (("baseline", "two towers"), (CONTROL, "one tower")):
        for run in arms.runs[arm]:
            share = init_share(run)
            rows.append({"net": f"{label}, seed {run.config.seed}", "kernels": len(share),
                         "energy along the initial weights, median %": f"{100 * np.median(share):.0f}",
                         "middle half %": f"{100 * np.quantile(share, 0.25):.0f}-{100 * np.quantile(share, 0.75):.0f}",
                         "least %": f"{100 * share.min():.0f}"})
    return pd.DataFrame(rows).set_index("net")


def plot_kernels_at_init(run):
    """The kernels of ``plot_kernels(run)`` as the run drew them before its first step (same layout)."""
    start = initial_conv1(run).reshape(np.shape(run.artifact("conv1")))
    return figures.plot_conv1_kernels(start, ncols=12, title=f"the same conv1 at its initialisation (seed "
                                                             f"{run.config.seed}), before the first step")


def plot_distributions(arms: Arms):
    """The colour statistic of every kernel, per group, per net: the two towers of each baseline net
    (top row) and the two halves of each one-tower net (bottom row), one column a seed."""
    seeds = arms.seeds
    fig, axes = plt.subplots(2, len(seeds), figsize=(2.2 * len(seeds) + 1, 5), sharey=True, squeeze=False)
    plt.close(fig)
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for row, (arm, names) in enumerate((("baseline", ("tower 1", "tower 2")), (CONTROL, ("half 1", "half 2")))):
        for column, (run, test) in enumerate(zip(arms.runs[arm], splits(arms.runs[arm]))):
            ax = axes[row, column]
            for position, values in enumerate(groups(run)):
                ax.boxplot([values], positions=[position], widths=0.5, showfliers=False)
                ax.plot(position + rng.uniform(-0.15, 0.15, len(values)), values, ".", ms=3, alpha=0.6)
            ax.set_xticks([0, 1], names, fontsize=8)
            ax.set_ylim(0.0, 1.0)
            ax.set_title(f"seed {run.config.seed}: p = {test['p']:.1g}", fontsize=8)
        axes[row, 0].set_ylabel(("two towers" if arm == "baseline" else "one tower") + "\ncolour statistic")
    fig.suptitle("conv1's colour statistic per kernel (0: grey; 1: colour only)", fontsize=9)
    fig.tight_layout()
    return fig
