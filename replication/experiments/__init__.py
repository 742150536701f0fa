"""One module per notebook; each registers its notebook's claims and measures them.

- ``miniature`` (00: the scale every ablation runs at, its recipe tuned on a held-out part of train,
  and the check that its baselines finish learning; ``protocol`` holds the recipes and the arms),
- ``architecture`` (01: Section 3 and Fig. 2, exact counts on the paper's net, no training),
- ``relu_speedup`` (02: Fig. 1, ReLU vs tanh on CIFAR-10),
- ``lrn`` (03: Section 3.3, response normalisation on CIFAR-10 and the ImageNet stand-in),
- ``error_rates`` (04: Section 6, ten-patch testing, ensembles, the classical baselines),
- ``pooling`` (05: Section 3.4, overlapping pooling),
- ``towers`` (06: Section 3.2, two towers against one with half the kernels),
- ``lighting`` (07: Section 4.1, PCA lighting),
- ``dropout`` (08: Section 4.2, dropout's overfitting and convergence),
- ``kernels`` (09: Fig. 3, conv1's colour split between the towers),
- ``neighbours`` (10: Fig. 4, the nearest training images in FC7 space against pixel space),
- ``errata`` (11: a widely read retelling's departures from the paper, each measured).

Each has ``plan(params)`` (the runs it needs, untrained) and ``measure(params)`` (the runs from the
store, trained when missing, and ``{claim_id: {measurement, scale}}``), plus the tables and figures
its cells show. What they share: ``scales`` (what each profile trains), ``cifar`` and ``imagenet``
(the two protocols), ``baselines`` (Table 1's classical methods). ``driver`` trains a profile's runs
(``python -m replication.experiments``).

Importing this package registers every claim, notebook by notebook in the order of the notebooks
(the reports list claims in registration order): code that needs the whole registry imports it.
"""

# In the notebooks' order, not sorted: each import registers that notebook's claims.
from replication.experiments import miniature, architecture, relu_speedup, lrn, error_rates, pooling  # noqa: I001
from replication.experiments import towers, lighting, dropout  # noqa: I001
from replication.experiments import kernels, neighbours, errata  # noqa: I001

__all__ = ["miniature", "architecture", "relu_speedup", "lrn", "error_rates", "pooling", "towers", "lighting",
           "dropout", "kernels", "neighbours", "errata"]
