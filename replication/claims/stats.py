"""The statistics the rules use, and the measurements a notebook records.

Section 6 reports one number per setting; we train several seeds and judge an
effect by a 95% interval over them: a t interval for the mean of one group,
Welch's interval for the difference of two groups (unequal variances), and a
t interval of per-seed differences for paired values (ten patches vs the
centre patch of one net). Student's t is computed here, so no SciPy is needed.

A measurement is the plain dict a notebook records in its claims JSON and all
a rule may look at: the value, and for seeded claims the raw per-seed values,
so that a saved report can be judged again from what it holds.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

# ---------------------------------------------------------------------------
# Student's t without SciPy
# ---------------------------------------------------------------------------

def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta (Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - front * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (possibly fractional) degrees of freedom."""
    tail = 0.5 * _regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """Inverse of ``student_t_cdf`` by bisection (exact to ~1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {p}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if student_t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


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
    return {
        "value": effect,
        "groups": {"a": a, "b": b},
        "seeds": [int(s) for s in seeds],
        "scale": scale,
        "ci95": interval,
    }


def paired_measurement(a: Sequence[float], b: Sequence[float], seeds: Sequence[int]) -> dict:
    """Per-seed pairs (a_i, b_i) measured on the same net (ten-crop vs centre of one run, an
    ensemble vs each of its members): the mean of a_i - b_i and its 95% t interval."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or len(a) != len(seeds):
        raise ValueError(f"{len(a)} and {len(b)} values for {len(seeds)} seeds")
    differences = [x - y for x, y in zip(a, b)]
    interval = t_interval(differences)
    return {"value": sum(differences) / len(differences), "groups": {"a": a, "b": b},
            "seeds": [int(s) for s in seeds], "paired": True, "ci95": list(interval) if interval else None}
