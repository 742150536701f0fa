"""Data-parallel scale-out with ``torchrun`` and DistributedDataParallel.

Not in the paper, which spreads one net over two GPUs by model parallelism
(Section 3.2, :class:`replication.models.towers.TwoDeviceAlexNet`). This lets
the ``paper`` profile use more devices than two: every rank holds the whole
net, reads its own shard of each batch, and DDP averages the gradients, so a
step equals one process's step on the global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistInfo",
    "init_distributed",
    "wrap_ddp",
    "unwrap",
    "cleanup_distributed",
]


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
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device, dist.get_rank() == 0, backend)


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


def cleanup_distributed() -> None:
    """Destroy the process group if one was created."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
