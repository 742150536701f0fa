"""Section 3.2: the two-tower AlexNet split over two devices, as the paper trained it.

"half of the kernels (or neurons) on each GPU, with one additional trick: the
GPUs communicate only in certain layers". :class:`TwoDeviceAlexNet` puts tower
k's share of every layer on device k and copies activations between devices
only where Fig. 2 draws cross-connections: into conv3 and into FC6, FC7 and
FC8.

No layer list is written here. The towers are cut from a grouped
:class:`~replication.models.alexnet.AlexNet`, layer by layer, and the grouping
already says where the towers talk:

- a grouped convolution (conv2, conv4, conv5: ``groups=2``) reads only its own
  tower's maps, so tower k keeps its half of the kernels, each of them on its
  own tower's half of the input maps;
- an ungrouped convolution or a fully connected layer (conv3, FC6-FC8) reads
  both towers, so tower k keeps its half of the output units over all inputs,
  and the towers exchange activations just before it (conv1 reads the image,
  which each device receives whole);
- LRN normalises within a tower (Section 3.3), so each tower keeps an LRN over
  its own maps; activations, pooling, dropout and padding are copied as they are.

A change to Section 3's net is made in ``AlexNet`` alone and this split follows.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .alexnet import AlexNet
from .layers import LocalResponseNorm

__all__ = ["TwoDeviceAlexNet"]

# Layers with weights, split between the towers by output units.
_WEIGHTED = (nn.Conv2d, nn.Linear)


def _reads_own_tower(module: nn.Module, towers: int) -> bool:
    """A grouped convolution, one group per tower: it sees only its own tower's maps."""
    return isinstance(module, nn.Conv2d) and module.groups == towers


def _tower_share(module: nn.Module, tower: int, towers: int) -> nn.Module:
    """Tower ``tower``'s share of one layer of the grouped net (weights left empty on 'meta').

    The weighted layers keep their hyper-parameters (kernel, stride, padding)
    and take the ``tower``-th of ``towers`` slices of the output units, as
    ``Tensor.tensor_split`` cuts them (FC8's classes may not split evenly).
    """
    if isinstance(module, LocalResponseNorm):
        if module.groups % towers:
            raise ValueError(f"LRN over {module.groups} groups cannot be split over {towers} towers")
        channels = None if module.band is None else module.band.shape[0] // towers
        return LocalResponseNorm(module.size, module.alpha, module.beta, module.k, module.convention,
                                 channels=channels, groups=module.groups // towers)
    if not isinstance(module, _WEIGHTED):
        return copy.deepcopy(module)  # activation, pooling, dropout, padding, flatten: nothing to split
    units = module.weight.tensor_split(towers, dim=0)[tower].shape[0]
    empty = {"bias": module.bias is not None, "device": "meta", "dtype": module.weight.dtype}  # copied in later
    if isinstance(module, nn.Linear):
        return nn.Linear(module.in_features, units, **empty)
    if module.groups not in (1, towers):
        raise ValueError(f"cannot split a convolution with groups={module.groups} over {towers} towers")
    inputs = module.in_channels // towers if _reads_own_tower(module, towers) else module.in_channels
    return nn.Conv2d(inputs, units, module.kernel_size, module.stride, module.padding, module.dilation,
                     padding_mode=module.padding_mode, **empty)


def _cross_talk_stages(layers: list[tuple[str, nn.Module]], towers: int) -> tuple[tuple[str, ...], ...]:
    """The layer names cut where the towers exchange activations.

    A new stage starts at every weighted layer that reads both towers, except
    the first weighted layer (it reads the image): for AlexNet, pad1..pool2,
    conv3..flatten, FC6, FC7 and FC8 (Fig. 2).
    """
    stages: list[list[str]] = [[]]
    seen_weighted = False
    for name, module in layers:
        if isinstance(module, _WEIGHTED):
            if seen_weighted and not _reads_own_tower(module, towers):
                stages.append([])
            seen_weighted = True
        stages[-1].append(name)
    return tuple(tuple(stage) for stage in stages)


class _Tower(nn.ModuleDict):
    """One device's share of every layer, under the grouped net's layer names."""

    def layers(self) -> dict[str, nn.Module]:
        """The weighted layers by their AlexNet names (conv1 ... fc8)."""
        return {name: module for name, module in self.items() if isinstance(module, _WEIGHTED)}

    def run(self, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        """Apply the named layers in order (one stage between two exchanges)."""
        for name in names:
            x = self[name](x)
        return x


class TwoDeviceAlexNet(nn.Module):
    """The two-tower AlexNet split over two devices, as trained in the paper.

    Tower k (its half of the kernels in every conv layer and half of the
    neurons in every FC layer, FC8's logits included) lives on
    ``devices[k]``. Activations are copied between devices only where Fig. 2
    draws cross-connections: into conv3 and into FC6, FC7 and FC8. Logits
    are gathered on ``devices[0]``.

    ``devices=("cuda:0", "cuda:1")`` on two GPUs, ``("cuda:0", "cuda:0")`` on
    one, ``("cpu", "cpu")`` anywhere (useful to test equivalence). The layers
    and weights are cut from ``model`` (a two-tower :class:`AlexNet`); after
    training, :meth:`to_alexnet` / :meth:`grouped_state_dict` give the weights
    back in the grouped layout. It is an ordinary ``nn.Module``, so the same
    optimiser code trains it (parameters on two devices are fine for torch
    optimisers).

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
        towers = len(self.devices)
        layers = [*model.body.named_children(), *model.head.named_children()]
        # state_dict prefix of each weighted layer in the grouped net ("conv1" -> "body.conv1")
        self._grouped_keys = {name.rsplit(".", 1)[-1]: name for name, module in model.named_modules()
                              if isinstance(module, _WEIGHTED)}
        self.stages = _cross_talk_stages(layers, towers)
        self.towers = nn.ModuleList()
        for k, device in enumerate(self.devices):
            tower = _Tower({name: _tower_share(module, k, towers) for name, module in layers})
            for module in tower.layers().values():
                module.to_empty(device=device)
            self.towers.append(tower.to(device))
        self.load_grouped(model.state_dict())

    # -- weights: grouped layout <-> towers ----------------------------------
    @torch.no_grad()
    def load_grouped(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copy weights from a grouped :class:`AlexNet` state_dict into the towers."""
        for name, key in self._grouped_keys.items():
            for kind in ("weight", "bias"):
                parts = state_dict[f"{key}.{kind}"].tensor_split(len(self.towers), dim=0)
                for tower, part in zip(self.towers, parts):
                    target = getattr(tower[name], kind)
                    target.copy_(part.to(target.device))

    @torch.no_grad()
    def grouped_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in :class:`AlexNet`'s layout (tensors on ``devices[0]``)."""
        out = {}
        for name, key in self._grouped_keys.items():
            for kind in ("weight", "bias"):
                parts = [getattr(t[name], kind).detach().to(self.devices[0]) for t in self.towers]
                out[f"{key}.{kind}"] = torch.cat(parts, dim=0)
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
        h = [x.to(device, non_blocking=True) for device in self.devices]  # each tower sees the whole image
        for i, stage in enumerate(self.stages):
            if i:
                h = self._exchange(h)  # cross-talk (Fig. 2): into conv3, FC6, FC7 and FC8
            h = [tower.run(stage, v) for tower, v in zip(self.towers, h)]
        return torch.cat([z.to(self.devices[0]) for z in h], dim=1)

    def conv1_weights(self) -> list[torch.Tensor]:
        """conv1 kernels per tower (Fig. 3)."""
        return [t["conv1"].weight.detach() for t in self.towers]
