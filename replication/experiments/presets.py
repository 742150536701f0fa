"""Named recipes to start a training run from: ``python -m replication train --preset NAME``.

Each preset is read from a recipe the notebooks train, never typed again here: the miniature
recipes of ``protocol`` (the cpu profile's Imagenette and CIFAR-10 baselines, whose learning rates
were tuned on held-out training images) and the paper profile's ILSVRC-2012 recipe
(``protocol.PAPER_IMAGENET``: Sections 2, 4 and 5 at full scale). A preset is the recipe's
config at seed 0 without the extra measurements only the notebooks' figures need (Fig. 4's
neighbours, the dropout-at-test errata, the stored softmax outputs of ensembles); flags and
``--config`` override any of its fields, and ``--dataset folder:PATH`` trains it on your images.

``narrow_init_warning`` says when a config is unlikely to learn at all: a narrow AlexNet from
Section 5's initialisation (what ``--model '{arch: alexnet, width: 0.25}'`` gives by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from replication.engine.config import TrainConfig
from replication.experiments import protocol


@dataclass(frozen=True)
class Preset:
    """A named recipe: where it comes from, and the config it builds."""

    name: str
    recipe: protocol.Recipe          # the cpu (or paper) profile's recipe it is read from
    source: str                      # that recipe's name (replication.experiments.<source>)

    def build(self) -> TrainConfig:
        return self.recipe.config(0)


PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    Preset("imagenette-112", protocol.CPU_NETTE, "protocol.CPU_NETTE"),
    Preset("cifar-conv-local", protocol.CPU_CIFAR, "protocol.CPU_CIFAR"),
    Preset("paper", protocol.PAPER_IMAGENET, "protocol.PAPER_IMAGENET"),
)}
# The presets a notebook can train on your images in place of ImageNet's stand-in (``-p preset``):
# AlexNet recipes, not CIFAR-10's conv-local net.
IMAGENET_PRESETS = tuple(name for name, preset in PRESETS.items() if preset.recipe.arch == "alexnet")


def notebook_recipe(name: str, profile: str) -> protocol.Recipe:
    """The recipe a notebook of ``profile`` trains for preset ``name``: the profile's recipe of the same
    family (the smoke profile's shrinks epochs and width to a minute), else the preset's own."""
    preset = _get(name)
    same = [r for r in protocol.recipes_for(profile) if r.key == preset.recipe.key]
    return same[0] if same else preset.recipe


# What only the notebooks' figures and errata need of a finished net: left at their defaults
NOTEBOOK_ONLY = tuple(protocol.FINAL_BASELINE_MEASUREMENTS) + ("save_val_probs",)


def _get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)} "
                         "(`python -m replication train --help` describes each)") from None


def preset_config(name: str) -> TrainConfig:
    """The config of preset ``name``: its recipe at seed 0, less the notebook-only measurements."""
    config = _get(name).build()
    defaults = TrainConfig()
    return config.replace(**{field: getattr(defaults, field) for field in NOTEBOOK_ONLY})


def preset_values(name: str) -> dict:
    """The fields preset ``name`` sets (those that differ from TrainConfig's defaults)."""
    values, defaults = preset_config(name).to_dict(), TrainConfig().to_dict()
    return {key: value for key, value in values.items() if value != defaults[key]}


def describe(config: TrainConfig) -> str:
    """One line: the net, its init and input, crops, schedule and data."""
    model = config.model
    if model["arch"] == "alexnet":
        towers = model.get("towers", 1)
        net = f"AlexNet width {model.get('width', 1.0):g}, {towers} tower{'s' if towers > 1 else ''}"
        init = {"kaiming": "He init", "model": "Section 5's init"}[config.init]
    else:
        net = f"{model['arch']} net"
        init = {"kaiming": "He init", "model": "its own init"}[config.init]
    pixels = "raw pixels" if config.input_scale == 1 else f"pixels/{config.input_scale:g}"
    schedule = {"fixed": f"/10 after epochs {','.join(map(str, config.lr_drop_epochs))}",
                "plateau": "/10 when val error stalls", "constant": "constant"}[config.schedule]
    return (f"{net}, {init}, {pixels}; {config.crop} px crops of {config.image_size} px; lr {config.lr:g} "
            f"{schedule}; {config.epochs} epochs" + (", streamed" if config.stream else "")
            + f"; {config.dataset}")


def preset_help() -> str:
    """The presets, one line each, for ``train --help``."""
    width = max(map(len, PRESETS)) + 2
    lines = ["presets (--preset NAME: the recipe a notebook trains, read from replication.experiments.<the name in",
             "brackets>; flags and --config override its fields; --data PATH trains it on your images):"]
    lines += [f"  {p.name:<{width}}{describe(preset_config(p.name))} [{p.source}]" for p in PRESETS.values()]
    return "\n".join(lines)


def narrow_init_warning(config: TrainConfig) -> str | None:
    """Why a narrow AlexNet (width < 1) from Section 5's initialisation will likely not learn, or None.

    Section 5's N(0, 0.01) weights and unit biases suit the full net; a net with a fraction of the
    kernels starts with activations too small to pass a gradient and sits at chance for longer than
    the miniature schedules (notebook 00 shows it), which is why the miniature recipes start from
    He init on standardised pixels.
    """
    model = config.model
    width = model.get("width", 1.0)
    if (model.get("arch") != "alexnet" or not isinstance(width, (int, float)) or width >= 1
            or config.init != "model" or model.get("paper_init", True) is False):
        return None
    miniature = protocol.CPU_NETTE
    return (f"a narrow AlexNet (width {width:g}) from Section 5's initialisation (weights N(0, 0.01), biases 1) "
            f"on pixels / {config.input_scale:g} usually stays at chance error for many epochs at this scale. "
            f"Use He init on standardised pixels, as the miniature recipes do: --init {miniature.init} "
            f"--input-scale {miniature.input_scale:g}, or start from a preset (--preset imagenette-112); "
            "Section 5's init is meant for the full net (width 1)")
