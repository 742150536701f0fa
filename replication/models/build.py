"""A model from a spec: ``{"arch": "alexnet" | "fig1" | "conv_local", **kwargs}``.

The spec is what a training config stores, so a run's model is rebuilt from
its record: :class:`~replication.models.alexnet.AlexNet` (Section 3),
:class:`~replication.models.cifar.Fig1Net` (Fig. 1) or
:class:`~replication.models.cifar.ConvLocalNet` (Section 3.3).
"""

from __future__ import annotations

import dataclasses
from inspect import signature
from typing import Any

from torch import nn

from .alexnet import AlexNet, AlexNetConfig
from .cifar import ConvLocalNet, Fig1Net
from .layers import ModelConfigError

__all__ = ["ARCHS", "build_model", "check_spec"]

ARCHS = {"alexnet": AlexNet, "fig1": Fig1Net, "conv_local": ConvLocalNet}
_ARCH_ALIASES = {"fig1net": "fig1", "convlocal": "conv_local", "conv-local": "conv_local",
                 "convlocalnet": "conv_local", "alex": "alexnet"}


def _parse(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(arch, kwargs)`` of a spec, the arch resolved and every argument known to it (else
    :class:`ModelConfigError` naming the unknown ones)."""
    kwargs = dict(spec)
    arch = str(kwargs.pop("arch", "alexnet")).lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch not in ARCHS:
        raise ModelConfigError(f"unknown arch {arch!r}; use one of {sorted(ARCHS)}")
    if arch == "alexnet":
        valid, name = {f.name for f in dataclasses.fields(AlexNetConfig)}, "AlexNetConfig fields"
    else:
        valid, name = set(signature(ARCHS[arch]).parameters), f"{ARCHS[arch].__name__} arguments"
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise ModelConfigError(f"unknown {name} {unknown}; valid: {sorted(valid)}")
    return arch, kwargs


def check_spec(spec: dict[str, Any], input_size: int | None = None) -> None:
    """Check a spec without building the net: the arch is known, its arguments exist, and (AlexNet,
    whose config does the arithmetic) the sizes fit, e.g. an input too small for the family's three
    poolings. ``input_size`` is the crop the net will see when the spec does not say. Raises
    :class:`ModelConfigError` naming the problem."""
    arch, kwargs = _parse(spec)
    if arch == "alexnet":
        if input_size is not None:
            kwargs.setdefault("input_size", input_size)
        try:
            AlexNetConfig(**kwargs)  # validates widths, LRN, pooling and the map sizes
        except TypeError as error:  # a value of the wrong type
            raise ModelConfigError(str(error)) from None


def build_model(spec: dict[str, Any] | AlexNetConfig) -> nn.Module:
    """``{"arch": "alexnet"|"fig1"|"conv_local", **kwargs}`` -> a model.

    For ``alexnet`` the kwargs are :class:`AlexNetConfig` fields, e.g.
    ``{"arch": "alexnet", "input_size": 32, "num_classes": 200, "width": 0.5}``;
    ``arch`` defaults to ``alexnet``. Unknown keys raise :class:`ModelConfigError`.
    """
    if isinstance(spec, AlexNetConfig):
        return AlexNet(spec)
    arch, kwargs = _parse(spec)
    if arch == "alexnet":
        return AlexNet(AlexNetConfig(**kwargs))
    return ARCHS[arch](**kwargs)

