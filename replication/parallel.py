"""Section 3.2 of the paper: training on multiple devices.

Two kinds of parallelism:

- :class:`TwoDeviceAlexNet`, the paper's own model parallelism: "half of the
  kernels (or neurons) on each GPU, with one additional trick: the GPUs
  communicate only in certain layers". Tower k's parameters live on device k;
  activations cross devices only into conv3 and into each fully connected
  layer (FC6, FC7, FC8), as in Fig. 2. Built from (and convertible back to)
  the grouped single-device :class:`replication.models.AlexNet`, with which it
  computes the same function.
- Data-parallel scale-out with ``torchrun`` and DistributedDataParallel:
  :func:`init_distributed`, :func:`shard_indices`, :func:`wrap_ddp`. Not in
  the paper; it lets the ``paper`` profile use more GPUs than two.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .models import AlexNet, AlexNetConfig, LocalResponseNorm, _make_activation, _make_pool

__all__ = [
    "TwoDeviceAlexNet",
    "DistInfo",
    "init_distributed",
    "shard_indices",
    "wrap_ddp",
    "unwrap",
    "all_reduce_mean",
    "cleanup_distributed",
]

# ---------------------------------------------------------------------------
# Model parallelism: one tower per device (Section 3.2, Fig. 2)
# ---------------------------------------------------------------------------

# How each weighted layer is split between towers: (grouped input?, name).
# Every layer splits its *output* units between towers; conv2, conv4, conv5 also
# see only their own tower's input maps (grouped), the rest see both towers.
_OWN_TOWER_INPUT = {"conv1": False, "conv2": True, "conv3": False, "conv4": True, "conv5": True,
                    "fc6": False, "fc7": False, "fc8": False}


class _Tower(nn.Module):
    """One GPU's half of AlexNet: its kernels and neurons in every layer."""

    def __init__(self, config: AlexNetConfig, tower: int):
        super().__init__()
        ch = {k: v // 2 for k, v in config.channels().items()}
        classes = [len(c) for c in torch.arange(config.num_classes).tensor_split(2)][tower]
        kernel, stride, pad = config.conv1_geometry()
        if config.conv1_stem == "large":
            pad1, conv1 = nn.ZeroPad2d((0, pad, 0, pad)), nn.Conv2d(3, ch["conv1"], kernel, stride)
        else:
            pad1, conv1 = nn.Identity(), nn.Conv2d(3, ch["conv1"], kernel, stride, padding=pad)

        def lrn(channels: int) -> nn.Module:
            if config.lrn is None:
                return nn.Identity()
            return LocalResponseNorm(config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k,
                                     config.lrn, channels=channels)

        act, pool = config.activation, config.pooling
        # conv1 .. pool2: the tower's own maps only
        self.lower = nn.Sequential(OrderedDict([
            ("pad1", pad1), ("conv1", conv1), ("act1", _make_activation(act)), ("lrn1", lrn(ch["conv1"])),
            ("pool1", _make_pool(pool)),
            ("conv2", nn.Conv2d(ch["conv1"], ch["conv2"], 5, padding=2)), ("act2", _make_activation(act)),
            ("lrn2", lrn(ch["conv2"])), ("pool2", _make_pool(pool)),
        ]))
        # conv3 takes both towers' maps; conv4 and conv5 only this tower's
        self.upper = nn.Sequential(OrderedDict([
            ("conv3", nn.Conv2d(2 * ch["conv2"], ch["conv3"], 3, padding=1)), ("act3", _make_activation(act)),
            ("conv4", nn.Conv2d(ch["conv3"], ch["conv4"], 3, padding=1)), ("act4", _make_activation(act)),
            ("conv5", nn.Conv2d(ch["conv4"], ch["conv5"], 3, padding=1)), ("act5", _make_activation(act)),
            ("pool5", _make_pool(pool)),
        ]))
        fc = ch["fc"]
        self.fc6 = nn.Sequential(nn.Linear(config.fc6_inputs(), fc), _make_activation(act), nn.Dropout(config.dropout))
        self.fc7 = nn.Sequential(nn.Linear(2 * fc, fc), _make_activation(act), nn.Dropout(config.dropout))
        self.fc8 = nn.Linear(2 * fc, classes)

    def layers(self) -> dict[str, nn.Module]:
        """The weighted layers by their AlexNet names."""
        return {"conv1": self.lower.conv1, "conv2": self.lower.conv2, "conv3": self.upper.conv3,
                "conv4": self.upper.conv4, "conv5": self.upper.conv5, "fc6": self.fc6[0],
                "fc7": self.fc7[0], "fc8": self.fc8}


def _grouped_layers(model: AlexNet) -> dict[str, nn.Module]:
    body, head = model.body, model.head
    return {"conv1": body.conv1, "conv2": body.conv2, "conv3": body.conv3, "conv4": body.conv4,
            "conv5": body.conv5, "fc6": head.fc6, "fc7": head.fc7, "fc8": head.fc8}


class TwoDeviceAlexNet(nn.Module):
    """The two-tower AlexNet split over two devices, as trained in the paper.

    Tower k (its half of the kernels in every conv layer and half of the
    neurons in every FC layer, FC8's logits included) lives on
    ``devices[k]``. Activations are copied between devices only where Fig. 2
    draws cross-connections: into conv3 and into FC6, FC7 and FC8. Logits
    are gathered on ``devices[0]``.

    ``devices=("cuda:0", "cuda:1")`` on two GPUs, ``("cuda:0", "cuda:0")`` on
    one, ``("cpu", "cpu")`` anywhere (useful to test equivalence). The weights
    are copied from ``model`` (a two-tower :class:`AlexNet`); after training,
    :meth:`to_alexnet` / :meth:`grouped_state_dict` give them back in the
    grouped layout. It is an ordinary ``nn.Module``, so the same optimiser
    code trains it (parameters on two devices are fine for torch optimisers).

    Dropout draws its own masks per tower, so in training mode with
    ``dropout > 0`` the two layouts agree in distribution, not sample by sample.
    """

    def __init__(self, model: AlexNet, devices: tuple[str, str] = ("cpu", "cpu")):
        super().__init__()
        if not isinstance(model, AlexNet):
            raise TypeError(f"TwoDeviceAlexNet splits an AlexNet, got {type(model).__name__}")
        if model.config.towers != 2:
            raise ValueError("TwoDeviceAlexNet needs a two-tower AlexNet (config.towers=2)")
        if len(devices) != 2:
            raise ValueError(f"devices must name two devices, got {devices!r}")
        self.config = model.config
        self.devices = tuple(torch.device(d) for d in devices)
        self.towers = nn.ModuleList(_Tower(model.config, k) for k in range(2))
        self.load_grouped(model.state_dict())
        for tower, device in zip(self.towers, self.devices):
            tower.to(device)

    # -- weights: grouped layout <-> towers ----------------------------------
    @torch.no_grad()
    def load_grouped(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copy weights from a grouped :class:`AlexNet` state_dict into the towers."""
        for name in _OWN_TOWER_INPUT:
            prefix = ("head." if name.startswith("fc") else "body.") + name
            for kind in ("weight", "bias"):
                full = state_dict[f"{prefix}.{kind}"]
                for tower, part in zip(self.towers, full.tensor_split(2, dim=0)):
                    target = getattr(tower.layers()[name], kind)
                    target.copy_(part.to(target.device))

    @torch.no_grad()
    def grouped_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in :class:`AlexNet`'s layout (tensors on ``devices[0]``)."""
        out = {}
        for name in _OWN_TOWER_INPUT:
            prefix = ("head." if name.startswith("fc") else "body.") + name
            for kind in ("weight", "bias"):
                parts = [getattr(t.layers()[name], kind).detach().to(self.devices[0]) for t in self.towers]
                out[f"{prefix}.{kind}"] = torch.cat(parts, dim=0)
        return out

    def to_alexnet(self) -> AlexNet:
        """A grouped single-device :class:`AlexNet` (on CPU) with these weights."""
        model = AlexNet(self.config, paper_init=False)
        model.load_state_dict({k: v.cpu() for k, v in self.grouped_state_dict().items()})
        return model

    # -- forward --------------------------------------------------------------
    def _exchange(self, parts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Both towers' activations, concatenated in tower order, on each device."""
        return [torch.cat([p.to(device, non_blocking=True) for p in parts], dim=1) for device in self.devices]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lower = [t.lower(x.to(d, non_blocking=True)) for t, d in zip(self.towers, self.devices)]
        upper = [t.upper(h) for t, h in zip(self.towers, self._exchange(lower))]  # cross-talk: conv3
        flat = [h.flatten(1) for h in upper]
        h = [t.fc6(v) for t, v in zip(self.towers, self._exchange(flat))]  # cross-talk: FC6
        h = [t.fc7(v) for t, v in zip(self.towers, self._exchange(h))]  # cross-talk: FC7
        logits = [t.fc8(v) for t, v in zip(self.towers, self._exchange(h))]  # cross-talk: FC8
        return torch.cat([z.to(self.devices[0]) for z in logits], dim=1)

    def conv1_weights(self) -> list[torch.Tensor]:
        """conv1 kernels per tower (Fig. 3)."""
        return [t.lower.conv1.weight.detach() for t in self.towers]


# ---------------------------------------------------------------------------
# Data parallelism: torchrun + DistributedDataParallel
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly one-process) data-parallel job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    is_main: bool = True
    backend: str | None = None  # None when not distributed

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device | None = None, backend: str | None = None) -> DistInfo:
    """Join the torchrun job described by RANK/WORLD_SIZE/LOCAL_RANK, if any.

    Outside torchrun (no WORLD_SIZE, or 1) nothing is initialised and the
    result says world_size 1. Under torchrun the process group is created with
    ``nccl`` when CUDA is available and ``gloo`` otherwise (override with
    ``backend``), and each rank takes ``cuda:LOCAL_RANK`` (or the CPU).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if device is None:
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise RuntimeError(f"rank with LOCAL_RANK={local_rank} wants {device}, but only "
                               f"{torch.cuda.device_count()} GPU(s) are visible: use --nproc_per_node "
                               f"<= {torch.cuda.device_count()} or device='cpu'")
        torch.cuda.set_device(device)
    if world_size <= 1:
        return DistInfo(0, 1, 0, device, True, None)
    import torch.distributed as dist

    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device, dist.get_rank() == 0, backend)


def shard_indices(n: int, rank: int = 0, world_size: int = 1, seed: int = 0, epoch: int = 0,
                  shuffle: bool = True, drop_last: bool = False) -> np.ndarray:
    """This rank's example indices for one epoch (like ``DistributedSampler``).

    Every rank draws the same permutation of ``range(n)`` from ``(seed,
    epoch)`` and takes every ``world_size``-th entry starting at ``rank``, so
    the shards are disjoint and together cover the epoch. Without
    ``drop_last`` the permutation is padded by wrapping around so all ranks
    get ``ceil(n / world_size)`` indices (equal step counts keep DDP in step);
    with it the tail is dropped (``floor(n / world_size)`` each).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    if drop_last:
        order = order[: (n // world_size) * world_size]
    else:
        total = math.ceil(n / world_size) * world_size
        if total > n and n > 0:
            order = np.concatenate([order, np.resize(order, total - n)])
    return order[rank::world_size].astype(np.int64)


def wrap_ddp(model: nn.Module, info: DistInfo, **ddp_kwargs) -> nn.Module:
    """Move ``model`` to ``info.device``; wrap it in DDP when world_size > 1.

    DDP broadcasts rank 0's weights at construction and averages gradients
    over ranks in ``backward()``, so each rank's loss should be the mean over
    its own shard: the update then equals a one-process step on the global
    batch (equal shard sizes).
    """
    model = model.to(info.device)
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if info.device.type == "cuda":
        ddp_kwargs.setdefault("device_ids", [info.device.index])
    return DistributedDataParallel(model, **ddp_kwargs)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP (or torch.compile) wrapper, for saving."""
    while True:
        inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def all_reduce_mean(value: float | torch.Tensor, info: DistInfo) -> float:
    """Mean of a scalar over ranks (identity when not distributed); for metrics."""
    tensor = torch.as_tensor(value, dtype=torch.float64, device=info.device).detach().clone()
    if info.distributed:
        import torch.distributed as dist

        dist.all_reduce(tensor)
        tensor /= info.world_size
    return float(tensor)


def cleanup_distributed() -> None:
    """Destroy the process group if one was created."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
