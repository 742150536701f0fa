"""Section 3 / Fig. 2: AlexNet, two towers or one, and its configuration.

:class:`AlexNet` is built from :class:`AlexNetConfig`: two towers (grouped
conv2/conv4/conv5; conv3 and every FC layer see both towers) or one; the
"half" one-tower net of footnote 2; ReLU or tanh (Section 3.1); local
response normalisation (Section 3.3, both conventions); overlapping pooling
(Section 3.4); dropout on FC6 and FC7 (Section 4.2); a width multiplier and
three input-size families. Its layer list is the only one: the two-device
split of Section 3.2 (:mod:`replication.models.towers`) is cut from it.

Input-size families (map sides after conv1, conv2, conv3-5 and pool5; FC6
inputs at width 1):

- 227: conv1 11x11 stride 4, no padding: 55 - 27 - 13 - 6, FC6 9,216 (the paper).
- 224: the same conv1 with cuda-convnet's ceil rule: 55 - 27 - 13 - 6, FC6 9,216.
- 112 (Imagenette's 112 crops of 128 px images): the same 11x11 stride-4
  conv1, ceil rule: 27 - 13 - 6 - 3, FC6 2,304 (128 px: 31 - 15 - 7 - 3, 2,304).
- 32 (CIFAR-10, Tiny ImageNet at 32 px): a smaller conv1, 5x5 stride 1
  padding 2 (the cuda-convnet CIFAR nets' first layer): 32 - 16 - 8 - 4, FC6 4,096.
- 28 (28 crops of 32 px): 28 - 14 - 7 - 3, FC6 2,304 (24: 24 - 12 - 6 - 3, 2,304).

The stem is chosen by size (11x11 stride 4 from 64 px up, else 5x5 stride 1)
unless ``stem`` says otherwise; a size too small for its stem is an error.

The paper's strides turn a 224 input into 54x54, not 55x55. cuda-convnet, the
paper's code, sizes a convolution by the ceil rule ``1 + ceil((S - 11) / 4)``
and lets the last window hang over the bottom/right edge into zeros; we do
the same with explicit zero padding on the bottom and right (3 px for 224,
none for 227), so 224 gives 55 and every later size of Fig. 2.

Overlapping pooling (z=3, s=2) also uses cuda-convnet's ceil rule and
non-overlapping pooling (z=2, s=2) the floor rule; that way both give the
same map sizes at every input (the paper: "equivalent dimensions"), so a
pooling comparison changes only the pooling. At 227/224 the ceil rule changes
nothing (55, 27 and 13 are odd).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .layers import (
    ACTIVATIONS,
    LRN_CONVENTIONS,
    POOLINGS,
    LocalResponseNorm,
    ModelConfigError,
    _make_activation,
    _make_pool,
    _pool_size,
    apply_paper_init,
)

__all__ = ["AlexNetConfig", "AlexNet", "feature_map_sizes", "STEMS", "PAPER_CHANNELS"]

STEMS = {"large": (11, 4), "small": (5, 1)}  # conv1 (kernel, stride)
LARGE_STEM_MIN_INPUT = 64  # the automatic stem: 'large' from 64 px up, 'small' below

# Channels of the two-tower net (Section 3.5): conv1..conv5, FC6/FC7.
PAPER_CHANNELS = (96, 256, 384, 384, 256, 4096)


@dataclass(frozen=True)
class AlexNetConfig:
    """Everything that defines an :class:`AlexNet` (validated at construction).

    towers      2: the paper's two-GPU layout (Fig. 2); 1: one tower.
    half        footnote 2 of Section 3.2: the one-tower net with half the
                kernels in conv1-conv4 but conv5 and the FC layers at full
                width (needs ``towers=1``).
    activation  'relu' (Section 3.1) or 'tanh'.
    lrn         'paper' (k + alpha * sum, the default), 'alpha_over_n' (torch,
                Caffe, the 2012 code) or None; constants lrn_k, lrn_size (n),
                lrn_alpha, lrn_beta (Section 3.3).
    pooling     'overlapping' (z=3, s=2, Section 3.4) or 'non_overlapping' (z=2, s=2).
    dropout     probability on the outputs of FC6 and FC7 (Section 4.2).
    width       multiplies every channel count and the FC width (rounded to a
                multiple of ``towers``, at least one map per tower).
    input_size  227 (paper), 224 (cuda-convnet ceil rule), 112/128
                (Imagenette), 32/28/24 (CIFAR-10, Tiny ImageNet); see the module
                docstring for the feature-map sizes.
    stem        conv1 family: 'large' (11x11 stride 4) or 'small' (5x5 stride 1,
                padding 2); None picks 'large' from 64 px up.
    paper_init  apply Section 5's initialisation (else torch's default init).

    Departures that tutorials make, each off by default (the errata notebook measures them):
    kernels          per-layer counts before ``width`` (conv1-conv5, FC6, FC7) instead of the
                     paper's 96-256-384-384-256-4096-4096, e.g. torchvision's 64-192-384-256-256.
    pool_before_lrn  max-pool, then normalise, in layers 1-2 (Section 3.5: normalise, then pool).
    conv5_dropout    dropout on pool5's output too (the paper: FC6 and FC7 only).
    fc8_relu         a ReLU on the logits before the softmax (the paper: none).
    """

    towers: int = 2
    half: bool = False
    activation: str = "relu"
    lrn: str | None = "paper"
    lrn_size: int = 5
    lrn_alpha: float = 1e-4
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    pooling: str = "overlapping"
    dropout: float = 0.5
    width: float = 1.0
    num_classes: int = 1000
    input_size: int = 227
    stem: str | None = None
    paper_init: bool = True
    kernels: tuple[int, ...] | None = None
    pool_before_lrn: bool = False
    conv5_dropout: float = 0.0
    fc8_relu: bool = False

    def __post_init__(self):
        if self.kernels is not None:  # a JSON/YAML list becomes the tuple the dataclass holds
            object.__setattr__(self, "kernels", tuple(self.kernels))
        self._validate()

    @property
    def conv1_stem(self) -> str:
        """The stem in use: ``stem``, or 'large' from 64 px up and 'small' below."""
        if self.stem is not None:
            return self.stem
        big = isinstance(self.input_size, int) and self.input_size >= LARGE_STEM_MIN_INPUT
        return "large" if big else "small"

    # -- validation --------------------------------------------------------
    def _validate(self) -> None:
        def bad(message: str):
            raise ModelConfigError(f"AlexNetConfig: {message}")

        if self.towers not in (1, 2) or isinstance(self.towers, bool):
            bad(f"towers must be 1 or 2 (the paper uses 2 GPUs), got {self.towers!r}")
        if self.half and self.towers != 1:
            bad("half=True is footnote 2's one-tower net: set towers=1 as well")
        if self.activation not in ACTIVATIONS:
            bad(f"unknown activation {self.activation!r}; use one of {ACTIVATIONS}")
        if self.lrn is not None and self.lrn not in LRN_CONVENTIONS:
            bad(f"unknown lrn {self.lrn!r}; use 'paper', 'alpha_over_n' or None")
        if self.pooling not in POOLINGS:
            bad(f"unknown pooling {self.pooling!r}; use one of {tuple(POOLINGS)}")
        if not 0.0 <= self.dropout < 1.0:
            bad(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.conv5_dropout < 1.0:
            bad(f"conv5_dropout must be in [0, 1), got {self.conv5_dropout!r}")
        if self.kernels is not None and (len(self.kernels) != 7 or not all(
                isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in self.kernels)):
            bad(f"kernels: seven positive counts (conv1-conv5, FC6, FC7), got {self.kernels!r}")
        if not (isinstance(self.width, (int, float)) and math.isfinite(self.width) and self.width > 0):
            bad(f"width must be a positive number, got {self.width!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            bad(f"num_classes must be a positive integer, got {self.num_classes!r}")
        if self.stem is not None and self.stem not in STEMS:
            bad(f"unknown stem {self.stem!r}; use one of {tuple(STEMS)} or None")
        if not isinstance(self.input_size, int) or isinstance(self.input_size, bool) or self.input_size < 1:
            bad(f"input_size must be a positive integer, got {self.input_size!r}")
        if self.lrn_size < 1:
            bad(f"lrn_size must be >= 1, got {self.lrn_size}")
        self.feature_map_sizes()  # raises when the input is too small for the stem

    # -- derived quantities --------------------------------------------------
    def channels(self) -> dict[str, int]:
        """Kernels per layer (all towers together) and the FC widths ("fc": FC6, "fc7")."""
        base = list(self.kernels) if self.kernels is not None else [*PAPER_CHANNELS, PAPER_CHANNELS[-1]]
        if self.half:  # footnote 2: halve conv1-conv4 only
            base[:4] = [c // 2 for c in base[:4]]
        towers = self.towers
        scaled = [max(1, round(c * self.width / towers)) * towers for c in base]
        return dict(zip(("conv1", "conv2", "conv3", "conv4", "conv5", "fc", "fc7"), scaled))

    def conv1_geometry(self) -> tuple[int, int, int]:
        """(kernel, stride, extra bottom/right zero padding or symmetric padding)."""
        kernel, stride = STEMS[self.conv1_stem]
        if self.conv1_stem == "small":
            return kernel, stride, kernel // 2
        side = 1 + max(0, -(-(self.input_size - kernel) // stride))  # cuda-convnet ceil rule
        return kernel, stride, (side - 1) * stride + kernel - self.input_size

    def feature_map_sizes(self) -> dict[str, int]:
        """Side of the maps after conv1, conv2, conv3-5 and pool5; raises if too small."""
        sizes = _map_sizes(self.conv1_stem, self.input_size, self.pooling)
        if sizes is None:
            kernel, stride = STEMS[self.conv1_stem]
            z = POOLINGS[self.pooling][0]
            smallest = next(s for s in range(1, 4096) if _map_sizes(self.conv1_stem, s, self.pooling))
            raise ModelConfigError(
                f"AlexNetConfig: input_size {self.input_size} is too small for the {self.conv1_stem!r} stem "
                f"({kernel}x{kernel} stride {stride}) with {self.pooling} pooling: every pooling "
                f"layer needs maps of at least {z} px. Use input_size >= {smallest}"
                + (" or stem='small'" if self.conv1_stem == "large" else "") + ".")
        return sizes

    def fc6_inputs(self) -> int:
        return self.channels()["conv5"] * self.feature_map_sizes()["pool5"] ** 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def paper(cls, **overrides) -> "AlexNetConfig":
        """Section 3's net: two towers, 227 input, 1000 classes."""
        return cls(**overrides)

    @classmethod
    def half_net(cls, **overrides) -> "AlexNetConfig":
        """Footnote 2's one-tower net (half the kernels in conv1-conv4)."""
        return cls(**{"towers": 1, "half": True, **overrides})


def _map_sizes(stem: str, size: int, pooling: str) -> dict[str, int] | None:
    """Map sides after conv1, conv2, conv3-5 and pool5, or None when a pool does not fit."""
    kernel, stride = STEMS[stem]
    z = POOLINGS[pooling][0]
    if stem == "large":  # cuda-convnet's ceil rule: 1 + ceil((S - 11) / 4)
        conv1 = 1 + -(-(size - kernel) // stride) if size >= kernel else 0
    else:  # 5x5, stride 1, padding 2 keeps the size
        conv1 = size
    sides = [conv1]
    for _ in range(3):
        if sides[-1] < z:
            return None
        sides.append(_pool_size(sides[-1], pooling))
    conv1, conv2, conv3, pool5 = sides
    return {"conv1": conv1, "conv2": conv2, "conv3": conv3, "conv4": conv3, "conv5": conv3,
            "pool5": pool5}


def feature_map_sizes(config: AlexNetConfig) -> dict[str, int]:
    """See :meth:`AlexNetConfig.feature_map_sizes`."""
    return config.feature_map_sizes()


class AlexNet(nn.Module):
    """The network of Section 3 / Fig. 2 (two towers on one device, grouped).

    Layer order (Section 3.5): conv1 - act - LRN - pool, conv2 - act - LRN -
    pool, conv3 - act, conv4 - act, conv5 - act - pool, FC6 - act - dropout,
    FC7 - act - dropout, FC8 (logits; softmax lives in the loss).

    With ``towers=2`` conv2, conv4 and conv5 are grouped convolutions (each
    tower sees only its own maps), LRN normalises within a tower, and conv3
    and the FC layers see both towers, exactly the connectivity of the two-GPU
    net; :class:`~replication.models.towers.TwoDeviceAlexNet` cuts this model's
    layers into one tower per device. Module names (``body.conv1`` ...
    ``head.fc8``) are stable across configurations, so checkpoints load by name.
    """

    PAPER_INIT = {  # Section 5: N(0, 0.01) everywhere; bias 1 in conv2, 4, 5, FC6, FC7
        "conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0), "conv4": (0.01, 1.0),
        "conv5": (0.01, 1.0), "fc6": (0.01, 1.0), "fc7": (0.01, 1.0), "fc8": (0.01, 0.0),
    }

    def __init__(self, config: AlexNetConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = AlexNetConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        ch = config.channels()
        g = config.towers
        kernel, stride, pad = config.conv1_geometry()
        if config.conv1_stem == "large":
            pad1, conv1 = nn.ZeroPad2d((0, pad, 0, pad)), nn.Conv2d(3, ch["conv1"], kernel, stride)
        else:
            pad1, conv1 = nn.Identity(), nn.Conv2d(3, ch["conv1"], kernel, stride, padding=pad)

        def lrn(channels: int) -> nn.Module:
            if config.lrn is None:
                return nn.Identity()
            return LocalResponseNorm(config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k,
                                     config.lrn, channels=channels, groups=g)

        act, pool = config.activation, config.pooling
        def normalise_and_pool(n: int, channels: int) -> list[tuple[str, nn.Module]]:
            pair = [(f"lrn{n}", lrn(channels)), (f"pool{n}", _make_pool(pool))]  # Section 3.5's order
            return pair[::-1] if config.pool_before_lrn else pair

        self.body = nn.Sequential(OrderedDict([
            ("pad1", pad1), ("conv1", conv1), ("act1", _make_activation(act)),
            *normalise_and_pool(1, ch["conv1"]),
            ("conv2", nn.Conv2d(ch["conv1"], ch["conv2"], 5, padding=2, groups=g)),
            ("act2", _make_activation(act)), *normalise_and_pool(2, ch["conv2"]),
            ("conv3", nn.Conv2d(ch["conv2"], ch["conv3"], 3, padding=1)),  # sees both towers
            ("act3", _make_activation(act)),
            ("conv4", nn.Conv2d(ch["conv3"], ch["conv4"], 3, padding=1, groups=g)),
            ("act4", _make_activation(act)),
            ("conv5", nn.Conv2d(ch["conv4"], ch["conv5"], 3, padding=1, groups=g)),
            ("act5", _make_activation(act)), ("pool5", _make_pool(pool)),
            *([("drop5", nn.Dropout(config.conv5_dropout))] if config.conv5_dropout else []),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("fc6", nn.Linear(config.fc6_inputs(), ch["fc"])), ("act6", _make_activation(act)),
            ("drop6", nn.Dropout(config.dropout)),
            ("fc7", nn.Linear(ch["fc"], ch["fc7"])), ("act7", _make_activation(act)),
            ("drop7", nn.Dropout(config.dropout)),
            ("fc8", nn.Linear(ch["fc7"], config.num_classes)),
            *([("act8", nn.ReLU())] if config.fc8_relu else []),
        ]))
        if config.paper_init:
            apply_paper_init(self)

    @property
    def spec(self) -> dict[str, Any]:
        return {"arch": "alexnet", **self.config.to_dict()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """FC7 activations after the nonlinearity, without dropout (as in eval mode).

        Section 6.1 / Fig. 4 compare images by these 4096-d vectors. Gradients
        flow unless called under ``torch.no_grad()``.
        """
        h = self.body(x)
        head = self.head
        h = head.act6(head.fc6(head.flatten(h)))
        return head.act7(head.fc7(h))

    def conv1_weights(self) -> list[torch.Tensor]:
        """conv1 kernels per tower (Fig. 3: tower 0 learns colour-agnostic kernels)."""
        weight = self.body.conv1.weight.detach()
        return list(weight.chunk(self.config.towers, dim=0))


