"""The claims registry: one ``Claim`` per sentence of the paper with a number in it.

Each ``Claim`` has an id ("arch.params"), the paper's value and where the paper
says it, its unit, and the *name* of the rule that judges it with that rule's
parameters. ``verdict`` judges a measurement by the claim's registered rule;
``recompute_statuses`` judges a saved claims JSON again with today's registry;
``format_value`` and ``format_measurement`` give the rounded strings of the
verdict tables and the reports index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from replication.claims.rules import INCONCLUSIVE, NOT_EVALUATED, RULES, still_improving
from replication.claims.stats import plain


# What a registered entry is. The index tallies each kind on its own line, so that checks of the
# package's own construction never inflate the count of the paper's claims reproduced.
CLAIM, CHECK, ERRATUM, VARIANT = "claim", "check", "erratum", "variant"
KINDS = {
    CLAIM: "a sentence of the paper with a number in it",
    CHECK: "a check of this package's own construction against the paper (shapes, wiring)",
    ERRATUM: "a number the paper misprints, measured to show the correct one, or a departure from the paper "
             "that a widely read retelling makes, measured against the paper's recipe",
    VARIANT: "a measurement beyond the paper (another dataset, a modern setting)",
}


@dataclass(frozen=True)
class Claim:
    """One sentence of the paper with a number in it, and how it is judged."""

    id: str
    notebook: str
    statement: str  # a short paraphrase of what the paper says
    paper_value: Any  # what the rule compares against
    paper_display: str  # the value as the paper states it
    source: Mapping[str, str]  # keys "section", "figure", "table", "other" ("Abstract")
    unit: str  # "count", "shape", "list", "percent", "ratio", "epochs" ...
    rule: str  # a key of RULES
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""  # what differs from the paper, or why the paper's number is off
    kind: str = CLAIM  # a key of KINDS

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    def rule_spec(self) -> dict:
        return {"name": self.rule, "params": dict(self.params)}


CLAIMS: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    if claim.rule not in RULES:
        raise ValueError(f"claim {claim.id!r}: unknown rule {claim.rule!r}; rules: {sorted(RULES)}")
    if claim.id in CLAIMS:
        raise ValueError(f"claim {claim.id!r} registered twice")
    CLAIMS[claim.id] = claim
    return claim


def get_claim(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim {claim_id!r}; registered claims: {', '.join(sorted(CLAIMS))}") from None


def claims_for(notebook: str) -> list[Claim]:
    return [c for c in CLAIMS.values() if c.notebook == notebook]


def verdict(claim_id: str, measurement: Mapping[str, Any] | None) -> str:
    """The status of a claim given its measurement, by the claim's registered rule.

    A missing measurement (None) is always "not evaluated"; a measurement of nets that had not
    stopped improving is "inconclusive" (``rules.still_improving``; the gate in the rules' docstring).
    """
    claim = get_claim(claim_id)
    if measurement is None:
        return NOT_EVALUATED
    status = RULES[claim.rule](claim, measurement)
    if status != NOT_EVALUATED and still_improving(measurement):
        return INCONCLUSIVE
    return status


def recompute_statuses(report: Mapping[str, Any]) -> list[str]:
    """Re-judge a saved claims JSON with today's registry and rules.

    Returns a list of disagreements (empty when the report is consistent):
    a status that differs from what the rule gives on the recorded
    measurement, a paper value or rule that no longer matches the registry,
    or a claim the registry no longer knows.
    """
    problems = []
    for entry in report["claims"]:
        claim_id = entry["id"]
        if claim_id not in CLAIMS:
            problems.append(f"{claim_id}: not in the claims registry")
            continue
        claim = CLAIMS[claim_id]
        expected = verdict(claim_id, entry["measured"])
        if entry["status"] != expected:
            problems.append(f"{claim_id}: status {entry['status']!r} recorded, rule gives {expected!r}")
        if entry["rule"] != claim.rule_spec():
            problems.append(f"{claim_id}: rule {entry['rule']} recorded, registry has {claim.rule_spec()}")
        if entry.get("kind") != claim.kind:
            problems.append(f"{claim_id}: kind {entry.get('kind')!r} recorded, registry has {claim.kind!r}")
        if plain(entry["paper"]["value"]) != plain(claim.paper_value):
            problems.append(f"{claim_id}: paper value {entry['paper']['value']!r} recorded, "
                            f"registry has {claim.paper_value!r}")
    return problems


# ---------------------------------------------------------------------------
# Display: rounded strings for the verdict tables and the index
# ---------------------------------------------------------------------------

def format_value(value: Any, unit: str) -> str:
    """A short, deterministic string for a value in a claim's unit."""
    if value is None:
        return "—"
    if unit == "shape":
        return "×".join(str(int(v)) for v in value)
    if unit == "shapes":
        return ", ".join(format_value(v, "shape") for v in value)
    if unit == "list":
        return "–".join(format_value(v, "count") for v in value)
    if unit == "names":
        return ", ".join(str(v) for v in value)
    if unit == "count":
        return f"{int(value):,}"
    if unit == "percent":
        return f"{float(value):.1f}%"
    if unit == "percentage points":
        return f"{float(value):+.1f} pp"
    if unit == "ratio":
        return f"{float(value):.2f}×"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_measurement(measurement: Mapping[str, Any] | None, unit: str) -> str:
    """The measured value, with its 95% interval and seed count when it has them."""
    if measurement is None:
        return "—"
    text = bound_prefix(measurement) + format_value(measurement["value"], unit)
    seeds = measurement.get("seeds") or []
    if measurement.get("ci95"):
        low, high = measurement["ci95"]
        text += f" [{format_value(low, unit)}, {format_value(high, unit)}]"
    if seeds:
        text += f" ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})"
    return text


def bound_prefix(measurement: Mapping[str, Any]) -> str:
    """"≥ " when the measurement is a lower bound (a censored run in its numerator group: Fig. 1's tanh
    never reached 25% within its epoch cap), "≤ " when an upper bound (censored denominator), "" otherwise."""
    censored = measurement.get("censored") or {}
    numerator, denominator = any(censored.get("a") or ()), any(censored.get("b") or ())
    if numerator and not denominator:
        return "≥ "
    if denominator and not numerator:
        return "≤ "
    return "censored both ways: " if numerator and denominator else ""


def format_detectable(measurement: Mapping[str, Any] | None, unit: str) -> str:
    """The smallest effect the measurement's seeds detect with 80% power (two-sided, 5%), or "—"."""
    if not measurement or measurement.get("detectable") is None:
        return "—"
    return format_value(measurement["detectable"], unit).lstrip("+")
