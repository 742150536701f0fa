"""Notebook 01: the architecture of Section 3 and Fig. 2, measured on the paper's net.

Every claim here is exact and needs no training: the parameter and neuron
counts and the output shapes come from ``replication.models.layer_table``, a
forward pass on PyTorch's ``meta`` device (no memory, no time), so they are the
same in every profile. The claims themselves (paper values, rules) are in
``replication.claims``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from replication import claims, models


def _paper_order(shape: Sequence[int]) -> list[int]:
    """(C, H, W) -> [H, W, C], the order Fig. 2 prints (55×55×96)."""
    return [*shape[1:], shape[0]] if len(shape) == 3 else list(shape)


def conv1_output_sides() -> list[dict]:
    """Section 3.5's 224-vs-227 arithmetic, measured with torch convolutions.

    conv1 is 11×11 with stride 4. Torch (and most frameworks) use the floor
    rule ``(S - 11) // 4 + 1``; cuda-convnet, the paper's code, used the ceil
    rule ``1 + ceil((S - 11) / 4)``, letting the last window run over the
    edge into zeros (replication.models pads 3 px on the bottom and right).
    """
    cases = [
        (224, 0, "224 px, no padding (torch's floor rule)"),
        (224, 3, "224 px, cuda-convnet's ceil rule (3 px of zeros bottom/right)"),
        (227, 0, "227 px, no padding"),
    ]
    rows = []
    with torch.device("meta"):
        conv1 = nn.Conv2d(3, 96, kernel_size=11, stride=4)
        for size, pad, how in cases:
            x = nn.functional.pad(torch.zeros(1, 3, size, size), (0, pad, 0, pad))
            rows.append({"input": size, "how": how, "conv1 output": _paper_order(conv1(x).shape[1:])})
    return rows


def measure_architecture(config: models.AlexNetConfig | None = None) -> dict[str, dict]:
    """Measure every claim of notebook 01 on the paper's net (two towers, 227 px).

    Returns ``{claim_id: {"measurement": ..., "scale": ...}}`` in the registry's
    order: exact counts from ``models.layer_table``, the same in every profile.
    """
    config = config or models.AlexNetConfig.paper()
    rows = [r for r in models.layer_table(config) if r["kind"] in ("conv", "local", "fc")]
    rows_224 = [r for r in models.layer_table(config, input_size=224) if r["kind"] == "conv"]
    variant = f"paper net, {config.towers} tower{'s' if config.towers > 1 else ''}"
    scale = {"dataset": None, "variant": variant, "image_size": config.input_size, "epochs": 0,
             "precision": None, "seeds": []}
    measured = {
        "arch.params": sum(r["params"] for r in rows),
        "arch.neurons": sum(r["neurons"] for r in rows if r["hidden"]),
        "arch.output_shapes": [_paper_order(r["output_shape"]) for r in rows],
        "arch.neurons_per_layer": [r["neurons"] for r in rows],
        "arch.cross_tower_layers": [r["layer"] for r in rows if r["inputs_from"] == "both towers"],
    }
    result = {cid: {"measurement": claims.exact_measurement(v), "scale": dict(scale)} for cid, v in measured.items()}
    result["arch.conv1_at_224"] = {
        "measurement": claims.exact_measurement(_paper_order(rows_224[0]["output_shape"])),
        "scale": {**scale, "image_size": 224},
    }
    return {c.id: result[c.id] for c in claims.claims_for(claims.ARCHITECTURE) if c.id in result}
