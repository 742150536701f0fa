"""Notebook 01: the architecture of Section 3 and Fig. 2, measured on the paper's net.

Every claim here is exact and needs no training: the parameter and neuron
counts and the output shapes come from ``replication.models.layer_table``, a
forward pass on PyTorch's ``meta`` device (no memory, no time), so they are the
same in every profile. The claims (paper values, rules) are registered here; the figures'
own numbers, ``claims.FIG2_OUTPUT_SHAPES`` and ``claims.FIG2_NEURONS``, are shared with
``replication.reports``' Fig. 2 table.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from replication import claims, models
from replication.claims import FIG2_NEURONS, FIG2_OUTPUT_SHAPES, Claim, register

NOTEBOOK = "01_architecture"

register(Claim(
    id="arch.params", notebook=NOTEBOOK,
    statement="The network has 60 million parameters",
    paper_value=models.PAPER_PARAMETERS, paper_display="60 million (Fig. 2's layers: 60,965,224)",
    source={"other": "Abstract", "section": "1"}, unit="count",
    rule="exact",
    note="The paper rounds; the layer sizes of Fig. 2 with its two towers give exactly 60,965,224, the "
         "count judged here, so a net wired otherwise fails (one tower with the same widths has "
         "62,378,344, because conv2, conv4 and conv5 then see both halves).",
))
register(Claim(
    id="arch.neurons", notebook=NOTEBOOK,
    statement="The network has 650,000 neurons",
    paper_value=650_000, paper_display="650,000",
    source={"other": "Abstract", "section": "1"}, unit="count",
    rule="ratio_within_factor", params={"factor": 1.05},
    note="Counted as the outputs of the seven hidden layers conv1–fc7 (conv1 at 55×55×96); "
         "adding fc8's 1000 outputs changes nothing at this precision.",
))
register(Claim(
    id="arch.output_shapes", notebook=NOTEBOOK,
    statement="Layer outputs 55×55×96, 27×27×256, 13×13×384, 13×13×384, 13×13×256, 4096, 4096, 1000",
    paper_value=FIG2_OUTPUT_SHAPES, paper_display="as Fig. 2",
    source={"section": "3.5", "figure": "Fig. 2"}, unit="shapes",
    rule="exact",
    kind="check",
))
register(Claim(
    id="arch.neurons_per_layer", notebook=NOTEBOOK,
    statement="Neurons per layer 253,440–186,624–64,896–64,896–43,264–4096–4096–1000",
    paper_value=FIG2_NEURONS, paper_display="253,440–186,624–…–1000",
    source={"section": "3.5", "figure": "Fig. 2"}, unit="list",
    rule="exact",
    note="Known inconsistency in the paper: Fig. 2's own conv1 output, 55×55×96, is 290,400 neurons, "
         "not 253,440; the other seven layers agree.",
    kind="erratum",
))
register(Claim(
    id="arch.conv1_at_224", notebook=NOTEBOOK,
    statement="A 224×224×3 input through 11×11 stride-4 conv1 gives 55×55×96",
    paper_value=[55, 55, 96], paper_display="55×55×96",
    source={"section": "3.5", "figure": "Fig. 2"}, unit="shape",
    rule="exact",
    note="(224 − 11)/4 + 1 = 54.25: torch's floor rule gives 54×54. The paper's cuda-convnet used "
         "the ceil rule (the last window hangs over the edge into zeros), which gives 55×55; so does "
         "a 227 px input without padding, the size we use.",
    kind="check",
))
register(Claim(
    id="arch.cross_tower_layers", notebook=NOTEBOOK,
    statement="Only conv3 and the fully-connected layers take input from both towers",
    paper_value=["conv3", "fc6", "fc7", "fc8"], paper_display="conv3, fc6–fc8",
    source={"section": "3.2, 3.5", "figure": "Fig. 2"}, unit="names",
    rule="exact",
    kind="check",
))


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
    return {c.id: result[c.id] for c in claims.claims_for(NOTEBOOK) if c.id in result}


def plan(params: Mapping[str, Any]) -> dict[str, list]:
    """Nothing to train: every claim of notebook 01 is counted on the paper's net."""
    return {}


def measure(params: Mapping[str, Any]) -> dict[str, dict]:
    """Every claim of notebook 01 (``measure_architecture`` on the paper's net; the same in every profile)."""
    return measure_architecture()
