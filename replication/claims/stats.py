"""The statistics the rules use, and the measurements a notebook records.

Section 6 reports one number per setting; we train several seeds and judge an
effect by a 95% interval over them: a t interval for the mean of one group,
Welch's interval for the difference of two groups (unequal variances), and a
t interval of per-seed differences for paired values (an ablation arm against
the baseline of the same seed, ten patches against the centre patch of one net).
The field's libraries compute them: ``scipy.stats`` for Student's t and the
bootstrap check, ``statsmodels`` for the smallest effect the seeds can detect.

A measurement is the plain dict a notebook records in its claims JSON and all
a rule may look at: the value, and for seeded claims the raw per-seed values,
so that a saved report can be judged again from what it holds.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestIndPower, TTestPower


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` (possibly fractional) degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {p}")
    return float(scipy_stats.t.ppf(p, df))


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    return float(scipy_stats.t.cdf(t, df))


# ---------------------------------------------------------------------------
# 95% intervals over seeds
# ---------------------------------------------------------------------------

def _mean_and_variance(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else float("nan")
    return mean, variance


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Two-sided t interval for the mean of per-seed values; None below two seeds."""
    values = [float(v) for v in values]
    if len(values) < 2:
        return None
    mean, variance = _mean_and_variance(values)
    half = student_t_quantile(0.5 + confidence / 2.0, len(values) - 1) * math.sqrt(variance / len(values))
    return (mean - half, mean + half)


def welch_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """Welch's interval for mean(a) - mean(b) (unequal variances); None below two seeds a group.

    With zero spread in both groups the interval collapses onto the difference.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, var_a = _mean_and_variance(a)
    mean_b, var_b = _mean_and_variance(b)
    difference = mean_a - mean_b
    se_a, se_b = var_a / len(a), var_b / len(b)
    standard_error = math.sqrt(se_a + se_b)
    if standard_error == 0.0:
        return (difference, difference)
    df = (se_a + se_b) ** 2 / (se_a**2 / (len(a) - 1) + se_b**2 / (len(b) - 1))
    half = student_t_quantile(0.5 + confidence / 2.0, df) * standard_error
    return (difference - half, difference + half)


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95,
                       resamples: int = 9999) -> tuple[float, float] | None:
    """A percentile bootstrap interval for the mean of ``values`` (per-seed paired differences):
    the check beside the t interval that does not assume the differences are normal. Deterministic
    (a fixed generator); None below three values, where a bootstrap has nothing to resample."""
    values = np.asarray([float(v) for v in values])
    if len(values) < 3:
        return None
    if np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    result = scipy_stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                                   method="percentile", rng=np.random.default_rng(0))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def detectable_effect(values: Sequence[float], others: Sequence[float] | None = None,
                      power: float = 0.8, alpha: float = 0.05) -> float | None:
    """The smallest true effect that this many seeds detect with ``power`` (80%) in a two-sided
    test at ``alpha`` (5%), in the units of the values, given their observed spread.

    Paired (``others`` None): ``values`` are per-seed differences, a one-sample t test. Unpaired:
    two groups, Welch-like with the pooled standard deviation. None below two seeds a group (or
    with no spread at all, where any effect is detected).
    """
    values = [float(v) for v in values]
    if others is None:
        if len(values) < 2:
            return None
        sd = float(np.std(values, ddof=1))
        if sd == 0.0:
            return None
        d = TTestPower().solve_power(effect_size=None, nobs=len(values), alpha=alpha, power=power,
                                     alternative="two-sided")
        return float(d) * sd
    others = [float(v) for v in others]
    if len(values) < 2 or len(others) < 2:
        return None
    pooled = math.sqrt(((len(values) - 1) * np.var(values, ddof=1) + (len(others) - 1) * np.var(others, ddof=1))
                       / (len(values) + len(others) - 2))
    if pooled == 0.0:
        return None
    d = TTestIndPower().solve_power(effect_size=None, nobs1=len(values), ratio=len(others) / len(values),
                                    alpha=alpha, power=power, alternative="two-sided")
    return float(d) * pooled


def jackknife_interval(full: float, leave_one_out: Sequence[float],
                       confidence: float = 0.95) -> tuple[float, float] | None:
    """The jackknife's t interval for a statistic of n members (an ensemble of n nets): ``full`` is
    its value on all n, ``leave_one_out`` its n values with one member left out each. The standard
    error is sqrt((n-1)/n * sum (theta_i - mean theta)^2), with n - 1 degrees of freedom. None
    below three members."""
    values = np.asarray([float(v) for v in leave_one_out])
    n = len(values)
    if n < 3:
        return None
    standard_error = math.sqrt((n - 1) / n * float(((values - values.mean()) ** 2).sum()))
    half = student_t_quantile(0.5 + confidence / 2.0, n - 1) * standard_error
    return (float(full) - half, float(full) + half)


def ensemble_measurement(full: float, leave_one_out: Sequence[float], seeds: Sequence[int]) -> dict:
    """Averaging n nets against its members (Section 6, Table 2): ``full`` is the ensemble's error
    minus its members' mean error (percentage points), ``leave_one_out`` the same for each ensemble
    of n - 1, which give the jackknife interval: an interval over which nets were averaged, not over
    the members' own spread."""
    interval = jackknife_interval(full, leave_one_out)
    return {"value": float(full), "leave_one_out": [float(v) for v in leave_one_out],
            "seeds": [int(s) for s in seeds], "ci95": list(interval) if interval else None}


def tower_colour_split(first: Sequence[float], second: Sequence[float], alpha: float = 0.01) -> dict:
    """Fig. 3's claim for one net: is one tower's conv1 clearly more colour-specific than the other's?

    ``first`` and ``second``: the per-kernel colour statistic of each tower's kernels. The test is
    a two-sided Mann-Whitney U test of the two distributions (no assumption of normality; kernels
    are the units), at ``alpha``; the effect size is the common-language probability that a kernel
    of the second tower is more colour-specific than one of the first (0.5: no difference).
    ``split``: +1 when the second tower is clearly more colour-specific, -1 when the first is, 0
    when the test does not separate them ("modulo a renumbering of the GPUs": either sign counts).
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each tower needs at least two kernels")
    result = scipy_stats.mannwhitneyu(b, a, alternative="two-sided")
    probability = float(result.statistic) / (len(a) * len(b))
    split = 0 if result.pvalue >= alpha else (1 if probability > 0.5 else -1)
    return {"p": float(result.pvalue), "prob_second_more_coloured": probability, "split": split,
            "alpha": alpha, "median_first": float(np.median(a)), "median_second": float(np.median(b))}


def seed_share_measurement(p_values: Sequence[float], seeds: Sequence[int], alpha: float, **per_seed) -> dict:
    """A test run once on each seed's net (Fig. 3's ``tower_colour_split``): ``value`` is how many
    seeds it finds the property in (p below ``alpha``, the claim's own), with the p-values the rule
    ``share_of_seeds`` judges again and any ``per_seed`` details (one entry a seed)."""
    p_values = [float(p) for p in p_values]
    if len(p_values) != len(seeds) or any(len(v) != len(seeds) for v in per_seed.values()):
        raise ValueError(f"one p-value and one of each detail per seed: {len(p_values)} p-values, "
                         f"{ {k: len(v) for k, v in per_seed.items()} } details for {len(seeds)} seeds")
    return {"value": sum(p < alpha for p in p_values), "p_values": p_values, "seeds": [int(s) for s in seeds],
            **{name: plain(list(values)) for name, values in per_seed.items()}}


def epochs_to_plateau(curve: Sequence[float], tolerance: float, window: int) -> int:
    """How many epochs a learning curve took to converge (Section 4.2's "iterations required to converge").

    ``curve``: the validation error after each epoch (lower is better); ``window``: how many final
    epochs define the level the run settled at (their mean). The answer is the first epoch from which
    the error never again lies more than ``tolerance`` above that level: the epochs the run needed
    until it stopped improving by more than the tolerance. A curve whose last epoch is still above
    the band gives its length (it had not settled). One-sided on purpose: a net that overfits reaches
    its lowest error early and then rises, and it has converged where it stopped improving.
    """
    values = np.asarray([float(v) for v in curve])
    if len(values) == 0:
        raise ValueError("a learning curve needs at least one epoch")
    if not 1 <= window <= len(values):
        raise ValueError(f"window must lie in 1..{len(values)} (the curve's epochs), got {window}")
    level = float(values[-window:].mean())
    above = np.flatnonzero(values > level + tolerance)
    return int(min(len(values), above[-1] + 2)) if len(above) else 1


def neighbour_label_agreement(query_labels: Sequence[int], neighbour_labels) -> float:
    """Fig. 4 made a number: the fraction of the k nearest training images (rows of
    ``neighbour_labels``, [Q, k]) that share their query's label."""
    query = np.asarray(query_labels).reshape(-1, 1)
    neighbours = np.asarray(neighbour_labels)
    if neighbours.ndim != 2 or len(neighbours) != len(query):
        raise ValueError(f"neighbour labels must be [queries, k], got {neighbours.shape} for {len(query)} queries")
    return float((neighbours == query).mean())


# ---------------------------------------------------------------------------
# Measurements: what a notebook records, and all a rule may look at
# ---------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """JSON-normal form (tuples -> lists, numpy scalars -> Python), so a value
    compares equal before and after a round trip through the claims JSON."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a claims JSON: {value!r}")


def exact_measurement(value: Any) -> dict:
    """A deterministic measurement (counts, shapes): no seeds, no spread."""
    return {"value": plain(value)}


def seeded_measurement(values: Sequence[float], seeds: Sequence[int]) -> dict:
    """One value per seed: the mean, the values and their 95% t interval."""
    values = [float(v) for v in values]
    if len(values) != len(seeds):
        raise ValueError(f"{len(values)} values for {len(seeds)} seeds")
    interval = t_interval(values)
    return {
        "value": sum(values) / len(values),
        "values": values,
        "seeds": [int(s) for s in seeds],
        "ci95": list(interval) if interval else None,
    }


def difference_measurement(
    a: Sequence[float], b: Sequence[float], seeds: Sequence[int], scale: str = "linear"
) -> dict:
    """Two groups of per-seed values (e.g. ReLU vs tanh) and their difference.

    ``scale="log"`` compares ratios: the difference of the logs, reported as
    the ratio exp(mean log a - mean log b) ("six times faster").
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if scale == "log":
        interval = welch_interval([math.log(v) for v in a], [math.log(v) for v in b])
        effect = math.exp(sum(map(math.log, a)) / len(a) - sum(map(math.log, b)) / len(b))
        interval = [math.exp(interval[0]), math.exp(interval[1])] if interval else None
    elif scale == "linear":
        interval = welch_interval(a, b)
        effect = sum(a) / len(a) - sum(b) / len(b)
        interval = list(interval) if interval else None
    else:
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    detectable = detectable_effect([math.log(v) for v in a], [math.log(v) for v in b]) if scale == "log" \
        else detectable_effect(a, b)
    return {
        "value": effect,
        "groups": {"a": a, "b": b},
        "seeds": [int(s) for s in seeds],
        "scale": scale,
        "ci95": interval,
        # the smallest effect these seeds detect (80% power); a ratio on the log scale
        "detectable": (math.exp(detectable) if scale == "log" else detectable) if detectable else None,
    }


def paired_ratio_measurement(a: Sequence[float], b: Sequence[float], seeds: Sequence[int]) -> dict:
    """Per-seed pairs of positive values (epochs, seconds) compared as ratios a_i / b_i: the
    geometric mean ratio exp(mean log(a_i / b_i)) with the paired 95% t interval of the log ratios
    (and a bootstrap check, and the smallest detectable ratio), carried back to ratios. Logs, because
    a ratio of 2 and one of 1/2 are equally far from 1."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or len(a) != len(seeds):
        raise ValueError(f"{len(a)} and {len(b)} values for {len(seeds)} seeds")
    if min(a + b, default=1.0) <= 0.0:
        raise ValueError(f"ratios need positive values, got {a} and {b}")
    logs = [math.log(x / y) for x, y in zip(a, b)]
    interval, bootstrap, detectable = t_interval(logs), bootstrap_interval(logs), detectable_effect(logs)
    return {"value": math.exp(sum(logs) / len(logs)), "groups": {"a": a, "b": b},
            "seeds": [int(s) for s in seeds], "paired": True, "scale": "log",
            "ci95": [math.exp(v) for v in interval] if interval else None,
            "bootstrap95": [math.exp(v) for v in bootstrap] if bootstrap else None,
            "detectable": math.exp(detectable) if detectable else None}


def paired_measurement(a: Sequence[float], b: Sequence[float], seeds: Sequence[int]) -> dict:
    """Per-seed pairs (a_i, b_i) measured on the same net (ten-crop vs centre of one run, an
    ensemble vs each of its members): the mean of a_i - b_i and its 95% t interval."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or len(a) != len(seeds):
        raise ValueError(f"{len(a)} and {len(b)} values for {len(seeds)} seeds")
    differences = [x - y for x, y in zip(a, b)]
    interval = t_interval(differences)
    bootstrap = bootstrap_interval(differences)
    return {"value": sum(differences) / len(differences), "groups": {"a": a, "b": b},
            "seeds": [int(s) for s in seeds], "paired": True, "ci95": list(interval) if interval else None,
            "bootstrap95": list(bootstrap) if bootstrap else None,
            "detectable": detectable_effect(differences)}
