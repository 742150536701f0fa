"""Section 3 of the paper: AlexNet and the two CIFAR-10 nets it cites.

Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012.

- :class:`AlexNet` (Section 3, Fig. 2), built from :class:`AlexNetConfig`:
  two towers (grouped conv2/conv4/conv5; conv3 and every FC layer see both
  towers) or one; the "half" one-tower net of footnote 2; ReLU or tanh
  (Section 3.1); local response normalisation (Section 3.3, both
  conventions); overlapping pooling (Section 3.4); dropout on FC6 and FC7
  (Section 4.2); a width multiplier and three input-size families.
- :class:`Fig1Net`: the four-layer CIFAR-10 net of Fig. 1 (ReLU vs tanh).
- :class:`ConvLocalNet`: the Section 3.3 CIFAR-10 net (cuda-convnet's
  ``layers-conv-local-11pct`` with LRN, ``-13pct`` without), with a real
  locally connected layer (:class:`LocallyConnected2d`, built on ``unfold``).
- :class:`LocalResponseNorm`: Section 3.3's normalisation, its window sum a
  fixed 1x1 "band" convolution with a hand-written backward: 4-5x faster
  than ``torch.nn.LocalResponseNorm`` on the CPU.
- :func:`apply_paper_init` (Section 5), :func:`build_model`,
  :func:`layer_table` and :data:`PAPER_FIG2` for the architecture notebook.

Input-size families of :class:`AlexNet` (map sides after conv1, conv2,
conv3-5 and pool5; FC6 inputs at width 1):

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
import inspect
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PAPER_FIG2",
    "PAPER_PARAMETERS",
    "PAPER_HIDDEN_NEURONS",
    "ModelConfigError",
    "AlexNetConfig",
    "AlexNet",
    "Fig1Net",
    "ConvLocalNet",
    "LocalResponseNorm",
    "LocallyConnected2d",
    "lrn_reference",
    "apply_paper_init",
    "build_model",
    "layer_table",
    "count_parameters",
    "hidden_neurons",
    "feature_map_sizes",
]

# ---------------------------------------------------------------------------
# The paper's own numbers (Section 3.5 and Fig. 2), for the notebook.
# ---------------------------------------------------------------------------

#: Fig. 2 / Section 3.5 as printed. ``neurons`` are the paper's
#: "253,440-186,624-64,896-64,896-43,264-4096-4096-1000". The first is a known
#: erratum: 55 x 55 x 96 = 290,400 (253,440 = 48 x 48 x 110 fits no layer);
#: ``neurons_computed`` gives the arithmetic, which this package reproduces.
PAPER_FIG2: dict[str, Any] = {
    "input_dimension": 150_528,  # 224 x 224 x 3, Section 3.5
    "layers": ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"],
    "neurons": [253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000],
    "neurons_computed": [290_400, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000],
    "kernels": {  # number x (height x width x depth), stride (Section 3.5)
        "conv1": "96 x 11x11x3, stride 4",
        "conv2": "256 x 5x5x48",
        "conv3": "384 x 3x3x256",
        "conv4": "384 x 3x3x192",
        "conv5": "256 x 3x3x192",
        "fc6": "4096",
        "fc7": "4096",
        "fc8": "1000-way softmax",
    },
    "feature_maps": [55, 27, 13, 13, 13],
    "parameters_text": "60 million",
    "neurons_text": "650,000",
    "note": (
        "The paper prints 253,440 neurons for conv1; 55*55*96 = 290,400. "
        "Hidden neurons (conv1-fc7, computed) sum to 658,272, the paper's '650,000'."
    ),
}

#: Parameters of the paper configuration (two towers, 227 input, 1000 classes).
PAPER_PARAMETERS = 60_965_224
#: ReLU neurons in the hidden layers conv1..fc7 of the paper configuration.
PAPER_HIDDEN_NEURONS = 658_272


class ModelConfigError(ValueError):
    """A model configuration that cannot be built (raised at construction)."""


# ---------------------------------------------------------------------------
# Section 3.3: local response normalisation
# ---------------------------------------------------------------------------

LRN_CONVENTIONS = ("paper", "alpha_over_n")


def lrn_reference(x: torch.Tensor, size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper",
                  groups: int = 1) -> torch.Tensor:
    """Section 3.3's formula written out channel by channel (slow; for tests).

    ``b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta`` with the sum
    clipped to ``[0, N-1]`` (``convention='paper'``), or with ``alpha / n`` in
    place of ``alpha`` (``'alpha_over_n'``: torch, Caffe and the 2012 code).
    With ``groups > 1`` the channels form that many towers, normalised apart.
    """
    scale = alpha if convention == "paper" else alpha / size
    channels = x.shape[1]
    per_group = channels // groups
    out = torch.empty_like(x)
    for i in range(channels):
        first = (i // per_group) * per_group
        lo = max(first, i - size // 2)
        hi = min(first + per_group - 1, i + (size - 1) // 2)
        total = sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, i] = x[:, i] / (k + scale * total) ** beta
    return out


def lrn_band(channels: int, size: int, groups: int = 1, dtype=torch.float32) -> torch.Tensor:
    """0/1 band matrix B with B[i, j] = 1 when map j is in map i's LRN window.

    Shaped ``(channels, channels // groups, 1, 1)`` as a grouped 1x1 conv weight,
    so each tower (group) is normalised over its own maps only, as on two GPUs.
    """
    if channels % groups:
        raise ModelConfigError(f"LRN: {channels} channels do not split into {groups} towers")
    per_group = channels // groups
    index = torch.arange(per_group, device="cpu")  # built on the CPU, moved with the module
    offset = index[None, :] - index[:, None]  # j - i
    block = ((offset >= -(size // 2)) & (offset <= (size - 1) // 2)).to(dtype)
    return block.repeat(groups, 1).reshape(channels, per_group, 1, 1)


def _negative_power(d: torch.Tensor, beta: float) -> torch.Tensor:
    """``d ** -beta`` for ``d > 0``; the paper's beta = 3/4 as ``rsqrt(d * sqrt(d))``.

    ``pow`` with a fractional exponent costs an exp and a log per element; the
    square roots measured 2.4x (96x26x26 maps) and 1.5x (256x12x12) faster on
    the project's AVX2 CPU (2 threads), about equal when memory bandwidth is
    the limit (1 thread, load 5); equal to ``pow`` within rounding (float64 tests).
    """
    if beta == 0.75:
        return torch.rsqrt(d * d.sqrt())
    if beta == 0.5:
        return d.rsqrt()
    if beta == 1.0:
        return d.reciprocal()
    return d.pow(-beta)


class _BandLRN(torch.autograd.Function):
    """LRN with a hand-written backward: fewer passes over memory than autograd's.

    forward:  d = k + scale * B(x^2) (k as the conv's bias),  y = x * d^-beta
    backward: dx = dy * d^-beta - 2 * beta * scale * x * B^T(dy * y / d)
    (B is the band, a grouped 1x1 conv; B^T its per-group transpose). The
    elementwise passes, not the band GEMM, dominate on a CPU, hence this.
    """

    @staticmethod
    def forward(ctx, x, band, scale, k, beta, groups):
        weight = band.to(x.dtype) * scale
        bias = torch.full((weight.shape[0],), float(k), dtype=x.dtype, device=x.device)
        denom = F.conv2d(x * x, weight, bias, groups=groups)  # k + scale * window sum, in one GEMM
        factor = _negative_power(denom, beta)
        y = x * factor
        ctx.save_for_backward(x, weight, denom, factor, y)
        ctx.beta, ctx.groups = beta, groups
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, denom, factor, y = ctx.saved_tensors
        channels, per_group = weight.shape[:2]
        weight_t = weight.view(ctx.groups, per_group, per_group).transpose(1, 2).reshape(weight.shape)
        t = (grad_y * y).div_(denom)
        window = F.conv2d(t, weight_t.to(t.dtype), groups=ctx.groups)
        grad_x = torch.addcmul(grad_y * factor, x, window.to(x.dtype) if window.dtype != x.dtype else window,
                               value=-2.0 * ctx.beta)
        return grad_x.to(x.dtype), None, None, None, None, None


class LocalResponseNorm(nn.Module):
    """Cross-map response normalisation (Section 3.3), fast on CPUs.

    ``b = a / (k + s * sum_window a^2) ** beta`` where ``s = alpha`` under the
    paper's convention (the default) and ``s = alpha / size`` under
    ``'alpha_over_n'`` (``torch.nn.LocalResponseNorm``, Caffe and the 2012
    cuda-convnet code). Defaults are the paper's k=2, n=5, alpha=1e-4, beta=0.75.

    The window sum of squares is a 1x1 convolution of ``a^2`` with a fixed 0/1
    band matrix (a non-persistent buffer, never trained, not in state_dicts).
    That is one small GEMM (run by oneDNN, under bf16 autocast and on
    channels_last tensors alike) plus a few elementwise passes, with a
    hand-written backward that saves autograd's extra passes; ``k`` rides in
    as the conv's bias and beta = 3/4 is ``rsqrt(d * sqrt(d))`` rather than
    ``pow``. Measured on the project's 2-core AVX2 CPU (fp32, channels_last,
    forward + backward, batch 128, 1 thread, load average 5): 0.75 s vs 2.9 s
    for torch's ``LocalResponseNorm`` on 96x32x32 maps, 0.64 s vs 1.9 s on
    256x16x16 maps (a ReLU costs 0.13 s and 0.08 s). The bias and square-root
    changes gained 0.94-1.6x over the earlier band version (interleaved A/B on
    the AlexNet families' LRN shapes, noisy at that load).
    ``groups`` > 1 normalises each tower's maps separately (two-GPU layout).
    ``channels`` may be left out; the band is then built at the first call.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                 convention: str = "paper", channels: int | None = None, groups: int = 1):
        super().__init__()
        if convention not in LRN_CONVENTIONS:
            raise ModelConfigError(f"unknown LRN convention {convention!r}; use one of {LRN_CONVENTIONS}")
        if size < 1 or groups < 1:
            raise ModelConfigError(f"LRN needs size >= 1 and groups >= 1, got {size}, {groups}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.convention, self.groups = convention, groups
        self.scale = alpha if convention == "paper" else alpha / size
        band = lrn_band(channels, size, groups) if channels is not None else None
        self.register_buffer("band", band, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        band = self.band
        if band is None or band.shape[0] != x.shape[1] or band.device != x.device:
            band = self.band = lrn_band(x.shape[1], self.size, self.groups).to(x.device)
        return _BandLRN.apply(x, band, self.scale, self.k, self.beta, self.groups)

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"convention={self.convention!r}, groups={self.groups}")


# ---------------------------------------------------------------------------
# Section 3.3 (CIFAR-10): locally connected layer
# ---------------------------------------------------------------------------


class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared across positions.

    cuda-convnet's ``type=local`` layer (used by the Section 3.3 CIFAR-10 net);
    torch has none. Implemented with ``F.unfold`` and one batched matmul over
    positions: weight ``(positions, in*k*k, out)``, one bias per output unit
    (unshared, like cuda-convnet's local layers).
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: int, kernel_size: int,
                 padding: int = 0, stride: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.stride = kernel_size, padding, stride
        self.input_size = input_size
        self.output_size = (input_size + 2 * padding - kernel_size) // stride + 1
        if self.output_size < 1:
            raise ModelConfigError(f"locally connected layer: input {input_size} too small for kernel {kernel_size}")
        positions = self.output_size**2
        fan_in = in_channels * kernel_size**2
        self.weight = nn.Parameter(torch.empty(positions, fan_in, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels, self.output_size, self.output_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1])  # torch's conv default
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"LocallyConnected2d built for {self.input_size}px maps, got {tuple(x.shape[-2:])}")
        columns = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # N, K, L
        columns = columns.permute(2, 0, 1).contiguous()  # L, N, K: contiguous is ~1.5x faster in bmm
        out = torch.bmm(columns, self.weight)  # L, N, out
        side = self.output_size
        out = out.permute(1, 2, 0).reshape(x.shape[0], self.out_channels, side, side)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, maps={self.input_size}->{self.output_size}")


# ---------------------------------------------------------------------------
# Section 3: AlexNet
# ---------------------------------------------------------------------------

ACTIVATIONS = ("relu", "tanh")
POOLINGS = {"overlapping": (3, 2), "non_overlapping": (2, 2)}  # (z, s), Section 3.4
STEMS = {"large": (11, 4), "small": (5, 1)}  # conv1 (kernel, stride)
LARGE_STEM_MIN_INPUT = 64  # the automatic stem: 'large' from 64 px up, 'small' below

# Channels of the two-tower net (Section 3.5): conv1..conv5, FC6/FC7.
PAPER_CHANNELS = (96, 256, 384, 384, 256, 4096)


def _pool_size(n: int, pooling: str) -> int:
    """Output side of a pooling layer: ceil rule for z=3 (cuda-convnet), floor for z=2."""
    z, s = POOLINGS[pooling]
    if pooling == "overlapping":
        out = -(-(n - z) // s) + 1
        return out - 1 if (out - 1) * s >= n else out
    return (n - z) // s + 1


def _make_activation(name: str) -> nn.Module:
    return nn.ReLU(inplace=True) if name == "relu" else nn.Tanh()


def _make_pool(pooling: str) -> nn.MaxPool2d:
    z, s = POOLINGS[pooling]
    return nn.MaxPool2d(z, s, ceil_mode=(pooling == "overlapping"))


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

    def __post_init__(self):
        lrn = self.lrn
        if lrn is True:
            lrn = "paper"
        elif lrn is False or (isinstance(lrn, str) and lrn.lower() == "none"):
            lrn = None
        object.__setattr__(self, "lrn", lrn)
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
        """Kernels per layer (all towers together) and the FC width."""
        base = list(PAPER_CHANNELS)
        if self.half:  # footnote 2: halve conv1-conv4 only
            base[:4] = [c // 2 for c in base[:4]]
        towers = self.towers
        scaled = [max(1, round(c * self.width / towers)) * towers for c in base]
        return dict(zip(("conv1", "conv2", "conv3", "conv4", "conv5", "fc"), scaled))

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
    net; :class:`replication.parallel.TwoDeviceAlexNet` splits this model over
    two devices. Module names (``body.conv1`` ... ``head.fc8``) are stable
    across configurations, so checkpoints load by name.
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
        self.body = nn.Sequential(OrderedDict([
            ("pad1", pad1), ("conv1", conv1), ("act1", _make_activation(act)),
            ("lrn1", lrn(ch["conv1"])), ("pool1", _make_pool(pool)),
            ("conv2", nn.Conv2d(ch["conv1"], ch["conv2"], 5, padding=2, groups=g)),
            ("act2", _make_activation(act)), ("lrn2", lrn(ch["conv2"])), ("pool2", _make_pool(pool)),
            ("conv3", nn.Conv2d(ch["conv2"], ch["conv3"], 3, padding=1)),  # sees both towers
            ("act3", _make_activation(act)),
            ("conv4", nn.Conv2d(ch["conv3"], ch["conv4"], 3, padding=1, groups=g)),
            ("act4", _make_activation(act)),
            ("conv5", nn.Conv2d(ch["conv4"], ch["conv5"], 3, padding=1, groups=g)),
            ("act5", _make_activation(act)), ("pool5", _make_pool(pool)),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("fc6", nn.Linear(config.fc6_inputs(), ch["fc"])), ("act6", _make_activation(act)),
            ("drop6", nn.Dropout(config.dropout)),
            ("fc7", nn.Linear(ch["fc"], ch["fc"])), ("act7", _make_activation(act)),
            ("drop7", nn.Dropout(config.dropout)),
            ("fc8", nn.Linear(ch["fc"], config.num_classes)),
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


# ---------------------------------------------------------------------------
# The CIFAR-10 nets
# ---------------------------------------------------------------------------


def _check_activation(activation: str, where: str) -> None:
    if activation not in ACTIVATIONS:
        raise ModelConfigError(f"{where}: unknown activation {activation!r}; use one of {ACTIVATIONS}")


def _check_classes(num_classes, where: str) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelConfigError(f"{where}: num_classes must be a positive integer, got {num_classes!r}")


class Fig1Net(nn.Module):
    """The four-layer CIFAR-10 net of Fig. 1 (ReLU vs tanh, no regularisation).

    Follows cuda-convnet's ``layers-18pct.cfg`` (the paper cites cuda-convnet
    for it): three 5x5 conv layers of 32, 32, 64 filters (padding 2), each
    followed by 3x3 stride-2 pooling (max, avg, avg; ceil rule), then one
    linear layer. Maps for 32 px input: 32 - 16 - 8 - 4, so 1,024 inputs to
    the classifier. The 18pct file's two response-normalisation layers are
    left out, as Fig. 1 trains with "no regularization of any kind" and the
    issue specifies conv + pool only. ``paper_init`` uses that file's Gaussian
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
        self.body = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 32, 5, padding=2)), ("act1", _make_activation(activation)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("conv2", nn.Conv2d(32, 32, 5, padding=2)), ("act2", _make_activation(activation)),
            ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
            ("conv3", nn.Conv2d(32, 64, 5, padding=2)), ("act3", _make_activation(activation)),
            ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("fc", nn.Linear(64 * side * side, num_classes)),
        ]))
        if paper_init:
            apply_paper_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, flattened (the input of the classifier)."""
        return self.head.flatten(self.body(x))


class ConvLocalNet(nn.Module):
    """The Section 3.3 CIFAR-10 net: cuda-convnet's ``layers-conv-local-11pct``.

    conv1 (64 5x5, pad 2) - ReLU - [LRN] - max pool 3/2 - conv2 (64 5x5) -
    ReLU - [LRN] - max pool 3/2 - local3 (32 3x3, pad 1) - ReLU - local4 (32
    3x3, pad 1) - ReLU - linear classifier. ``lrn=True`` is the 11pct file
    (the paper: "11% with normalization"), ``lrn=False`` the 13pct file
    (13% without). LRN defaults are that file's: size 5, scale 0.001, pow
    0.75, cuda-convnet's ``1 + (scale / size) * sum`` (k=1, 'alpha_over_n').

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

    def __init__(self, lrn: bool = True, activation: str = "relu", input_size: int = 24,
                 num_classes: int = 10, paper_init: bool = True, lrn_size: int = 5,
                 lrn_alpha: float = 1e-3, lrn_beta: float = 0.75, lrn_k: float = 1.0,
                 lrn_convention: str = "alpha_over_n"):
        super().__init__()
        _check_activation(activation, "ConvLocalNet")
        _check_classes(num_classes, "ConvLocalNet")
        if not isinstance(input_size, int) or input_size < 12:
            raise ModelConfigError(f"ConvLocalNet: input_size must be an integer >= 12 (24 or 32), got {input_size!r}")
        self.spec = {"arch": "conv_local", "lrn": bool(lrn), "activation": activation,
                     "input_size": input_size, "num_classes": num_classes, "paper_init": paper_init,
                     "lrn_size": lrn_size, "lrn_alpha": lrn_alpha, "lrn_beta": lrn_beta, "lrn_k": lrn_k,
                     "lrn_convention": lrn_convention}

        def norm(channels: int) -> nn.Module:
            if not lrn:
                return nn.Identity()
            return LocalResponseNorm(lrn_size, lrn_alpha, lrn_beta, lrn_k, lrn_convention, channels=channels)

        side = _pool_size(_pool_size(input_size, "overlapping"), "overlapping")
        self.body = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 5, padding=2)), ("act1", _make_activation(activation)),
            ("lrn1", norm(64)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("conv2", nn.Conv2d(64, 64, 5, padding=2)), ("act2", _make_activation(activation)),
            ("lrn2", norm(64)), ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("local3", LocallyConnected2d(64, 32, side, 3, padding=1)), ("act3", _make_activation(activation)),
            ("local4", LocallyConnected2d(32, 32, side, 3, padding=1)), ("act4", _make_activation(activation)),
        ]))
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("fc", nn.Linear(32 * side * side, num_classes)),
        ]))
        if paper_init:
            apply_paper_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, flattened (the input of the classifier)."""
        return self.head.flatten(self.body(x))


# ---------------------------------------------------------------------------
# Section 5: initialisation
# ---------------------------------------------------------------------------


@torch.no_grad()
def apply_paper_init(model: nn.Module) -> nn.Module:
    """Section 5's initialisation, in place; returns the model.

    AlexNet: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, FC6 and FC7
    ("accelerates the early stages of learning by providing the ReLUs with
    positive inputs"), 0 in conv1, conv3 and FC8. The CIFAR nets use their
    cuda-convnet files' stds (see their docstrings). Layers are found by name
    through the model class's ``PAPER_INIT`` table; a model without one gets
    N(0, 0.01) weights and zero biases in every conv/linear/local layer.
    """
    table = getattr(model, "PAPER_INIT", None)
    weighted = (nn.Conv2d, nn.Linear, LocallyConnected2d)
    for name, module in model.named_modules():
        if not isinstance(module, weighted):
            continue
        std, bias = (0.01, 0.0) if table is None else table.get(name.rsplit(".", 1)[-1], (0.01, 0.0))
        module.weight.normal_(0.0, std)
        if module.bias is not None:
            module.bias.fill_(bias)
    return model


# ---------------------------------------------------------------------------
# Building from a spec, and the architecture table (Fig. 2)
# ---------------------------------------------------------------------------

ARCHS = {"alexnet": AlexNet, "fig1": Fig1Net, "conv_local": ConvLocalNet}
_ARCH_ALIASES = {"fig1net": "fig1", "convlocal": "conv_local", "conv-local": "conv_local",
                 "convlocalnet": "conv_local", "alex": "alexnet"}


def build_model(spec: dict[str, Any] | AlexNetConfig) -> nn.Module:
    """``{"arch": "alexnet"|"fig1"|"conv_local", **kwargs}`` -> a model.

    For ``alexnet`` the kwargs are :class:`AlexNetConfig` fields, e.g.
    ``{"arch": "alexnet", "input_size": 32, "num_classes": 200, "width": 0.5}``;
    ``arch`` defaults to ``alexnet``. Unknown keys raise :class:`ModelConfigError`.
    """
    if isinstance(spec, AlexNetConfig):
        return AlexNet(spec)
    kwargs = dict(spec)
    arch = str(kwargs.pop("arch", "alexnet")).lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch not in ARCHS:
        raise ModelConfigError(f"unknown arch {arch!r}; use one of {sorted(ARCHS)}")
    if arch == "alexnet":
        valid = {f.name for f in dataclasses.fields(AlexNetConfig)}
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            raise ModelConfigError(f"unknown AlexNetConfig fields {unknown}; valid: {sorted(valid)}")
        return AlexNet(AlexNetConfig(**kwargs))
    cls = ARCHS[arch]
    valid = set(inspect.signature(cls).parameters)
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise ModelConfigError(f"unknown {cls.__name__} arguments {unknown}; valid: {sorted(valid)}")
    return cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (LRN bands are buffers and do not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _spec_of(model_or_config) -> dict[str, Any]:
    if isinstance(model_or_config, AlexNetConfig):
        return {"arch": "alexnet", **model_or_config.to_dict()}
    if isinstance(model_or_config, dict):
        return dict(model_or_config)
    config = getattr(model_or_config, "config", None)
    if isinstance(config, AlexNetConfig):
        return {"arch": "alexnet", **config.to_dict()}
    spec = getattr(model_or_config, "spec", None)
    if isinstance(spec, dict):
        return dict(spec)
    raise TypeError(f"layer_table needs an AlexNet/Fig1Net/ConvLocalNet, a config or a spec dict, "
                    f"got {type(model_or_config).__name__}")


def _towers_of(spec: dict[str, Any]) -> int:
    return int(spec.get("towers", 2)) if spec.get("arch", "alexnet") == "alexnet" else 1


def _out_side(n: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """torch's output-size rule for convolution and pooling."""
    span = n + 2 * padding - kernel
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= n + padding else out


def _propagate_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Output shape (without batch) of each child of ``model.body`` and ``model.head``.

    Computed layer by layer from the layers' hyper-parameters (no forward
    pass, no memory); any other layer type falls back to a meta-device forward.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    shape = tuple(input_shape)
    for name, module in [*model.body.named_children(), *model.head.named_children()]:
        if isinstance(module, nn.Conv2d):
            (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
            shape = (module.out_channels, _out_side(shape[1], kh, sh, ph), _out_side(shape[2], kw, sw, pw))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k, st, pad = module.kernel_size, module.stride, module.padding
            shape = (shape[0], _out_side(shape[1], k, st, pad, module.ceil_mode),
                     _out_side(shape[2], k, st, pad, module.ceil_mode))
        elif isinstance(module, nn.ZeroPad2d):
            left, right, top, bottom = module.padding
            shape = (shape[0], shape[1] + top + bottom, shape[2] + left + right)
        elif isinstance(module, LocallyConnected2d):
            shape = (module.out_channels, module.output_size, module.output_size)
        elif isinstance(module, nn.Flatten):
            shape = (math.prod(shape),)
        elif isinstance(module, nn.Linear):
            shape = (module.out_features,)
        elif not isinstance(module, (nn.Identity, nn.ReLU, nn.Tanh, nn.Dropout, LocalResponseNorm)):
            with torch.no_grad():
                shape = tuple(module.to("meta")(torch.zeros(1, *shape, device="meta")).shape[1:])
        shapes[name] = shape
    return shapes


def layer_table(model_or_config, input_size: int | None = None) -> list[dict[str, Any]]:
    """One row per layer, to set beside Fig. 2.

    Each row: ``layer``, ``kind`` ('input', 'conv', 'local', 'pool', 'fc'),
    ``output_shape`` ((C, H, W) or (units,)), ``params``, ``neurons`` (output
    units of a weighted layer, 0 for pooling and input), ``hidden`` (counts
    toward the paper's "650,000 neurons": every weighted layer but the last),
    ``kernel`` (description), ``inputs_from`` ('image', 'own tower', 'both
    towers', 'previous layer') and ``per_tower`` (None for one tower or for
    pooling, else a list with one dict per tower of that tower's
    ``output_shape``, ``params`` and ``neurons``, as on each of the paper's two
    GPUs; conv1 and FC8 are split by output units too).

    The model is rebuilt on the meta device and shapes are propagated layer by
    layer, so even the 60M parameter net costs no memory and milliseconds. ``input_size`` overrides the
    model's own (a model spec is rebuilt at that size).
    """
    spec = _spec_of(model_or_config)
    if input_size is not None:
        spec["input_size"] = input_size
    spec["paper_init"] = False  # shapes only
    with torch.device("meta"):
        model = build_model(spec)
    towers = _towers_of(spec)
    size = spec.get("input_size", 227 if spec.get("arch", "alexnet") == "alexnet" else 32)
    shapes = _propagate_shapes(model, (3, size, size))

    rows = [{"layer": "input", "kind": "input", "output_shape": (3, size, size), "params": 0,
             "neurons": 0, "hidden": False, "kernel": "", "inputs_from": "",
             "per_tower": None}]
    weighted = [n for n, m in [*model.body.named_children(), *model.head.named_children()]
                if isinstance(m, (nn.Conv2d, nn.Linear, LocallyConnected2d))]
    for name, module in [*model.body.named_children(), *model.head.named_children()]:
        if not isinstance(module, (nn.Conv2d, nn.Linear, LocallyConnected2d, nn.MaxPool2d, nn.AvgPool2d)):
            continue
        shape = shapes[name]
        row = {"layer": name, "output_shape": shape, "params": 0, "neurons": 0, "hidden": False,
               "kernel": "", "inputs_from": "previous layer", "per_tower": None}
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
            row.update(kind="pool", kernel=f"{kind} {module.kernel_size}x{module.kernel_size} stride {module.stride}")
        else:
            params = sum(p.numel() for p in module.parameters())
            neurons = math.prod(shape)
            row.update(params=params, neurons=neurons, hidden=name != weighted[-1])
            if isinstance(module, nn.Conv2d):
                k = module.kernel_size[0]
                depth = module.in_channels // module.groups
                stride = f", stride {module.stride[0]}" if module.stride[0] != 1 else ""
                row.update(kind="conv", kernel=f"{module.out_channels} x {k}x{k}x{depth}{stride}")
                grouped = module.groups > 1
            elif isinstance(module, LocallyConnected2d):
                k = module.kernel_size
                row.update(kind="local", kernel=f"{module.out_channels} x {k}x{k}x{module.in_channels} unshared")
                grouped = False
            else:
                row.update(kind="fc", kernel=f"{module.in_features} -> {module.out_features}")
                grouped = False
            if name == weighted[0]:
                row["inputs_from"] = "image"
            elif towers > 1:
                row["inputs_from"] = "own tower" if grouped else "both towers"
            if towers > 1:
                out_units = shape[0]
                per_unit = params // out_units
                splits = [len(c) for c in torch.arange(out_units).tensor_split(towers)]
                row["per_tower"] = [{"output_shape": (n, *shape[1:]), "params": n * per_unit,
                                     "neurons": n * math.prod(shape[1:])} for n in splits]
        rows.append(row)
    return rows


def hidden_neurons(model_or_config, input_size: int | None = None) -> int:
    """Neurons in the hidden weighted layers (the paper's "650,000" for AlexNet)."""
    return sum(row["neurons"] for row in layer_table(model_or_config, input_size) if row["hidden"])
