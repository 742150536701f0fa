"""The layers Section 3 adds to a plain convnet, and Section 5's initialisation.

- :class:`LocalResponseNorm` (Section 3.3): cross-map normalisation, its window
  sum a fixed 1x1 "band" convolution with a hand-written backward, 4-5x faster
  than ``torch.nn.LocalResponseNorm`` on the CPU; :func:`lrn_reference` is the
  formula written out, for tests.
- :class:`LocallyConnected2d`: cuda-convnet's unshared-filter layer, used by the
  Section 3.3 CIFAR-10 net (torch has none).
- :func:`apply_paper_init`: Section 5's N(0, 0.01) weights and 0/1 biases.
- The pieces every net here shares: activations (Section 3.1), overlapping and
  non-overlapping max pooling (Section 3.4) and their map sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ModelConfigError",
    "LRN_CONVENTIONS",
    "ACTIVATIONS",
    "POOLINGS",
    "lrn_reference",
    "lrn_band",
    "LocalResponseNorm",
    "LocallyConnected2d",
    "apply_paper_init",
]


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
# Shared by every net: activations (Section 3.1) and max pooling (Section 3.4)
# ---------------------------------------------------------------------------

ACTIVATIONS = ("relu", "tanh")
POOLINGS = {"overlapping": (3, 2), "non_overlapping": (2, 2)}  # (z, s), Section 3.4


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
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED_LAYERS):
            _paper_init_layer(module, name, table)
    return model


WEIGHTED_LAYERS = (nn.Conv2d, nn.Linear, LocallyConnected2d)


def _paper_init_layer(module: nn.Module, name: str, table: dict | None) -> None:
    std, bias = (0.01, 0.0) if table is None else table.get(name.rsplit(".", 1)[-1], (0.01, 0.0))
    module.weight.normal_(0.0, std)
    if module.bias is not None:
        module.bias.fill_(bias)


@torch.no_grad()
def init_layer_by_layer(model: nn.Module, seed_of_layer, kaiming: bool) -> nn.Module:
    """Initialise every conv/linear/local layer from a random stream of its own, in place.

    ``seed_of_layer(name)`` gives each layer's seed (``seeds.layer_seed``), so a layer's initial
    weights depend on the run's seed and its name only, not on the layers built before it: two
    ablation arms paired by seed share them in every layer they both have with the same shape.
    ``kaiming``: He et al.'s init; otherwise the model's own (Section 5's where its spec asks for
    it, else torch's default).
    """
    table = getattr(model, "PAPER_INIT", None)
    spec = getattr(model, "spec", None)
    paper = bool(spec.get("paper_init", True)) if isinstance(spec, dict) else False
    for name, module in model.named_modules():
        if not isinstance(module, WEIGHTED_LAYERS):
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of_layer(name))
            if kaiming and isinstance(module, (nn.Conv2d, nn.Linear)):
                kaiming_init(module)
            elif paper:
                _paper_init_layer(module, name, table)
            else:
                module.reset_parameters()
    return model


def kaiming_init(module: nn.Module) -> nn.Module:
    """He et al. (2015) initialisation of every convolution and linear layer: weights N(0, 2 / fan_in),
    biases 0 (the ReLU gain keeps the activations' scale through depth, where Section 5's N(0, 0.01)
    and unit biases leave a narrow, short-trained net at chance for thousands of steps)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
