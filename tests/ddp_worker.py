"""A few data-parallel SGD steps; run by tests/test_parallel.py under torchrun.

``python -m torch.distributed.run --standalone --nproc_per_node=N tests/ddp_worker.py OUT``
writes ``OUT/rank<r>.pt`` (the final state_dict). ``run_steps(info)`` is also
imported by the test and run in-process with world_size 1 as the reference:
the same global batches, the same model, one process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from replication.engine.distributed import (
    DistInfo,
    cleanup_distributed,
    init_distributed,
    unwrap,
    wrap_ddp,
)
from replication.models import build_model

SPEC = {"arch": "alexnet", "input_size": 24, "width": 0.0625, "num_classes": 10, "dropout": 0.0,
        "paper_init": False}
GLOBAL_BATCH = 8
STEPS = 3


def global_data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed 'dataset' of STEPS global batches."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(STEPS * GLOBAL_BATCH, 3, 24, 24, generator=generator)
    labels = torch.randint(0, 10, (STEPS * GLOBAL_BATCH,), generator=generator)
    return images, labels


def run_steps(info: DistInfo) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = wrap_ddp(build_model(SPEC), info)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    images, labels = global_data()
    for step in range(STEPS):
        batch = slice(step * GLOBAL_BATCH, (step + 1) * GLOBAL_BATCH)
        # each rank reads its own equal share of this step's global batch
        mine = torch.arange(GLOBAL_BATCH).tensor_split(info.world_size)[info.rank]
        x, y = images[batch][mine].to(info.device), labels[batch][mine].to(info.device)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    info = init_distributed(device="cpu")  # gloo on the CPU, even where GPUs exist
    state = run_steps(info)
    torch.save({"state": state, "world_size": info.world_size, "backend": info.backend},
               Path(out_dir) / f"rank{info.rank}.pt")
    cleanup_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
