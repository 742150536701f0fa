"""The rules that turn a claim's measurement into a status, and the statuses.

A status is always computed by the claim's registered rule from the recorded
measurement, never typed in, so a saved report can be judged again and CI can
prove that the committed statuses are what the code says. A rule is a function
``(claim, measurement) -> status`` registered in ``RULES`` under its name; a
claim names its rule and the rule's parameters (a tolerance factor...).

The principle every statistical rule follows: the direction of an effect must
hold with a 95% interval that excludes zero, and its size must lie within a
stated factor of the paper's for *reproduced*; the direction alone is *partly
reproduced*; an interval that spans zero is *inconclusive*; an interval that
excludes zero on the wrong side is *not reproduced*.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Protocol

from replication.claims.stats import plain, t_interval, welch_interval

REPRODUCED = "reproduced"
PARTLY_REPRODUCED = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_EVALUATED = "not evaluated"
STATUSES = (REPRODUCED, PARTLY_REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_EVALUATED)


class Judged(Protocol):
    """What a rule reads of a claim (``registry.Claim`` has these and more)."""

    paper_value: Any
    params: Mapping[str, Any]


Rule = Callable[[Judged, Mapping[str, Any]], str]
RULES: dict[str, Rule] = {}


def rule(function: Rule) -> Rule:
    """Register a rule under its function name."""
    RULES[function.__name__] = function
    return function


# ---------------------------------------------------------------------------
# Single values: exact counts, rounded numbers, absolute error rates
# ---------------------------------------------------------------------------

@rule
def exact(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """Counts and shapes: the measured value must equal the paper's exactly."""
    return REPRODUCED if plain(measurement["value"]) == plain(claim.paper_value) else NOT_REPRODUCED


@rule
def ratio_within_factor(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A value the paper rounds ("60 million"): reproduced when measured/paper
    lies within [1/factor, factor], not reproduced otherwise."""
    factor = float(claim.params["factor"])
    ratio = float(measurement["value"]) / float(claim.paper_value)
    return REPRODUCED if 1.0 / factor <= ratio <= factor else NOT_REPRODUCED


@rule
def within_points(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """An absolute error rate (percent): reproduced within ``points`` percentage points of the paper's."""
    close = abs(float(measurement["value"]) - float(claim.paper_value)) <= float(claim.params["points"])
    return REPRODUCED if close else NOT_REPRODUCED


@rule
def not_evaluated(claim: Judged, measurement: Mapping[str, Any] | None) -> str:
    """A claim this profile cannot test (no data at this scale)."""
    return NOT_EVALUATED


# ---------------------------------------------------------------------------
# Effects over seeds
# ---------------------------------------------------------------------------

@rule
def difference_direction(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """An effect between two groups of seeds, judged by the principle above.

    The paper's value is the effect (a difference, or a ratio when the
    measurement's scale is "log"); its sign (or side of 1) is the direction.
    The 95% Welch interval is recomputed here from the raw per-seed values.
    """
    groups = measurement["groups"]
    scale = measurement.get("scale", "linear")
    if scale == "log":
        a = [math.log(v) for v in groups["a"]]
        b = [math.log(v) for v in groups["b"]]
        paper_effect = math.log(float(claim.paper_value))
    else:
        a, b = groups["a"], groups["b"]
        paper_effect = float(claim.paper_value)
    interval = welch_interval(a, b)
    if interval is None:  # fewer than two seeds a group: no interval, no verdict
        return INCONCLUSIVE
    low, high = interval
    if low <= 0.0 <= high:
        return INCONCLUSIVE
    expected_sign = math.copysign(1.0, paper_effect)
    measured_sign = 1.0 if low > 0.0 else -1.0
    if measured_sign != expected_sign:
        return NOT_REPRODUCED
    effect = sum(a) / len(a) - sum(b) / len(b)
    factor = float(claim.params["factor"])
    if scale == "log":  # compare ratios on the ratio scale: 3x vs 6x is a factor of 2
        size_ratio = math.exp(effect) / math.exp(paper_effect)
    else:
        size_ratio = effect / paper_effect
    return REPRODUCED if 1.0 / factor <= size_ratio <= factor else PARTLY_REPRODUCED


@rule
def censored_ratio(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A ratio of times-to-threshold over seeds (Fig. 1: tanh epochs / ReLU epochs), with censoring.

    ``measurement`` is ``difference_measurement(a, b, scale="log")`` plus ``censored`` flags per
    group: a censored run never reached the threshold and enters at its last epoch, a lower bound
    on its time. Welch's 95% interval on the logs (recomputed here). Interval above 1 (ratio > 1):
    reproduced when no run is censored and the ratio lies within ``factor`` of the paper's; partly
    reproduced otherwise (with a censored numerator the ratio is only a lower bound, so its size is
    not established). A censored denominator (ReLU) makes a ratio above 1 inconclusive. Interval
    below 1: not reproduced (inconclusive when a numerator run is censored). Spanning 1, or fewer
    than two seeds a group: inconclusive.
    """
    groups = measurement["groups"]
    censored = measurement.get("censored") or {"a": [False] * len(groups["a"]), "b": [False] * len(groups["b"])}
    a = [math.log(v) for v in groups["a"]]
    b = [math.log(v) for v in groups["b"]]
    interval = welch_interval(a, b)
    if interval is None:
        return INCONCLUSIVE
    low, high = interval
    any_a, any_b = any(censored["a"]), any(censored["b"])
    if low > 0.0:
        if any_b:
            return INCONCLUSIVE
        if any_a:
            return PARTLY_REPRODUCED
        ratio = math.exp(sum(a) / len(a) - sum(b) / len(b))
        factor = float(claim.params["factor"])
        size = ratio / float(claim.paper_value)
        return REPRODUCED if 1.0 / factor <= size <= factor else PARTLY_REPRODUCED
    if high < 0.0:
        return INCONCLUSIVE if any_a else NOT_REPRODUCED
    return INCONCLUSIVE


def _judge_interval(interval, effect: float, paper_effect: float, factor: float | None) -> str:
    if interval is None:
        return INCONCLUSIVE
    low, high = interval
    if low <= 0.0 <= high:
        return INCONCLUSIVE
    if (1.0 if low > 0.0 else -1.0) != math.copysign(1.0, paper_effect):
        return NOT_REPRODUCED
    if factor is None:
        return REPRODUCED
    size_ratio = effect / paper_effect
    return REPRODUCED if 1.0 / factor <= size_ratio <= factor else PARTLY_REPRODUCED


@rule
def paired_difference_direction(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """Like ``difference_direction``, for paired values: the 95% t interval of the per-seed
    differences a_i - b_i (recomputed here) must exclude zero on the paper's side, and the mean
    difference lie within ``factor`` of the paper's for *reproduced*."""
    a, b = measurement["groups"]["a"], measurement["groups"]["b"]
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    effect = sum(differences) / len(differences)
    return _judge_interval(t_interval(differences), effect, float(claim.paper_value), float(claim.params["factor"]))


@rule
def direction_only(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A qualitative claim ("slightly harder to overfit"): the 95% Welch interval of mean(a) - mean(b)
    must exclude zero on the side ``params["sign"]`` (-1 or +1); no size is compared."""
    interval = welch_interval(measurement["groups"]["a"], measurement["groups"]["b"])
    return _judge_interval(interval, 0.0, float(claim.params["sign"]), None)


@rule
def reduction_at_least(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A relative error reduction, one value per seed (percent): *reproduced* when the 95% t interval
    lies above paper / ``factor`` ("a wide margin"), *partly reproduced* when above zero only,
    *not reproduced* when below zero, *inconclusive* otherwise (or below two seeds)."""
    interval = t_interval(measurement["values"])
    if interval is None:
        return INCONCLUSIVE
    low, high = interval
    if low >= float(claim.paper_value) / float(claim.params["factor"]):
        return REPRODUCED
    if low > 0.0:
        return PARTLY_REPRODUCED
    if high < 0.0:
        return NOT_REPRODUCED
    return INCONCLUSIVE
