"""A tested, claim-by-claim replication of AlexNet.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012. A package per part of the paper
(docs/DESIGN.md, "Layout"):

- ``data``         Section 2 and 4.1: datasets, archives, decode-once caches, splits, augmentation
- ``models``       Section 3: AlexNet, its two towers, the CIFAR-10 nets of Fig. 1 and Section 3.3
- ``engine``       Sections 5-6: config and hash, the paper's SGD, training, evaluation, the run store
- ``claims``       the paper's claims and the rules that judge them (pure: no torch)
- ``experiments``  one module per notebook
- ``paths``, ``seeds``, ``provenance``, ``profiles``: folders and atomic writes, seed streams,
  the machine, the notebooks' parameters
"""

import os as _os

# On a shared or busy CPU, spinning OpenMP threads cost more than they save
# (measured here: 2 spinning threads ran a model at half the speed of 1); must
# be set before torch is imported. A user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
