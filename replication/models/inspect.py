"""Counting a net against Fig. 2 and Section 3.5: parameters, neurons, map sizes.

:func:`layer_table` gives one row per layer (output shape, parameters,
neurons, which towers feed it, the per-tower split), built on the meta device
and sized by propagating shapes through the layers' hyper-parameters, so the
60M-parameter net costs no memory. :data:`PAPER_FIG2`,
:data:`PAPER_PARAMETERS` and :data:`PAPER_HIDDEN_NEURONS` are the paper's
own numbers to set beside it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .alexnet import AlexNetConfig
from .build import build_model
from .layers import LocallyConnected2d, LocalResponseNorm

__all__ = [
    "PAPER_FIG2",
    "PAPER_PARAMETERS",
    "PAPER_HIDDEN_NEURONS",
    "count_parameters",
    "layer_table",
    "hidden_neurons",
]

# ---------------------------------------------------------------------------
# The paper's own numbers (Section 3.5 and Fig. 2)
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


# ---------------------------------------------------------------------------
# Our counts, layer by layer
# ---------------------------------------------------------------------------


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
