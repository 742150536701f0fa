"""A tested, claim-by-claim replication of AlexNet.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012. One module per part of the paper:

- ``data``      Section 2: datasets, archives -> data root, decode-once caches
- ``models``    Section 3: AlexNet, the CIFAR-10 nets of Fig. 1 and Section 3.3
- ``parallel``  Section 3.2: the two-device split; data-parallel helpers
- ``augment``   Section 4.1: crops, flips, PCA lighting, ten-crop
- ``train``     Section 5: the paper's SGD rule, schedule, checkpoints
- ``evaluate``  Section 6: top-1/top-5, ten-crop, ensembles, Fig. 3 and Fig. 4
- ``runs``      the run store that makes reports re-execute in seconds
"""

import os as _os

# On a shared or busy CPU, spinning OpenMP threads cost more than they save
# (measured here: 2 spinning threads ran a model at half the speed of 1); must
# be set before torch is imported. A user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
