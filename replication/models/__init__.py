"""Section 3 of the paper: AlexNet and the two CIFAR-10 nets it cites.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012.

- ``layers``   Section 3.3's local response normalisation (a fast band
  convolution), the locally connected layer of the Section 3.3 CIFAR-10 net,
  Section 5's initialisation, activations (3.1) and pooling (3.4).
- ``alexnet``  Section 3 / Fig. 2: :class:`AlexNetConfig` and :class:`AlexNet`
  (two towers or one, footnote 2's half net, width and input-size families).
- ``cifar``    :class:`Fig1Net` (Fig. 1) and :class:`ConvLocalNet` (Section 3.3).
- ``towers``   Section 3.2: :class:`TwoDeviceAlexNet`, one tower per device,
  cut from a grouped :class:`AlexNet`.
- ``build``    :func:`build_model`: a spec (as a training config stores it) -> a model.
- ``inspect``  counts beside Fig. 2 and Section 3.5: :func:`layer_table`,
  :func:`count_parameters`, :func:`hidden_neurons` and the paper's own numbers.
"""

from __future__ import annotations

from .alexnet import AlexNet, AlexNetConfig, feature_map_sizes
from .build import build_model, check_spec
from .cifar import ConvLocalNet, Fig1Net
from .inspect import (
    PAPER_FIG2,
    PAPER_HIDDEN_NEURONS,
    PAPER_PARAMETERS,
    count_parameters,
    hidden_neurons,
    layer_table,
)
from .layers import (
    LocallyConnected2d,
    LocalResponseNorm,
    ModelConfigError,
    apply_paper_init,
    init_layer_by_layer,
    kaiming_init,
    lrn_reference,
)
from .towers import TwoDeviceAlexNet

__all__ = [
    "PAPER_FIG2",
    "PAPER_PARAMETERS",
    "PAPER_HIDDEN_NEURONS",
    "ModelConfigError",
    "AlexNetConfig",
    "AlexNet",
    "Fig1Net",
    "ConvLocalNet",
    "TwoDeviceAlexNet",
    "LocalResponseNorm",
    "LocallyConnected2d",
    "lrn_reference",
    "apply_paper_init",
    "init_layer_by_layer",
    "kaiming_init",
    "build_model",
    "check_spec",
    "layer_table",
    "count_parameters",
    "hidden_neurons",
    "feature_map_sizes",
]
