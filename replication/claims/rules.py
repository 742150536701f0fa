"""The rules that turn a claim's measurement into a status, and the statuses.

A status is always computed by the claim's registered rule from the recorded
measurement, never typed in, so a saved report can be judged again and CI can
prove that the committed statuses are what the code says. A rule is a function
``(claim, measurement) -> status`` registered in ``RULES`` under its name; a
claim names its rule and the rule's parameters (a tolerance factor...).

The principle every statistical rule follows: the direction of an effect must
hold with a 95% interval that excludes zero, and the interval must overlap the
band of sizes within a stated factor of the paper's (paper / f .. paper x f)
for *reproduced*; the direction alone, with the whole interval outside the
band, is *partly reproduced*; an interval that spans zero is *inconclusive*;
one that excludes zero on the wrong side is *not reproduced*. Judging the
interval, not the point estimate, means no status turns on a third digit: an
effect of 0.335 and one of 0.327 of the paper's size, measured as precisely,
get the same status against a factor of 3.

One gate comes before every rule (``registry.verdict`` applies it): a measurement of trained nets
may carry ``stopping``, the protocol's stopping check of each arm it compares (``{arm: {"passed":
bool, "gain": ...}}``, on the arm's mean validation curve). When an arm has not stopped improving,
the status is *inconclusive* whatever the interval says: the comparison is of nets still learning,
which measures the start of learning, not the recipe's finished nets (``still_improving`` names
them; the number and its interval stay in the report for what they are).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Protocol

from replication.claims.stats import jackknife_interval, plain, t_interval, welch_interval

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


def still_improving(measurement: Mapping[str, Any] | None) -> list[str]:
    """The arms of a measurement whose nets had not stopped improving (its ``stopping`` entry, see the
    module's docstring), in order; empty when every arm passed or the measurement has no such entry."""
    stopping = (measurement or {}).get("stopping") or {}
    return [arm for arm, check in stopping.items() if not check["passed"]]


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
    return judge_interval(interval, paper_effect, float(claim.params["factor"]), log_scale=scale == "log")


@rule
def censored_ratio(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A ratio of times-to-threshold over seeds (Fig. 1: tanh epochs / ReLU epochs), with censoring.

    ``measurement`` is ``difference_measurement(a, b, scale="log")`` plus ``censored`` flags per
    group: a censored run never reached the threshold and enters at its last epoch, a lower bound
    on its time. Welch's 95% interval on the logs (recomputed here). Interval above 1 (ratio > 1):
    reproduced when no run is censored and the interval overlaps the band within ``factor`` of the
    paper's ratio; partly reproduced otherwise (with a censored numerator the ratio is only a lower bound, so its size is
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
        return judge_interval(interval, math.log(float(claim.paper_value)), float(claim.params["factor"]),
                              log_scale=True)
    if high < 0.0:
        return INCONCLUSIVE if any_a else NOT_REPRODUCED
    return INCONCLUSIVE


def judge_interval(interval: tuple[float, float] | None, paper_effect: float, factor: float | None,
                   unbounded_above: bool = False, log_scale: bool = False) -> str:
    """The principle above, for a 95% interval of an effect whose paper value is ``paper_effect``.

    ``log_scale``: the interval and the effect are logs of ratios, and the band is the ratios
    paper / f .. paper x f (log paper -/+ log f). ``factor`` None: the direction alone decides.
    ``unbounded_above``: an "at least" claim, whose band reaches from paper / f upwards.
    """
    if interval is None:  # fewer than two seeds: no interval, no verdict
        return INCONCLUSIVE
    low, high = interval
    if low <= 0.0 <= high:
        return INCONCLUSIVE
    if (1.0 if low > 0.0 else -1.0) != math.copysign(1.0, paper_effect):
        return NOT_REPRODUCED
    if factor is None:
        return REPRODUCED
    band_low, band_high = effect_band(paper_effect, factor, unbounded_above, log_scale)
    return REPRODUCED if low <= band_high and high >= band_low else PARTLY_REPRODUCED


def effect_band(paper_effect: float, factor: float, unbounded_above: bool = False,
                log_scale: bool = False) -> tuple[float, float]:
    """The sizes within ``factor`` of the paper's effect, ordered (low, high); on the paper's side
    of 0 (on a log scale: the logs of the ratios paper / f .. paper x f)."""
    if log_scale:
        ends = sorted((paper_effect - math.log(factor), paper_effect + math.log(factor)), key=abs)
    else:
        ends = sorted((paper_effect / factor, paper_effect * factor), key=abs)
    if unbounded_above:
        ends[1] = math.copysign(math.inf, paper_effect)
    return (min(ends), max(ends))


@rule
def paired_difference_direction(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """Like ``difference_direction``, for paired values: the 95% t interval of the per-seed
    differences a_i - b_i (recomputed here) must exclude zero on the paper's side, and overlap the
    band within ``factor`` of the paper's effect for *reproduced*. ``at_least`` (params, default
    false): an "over N points" claim, whose band reaches from paper / ``factor`` outwards, unbounded."""
    a, b = measurement["groups"]["a"], measurement["groups"]["b"]
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    return judge_interval(t_interval(differences), float(claim.paper_value), float(claim.params["factor"]),
                          unbounded_above=bool(claim.params.get("at_least", False)))


@rule
def direction_only(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A qualitative claim ("slightly harder to overfit"): the 95% Welch interval of mean(a) - mean(b)
    must exclude zero on the side ``params["sign"]`` (-1 or +1); no size is compared."""
    interval = welch_interval(measurement["groups"]["a"], measurement["groups"]["b"])
    return judge_interval(interval, float(claim.params["sign"]), None)


@rule
def reduction_at_least(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A relative error reduction, one value per seed (percent), that the paper calls "a wide
    margin": *reproduced* when the 95% t interval lies above zero and reaches paper / ``factor``
    (no upper end: more than the paper's margin is still a wide margin), *partly reproduced* when
    above zero but wholly below paper / ``factor``, *not reproduced* when below zero, *inconclusive*
    otherwise (or below two seeds)."""
    interval = t_interval(measurement["values"])
    return judge_interval(interval, float(claim.paper_value), float(claim.params["factor"]), unbounded_above=True)


@rule
def all_below(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A check over seeds ("every baseline has stopped improving"): *reproduced* (the check holds)
    when every per-seed value lies below ``params["limit"]``, *not reproduced* otherwise."""
    values = measurement.get("values") or [measurement["value"]]
    return REPRODUCED if all(float(v) < float(claim.params["limit"]) for v in values) else NOT_REPRODUCED


@rule
def paired_direction_only(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A qualitative claim on paired values ("slightly harder to overfit"): the 95% t interval of the
    per-seed differences a_i - b_i must exclude zero on the side ``params["sign"]``; no size compared."""
    a, b = measurement["groups"]["a"], measurement["groups"]["b"]
    return judge_interval(t_interval([float(x) - float(y) for x, y in zip(a, b)]), float(claim.params["sign"]), None)


@rule
def absolute_at_paper_budget(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """An absolute error the paper reached with a longer training budget: *not evaluated* when the
    measurement says its nets trained for less (``measurement["epochs"] < params["paper_epochs"]``:
    the number cannot be reached at that scale), else judged as ``ratio_within_factor``."""
    if float(measurement.get("epochs", 0)) < float(claim.params["paper_epochs"]):
        return NOT_EVALUATED
    ratio = float(measurement["value"]) / float(claim.paper_value)
    factor = float(claim.params["factor"])
    return REPRODUCED if 1.0 / factor <= ratio <= factor else NOT_REPRODUCED


@rule
def jackknife_direction(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """An ensemble's effect (``stats.ensemble_measurement``): the jackknife 95% interval over the
    leave-one-out ensembles (recomputed here) judged by the principle above, with ``factor``."""
    interval = jackknife_interval(measurement["value"], measurement["leave_one_out"])
    return judge_interval(interval, float(claim.paper_value), float(claim.params["factor"]))


@rule
def paired_nonzero(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A departure from the paper that has no effect size of its own to compare (the errata notebook:
    what a retelling's change costs): *reproduced* when the 95% t interval of the per-seed
    differences a_i - b_i (recomputed here) excludes zero, on either side (the departure measurably
    changes the number at this scale); *inconclusive* when it spans zero or below two seeds. Never
    *not reproduced*: there is no paper effect to contradict, and the interval says which way."""
    a, b = measurement["groups"]["a"], measurement["groups"]["b"]
    interval = t_interval([float(x) - float(y) for x, y in zip(a, b)])
    if interval is None or interval[0] <= 0.0 <= interval[1]:
        return INCONCLUSIVE
    return REPRODUCED


@rule
def seeded_above(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A per-seed value the paper calls large without a number (Fig. 4's neighbours are "not close in
    L2"): *reproduced* when the 95% t interval of ``measurement["values"]`` (recomputed here) lies
    wholly above ``params["floor"]``, *not reproduced* when wholly below it, *inconclusive* when it
    contains the floor or below two seeds."""
    interval = t_interval(measurement["values"])
    floor = float(claim.params["floor"])
    if interval is None or interval[0] <= floor <= interval[1]:
        return INCONCLUSIVE
    return REPRODUCED if interval[0] > floor else NOT_REPRODUCED


@rule
def share_of_seeds(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A property a test finds, or not, in each seed's net (Fig. 3: one tower's conv1 clearly more
    colour-specific than the other's, a Mann-Whitney test per seed): found in a seed when its p-value
    (``measurement["p_values"]``) lies below ``params["alpha"]``. Below ``params["min_seeds"]`` seeds
    *inconclusive* (too few nets to speak of "every run"). With ``params["at_least"]`` (the share of
    seeds the paper's "every run" is held to): *reproduced* when found in at least that share,
    *not reproduced* when in at most 1 - at_least, *inconclusive* between. With
    ``params["at_most"]`` (a control, where nothing should be found): *reproduced* when found in at
    most that share, *not reproduced* when in at least 1 - at_most, *inconclusive* between."""
    p_values = [float(p) for p in measurement["p_values"]]
    if not p_values or len(p_values) < int(claim.params.get("min_seeds", 1)):
        return INCONCLUSIVE
    share = sum(p < float(claim.params["alpha"]) for p in p_values) / len(p_values)
    tolerance = 1e-9  # 1/5 against 1 - 0.8
    if "at_least" in claim.params:
        wanted, unwanted = share, 1.0 - share
        bound = float(claim.params["at_least"])
    else:
        wanted, unwanted = 1.0 - share, share
        bound = 1.0 - float(claim.params["at_most"])
    if wanted >= bound - tolerance:
        return REPRODUCED
    if unwanted >= bound - tolerance:
        return NOT_REPRODUCED
    return INCONCLUSIVE


@rule
def paired_ratio_direction(claim: Judged, measurement: Mapping[str, Any]) -> str:
    """A ratio of paired positive values (``stats.paired_ratio_measurement``: epochs to converge,
    seconds an epoch), judged on the logs: the 95% t interval of the per-seed log(a_i / b_i)
    (recomputed here) must exclude 0 (a ratio of 1) on the paper's side. With a paper ratio
    (``paper_value``) and ``factor``, *reproduced* needs the interval to overlap the ratios
    paper / factor .. paper x factor ("roughly doubles": 2 within 1.5x); with ``paper_value`` None
    (a claim without a number, "slightly less time") ``params["sign"]`` gives the side (-1: a ratio
    below 1) and the direction alone decides."""
    a, b = measurement["groups"]["a"], measurement["groups"]["b"]
    interval = t_interval([math.log(float(x) / float(y)) for x, y in zip(a, b)])
    if claim.paper_value is None:
        return judge_interval(interval, float(claim.params["sign"]), None)
    return judge_interval(interval, math.log(float(claim.paper_value)), float(claim.params["factor"]), log_scale=True)
