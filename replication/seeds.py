"""Seed streams: every random draw of a run comes from (seed, epoch, stream, rank).

One seed fixes a run's initial weights, data order, augmentation draws and
dropout masks, each from its own stream, so that changing one (say, the
augmentation of an ablation arm) leaves the others as they were. Each stream of
each epoch gets its own 63-bit seed from numpy's SeedSequence, so a run resumed
at an epoch boundary draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import numpy as np
import torch

STREAM_INIT, STREAM_SHUFFLE, STREAM_AUGMENT, STREAM_DROPOUT = range(4)


def derive_seed(seed: int, epoch: int, stream: int, rank: int = 0) -> int:
    """A 63-bit seed for one random stream of one epoch (numpy's SeedSequence mixing)."""
    state = np.random.SeedSequence([seed, epoch, stream, rank]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def generator(seed: int, epoch: int, stream: int, rank: int = 0) -> torch.Generator:
    """A torch generator seeded for one stream of one epoch."""
    return torch.Generator().manual_seed(derive_seed(seed, epoch, stream, rank))
