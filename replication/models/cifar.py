"""The two CIFAR-10 nets the paper cites from cuda-convnet.

- :class:`Fig1Net`: the four-layer net of Fig. 1 (Section 3.1: ReLU vs tanh).
- :class:`ConvLocalNet`: the Section 3.3 net (``layers-conv-local-11pct``
  with LRN, ``-13pct`` without), with real locally connected layers
  (:class:`~replication.models.layers.LocallyConnected2d`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import (
    ACTIVATIONS,
    LRN_CONVENTIONS,
    LocallyConnected2d,
    LocalResponseNorm,
    ModelConfigError,
    _make_activation,
    _pool_size,
    apply_paper_init,
)

__all__ = ["Fig1Net", "ConvLocalNet"]


def _check_activation(activation: str, where: str) -> None:
    if activation not in ACTIVATIONS:
        raise ModelConfigError(f"{where}: unknown activation {activation!r}; use one of {ACTIVATIONS}")


def _check_classes(num_classes, where: str) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelConfigError(f"{where}: num_classes must be a positive integer, got {num_classes!r}")


class _ConvThenLinear(nn.Module):
    """A body of conv/local layers, then one linear classifier on its flattened maps.

    The shape of both cuda-convnet CIFAR-10 nets (``body`` and ``head``, as in
    :class:`~replication.models.alexnet.AlexNet`, so the same tools read them).
    """

    def _set_layers(self, body: OrderedDict, body_outputs: int, num_classes: int, paper_init: bool) -> None:
        self.body = nn.Sequential(body)
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("fc", nn.Linear(body_outputs, num_classes)),
        ]))
        if paper_init:
            apply_paper_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, flattened (the input of the classifier)."""
        return self.head.flatten(self.body(x))


class Fig1Net(_ConvThenLinear):
    """The four-layer CIFAR-10 net of Fig. 1 (ReLU vs tanh, no regularisation).

    Follows cuda-convnet's ``layers-18pct.cfg`` (the paper cites cuda-convnet
    for it): three 5x5 conv layers of 32, 32, 64 filters (padding 2), each
    followed by 3x3 stride-2 pooling (max, avg, avg; ceil rule), then one
    linear layer. Maps for 32 px input: 32 - 16 - 8 - 4, so 1,024 inputs to
    the classifier. The 18pct file's two response-normalisation layers are
    left out, as Fig. 1 trains with "no regularization of any kind": conv and
    pooling layers only. ``paper_init`` uses that file's Gaussian
    stds (conv1 1e-4, conv2/conv3/fc 1e-2) and zero biases.
    """

    PAPER_INIT = {"conv1": (1e-4, 0.0), "conv2": (1e-2, 0.0), "conv3": (1e-2, 0.0), "fc": (1e-2, 0.0)}

    def __init__(self, activation: str = "relu", paper_init: bool = True, num_classes: int = 10,
                 input_size: int = 32):
        super().__init__()
        _check_activation(activation, "Fig1Net")
        _check_classes(num_classes, "Fig1Net")
        if not isinstance(input_size, int) or input_size < 12:
            raise ModelConfigError(f"Fig1Net: input_size must be an integer >= 12 (CIFAR-10 is 32), got {input_size!r}")
        self.spec = {"arch": "fig1", "activation": activation, "paper_init": paper_init,
                     "num_classes": num_classes, "input_size": input_size}
        side = input_size
        for _ in range(3):
            side = _pool_size(side, "overlapping")
        self._set_layers(OrderedDict([
            ("conv1", nn.Conv2d(3, 32, 5, padding=2)), ("act1", _make_activation(activation)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("conv2", nn.Conv2d(32, 32, 5, padding=2)), ("act2", _make_activation(activation)),
            ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
            ("conv3", nn.Conv2d(32, 64, 5, padding=2)), ("act3", _make_activation(activation)),
            ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ]), 64 * side * side, num_classes, paper_init)


class ConvLocalNet(_ConvThenLinear):
    """The Section 3.3 CIFAR-10 net: cuda-convnet's ``layers-conv-local-11pct``.

    conv1 (64 5x5, pad 2) - ReLU - [LRN] - max pool 3/2 - conv2 (64 5x5) -
    ReLU - [LRN] - max pool 3/2 - local3 (32 3x3, pad 1) - ReLU - local4 (32
    3x3, pad 1) - ReLU - linear classifier. ``lrn`` names the normalisation's
    convention, as in :class:`AlexNetConfig`: ``'alpha_over_n'`` (the default,
    cuda-convnet's ``1 + (scale / size) * sum``: the 11pct file, "11% with
    normalization") or ``'paper'``; ``None`` is the 13pct file (13% without).
    The other LRN defaults are that file's: size 5, scale 0.001, pow 0.75, k=1.

    The locally connected layers are real ones (:class:`LocallyConnected2d`,
    via ``unfold``), not a convolutional stand-in. Input: 24x24 crops of the
    32x32 images as cuda-convnet's cifar-cropped provider does (maps 24 - 12 -
    6), or 32 (32 - 16 - 8). ``paper_init`` uses the file's stds (conv1 1e-4,
    conv2 1e-2, local 0.04, fc 1e-2) and zero biases.

    Speed on the project's 2-core AVX2 CPU, one thread, fp32, batch 128, SGD
    step: about 260 img/s at 24 px with LRN (370 without), 110 img/s at 32 px;
    a local layer's forward + backward takes about 40 ms of that at 24 px.
    """

    PAPER_INIT = {"conv1": (1e-4, 0.0), "conv2": (1e-2, 0.0), "local3": (0.04, 0.0),
                  "local4": (0.04, 0.0), "fc": (1e-2, 0.0)}

    def __init__(self, lrn: str | None = "alpha_over_n", activation: str = "relu", input_size: int = 24,
                 num_classes: int = 10, paper_init: bool = True, lrn_size: int = 5,
                 lrn_alpha: float = 1e-3, lrn_beta: float = 0.75, lrn_k: float = 1.0):
        super().__init__()
        _check_activation(activation, "ConvLocalNet")
        _check_classes(num_classes, "ConvLocalNet")
        if not isinstance(input_size, int) or input_size < 12:
            raise ModelConfigError(f"ConvLocalNet: input_size must be an integer >= 12 (24 or 32), got {input_size!r}")
        if lrn is not None and lrn not in LRN_CONVENTIONS:
            raise ModelConfigError(f"ConvLocalNet: unknown lrn {lrn!r}; use 'alpha_over_n', 'paper' or None")
        self.spec = {"arch": "conv_local", "lrn": lrn, "activation": activation,
                     "input_size": input_size, "num_classes": num_classes, "paper_init": paper_init,
                     "lrn_size": lrn_size, "lrn_alpha": lrn_alpha, "lrn_beta": lrn_beta, "lrn_k": lrn_k}

        def norm(channels: int) -> nn.Module:
            if lrn is None:
                return nn.Identity()
            return LocalResponseNorm(lrn_size, lrn_alpha, lrn_beta, lrn_k, lrn, channels=channels)

        side = _pool_size(_pool_size(input_size, "overlapping"), "overlapping")
        self._set_layers(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 5, padding=2)), ("act1", _make_activation(activation)),
            ("lrn1", norm(64)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("conv2", nn.Conv2d(64, 64, 5, padding=2)), ("act2", _make_activation(activation)),
            ("lrn2", norm(64)), ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("local3", LocallyConnected2d(64, 32, side, 3, padding=1)), ("act3", _make_activation(activation)),
            ("local4", LocallyConnected2d(32, 32, side, 3, padding=1)), ("act4", _make_activation(activation)),
        ]), 32 * side * side, num_classes, paper_init)
