"""Every claim of the paper that a notebook tests, and the rules that judge it.

A claim is one sentence of Krizhevsky, Sutskever and Hinton (NIPS 2012) with a
number in it: "60 million parameters" (Abstract), "conv1 outputs 55x55x96"
(Section 3.5, Fig. 2), "ReLUs reach 25% training error six times faster"
(Section 3.1, Fig. 1). The package is pure: it needs no torch and builds no
net, so a saved report can be judged anywhere.

- ``stats``: Student's t, the 95% intervals over seeds (t, Welch's, paired)
  and the measurements a notebook records (exact, seeded, difference, paired).
- ``rules``: the statuses and every rule that turns a measurement into one.
- ``registry``: ``Claim``, the registry ``CLAIMS``, ``verdict``,
  ``recompute_statuses`` and the display strings of the claims JSON.
- ``paper``: numbers of the paper shared by a claim and a report (Fig. 2's).

The claims are registered, and measured, by each notebook's module in
``replication.experiments``; importing that package fills the registry (it
needs torch, so this package does not import it).
"""

from replication.claims import paper
from replication.claims.paper import FIG2_NEURONS, FIG2_OUTPUT_SHAPES
from replication.claims.registry import (
    CHECK, CLAIM, CLAIMS, ERRATUM, KINDS, VARIANT, Claim, claims_for, format_measurement, format_value, get_claim, recompute_statuses, register, verdict,
)
from replication.claims.rules import (
    INCONCLUSIVE, NOT_EVALUATED, NOT_REPRODUCED, PARTLY_REPRODUCED, REPRODUCED, RULES, STATUSES, Rule, rule,
    still_improving,
)
from replication.claims.stats import (
    bootstrap_interval, detectable_effect, difference_measurement, ensemble_measurement, epochs_to_plateau,
    exact_measurement,
    jackknife_interval, neighbour_label_agreement,
    paired_measurement, paired_ratio_measurement, plain, seed_share_measurement, seeded_measurement, student_t_cdf,
    student_t_quantile, t_interval,
    tower_colour_split, welch_interval,
)

__all__ = [
    "paper",
    "FIG2_NEURONS", "FIG2_OUTPUT_SHAPES",
    "CHECK", "CLAIM", "CLAIMS", "ERRATUM", "KINDS", "VARIANT", "Claim", "claims_for", "format_measurement", "format_value", "get_claim", "recompute_statuses",
    "register", "verdict",
    "INCONCLUSIVE", "NOT_EVALUATED", "NOT_REPRODUCED", "PARTLY_REPRODUCED", "REPRODUCED", "RULES", "STATUSES",
    "Rule", "rule", "still_improving",
    "bootstrap_interval", "detectable_effect", "difference_measurement", "epochs_to_plateau", "exact_measurement",
    "neighbour_label_agreement", "tower_colour_split", "ensemble_measurement", "jackknife_interval", "paired_measurement",
    "paired_ratio_measurement", "plain", "seed_share_measurement", "seeded_measurement",
    "student_t_cdf", "student_t_quantile", "t_interval", "welch_interval",
]
