"""Seed streams: every random draw of a run comes from (seed, epoch, stream, rank).

One seed fixes a run's initial weights, data order, augmentation draws and
dropout masks, each from its own stream, so that changing one (say, the
augmentation of an ablation arm) leaves the others as they were. Each stream of
each epoch gets its own 63-bit seed from numpy's SeedSequence, so a run resumed
at an epoch boundary draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

STREAM_INIT, STREAM_SHUFFLE, STREAM_AUGMENT, STREAM_DROPOUT, STREAM_LIGHTING = range(5)


def derive_seed(seed: int, epoch: int, stream: int, rank: int = 0) -> int:
    """A 63-bit seed for one random stream of one epoch (numpy's SeedSequence mixing)."""
    state = np.random.SeedSequence([seed, epoch, stream, rank]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def generator(seed: int, epoch: int, stream: int, rank: int = 0) -> torch.Generator:
    """A torch generator seeded for one stream of one epoch."""
    return torch.Generator().manual_seed(derive_seed(seed, epoch, stream, rank))


def layer_seed(seed: int, layer: str) -> int:
    """A 63-bit seed for one layer's initial weights, keyed by the run's seed and the layer's name.

    Ablation arms are paired by seed: an arm that changes one layer (removes LRN, changes FC6's input
    by changing the pooling) still starts every other layer from the baseline's weights.
    """
    name_key = int.from_bytes(hashlib.sha256(layer.encode()).digest()[:4], "little")
    state = np.random.SeedSequence([seed, STREAM_INIT, name_key]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])
