"""What each profile trains, for every notebook: one ``Scale`` per profile, ``scale_for(profile)``.

A profile (smoke, cpu, paper; ``profiles/<profile>.yaml``) fixes the seeds and precision; its
``Scale`` fixes everything else the notebooks train:

- notebooks 02 and 03 (CIFAR-10): the subset and epoch cap of Fig. 1's nets, the epochs and
  learning rate of Section 3.3's conv-local net;
- notebooks 03 (its Tiny ImageNet half), 04 and 05 (the ImageNet protocol, Sections 2, 4-6): the
  ``Family`` of datasets and AlexNet widths, the number of seeds (five nets for Table 2's
  ensemble), the classical baselines of Table 1's comparison and 04's longer budget-check net.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from replication.experiments.baselines import BaselineConfig

TINY = "tiny-imagenet-200"
NETTE = "imagenette2-128"
IMAGENET = "imagenet"


@dataclass(frozen=True)
class Family:
    """One dataset and AlexNet family at one profile's scale."""

    key: str  # "tiny", "imagenette", "imagenet"
    dataset: str
    label: str  # how reports name it
    image_size: int
    crop: int
    width: float
    towers: int
    epochs: int
    train_per_class: int | None = None
    val_per_class: int | None = None
    train_eval_images: int = 0
    stream: bool = False
    schedule: str = "fixed"  # "fixed": divide by 10 once, late; "plateau": the paper's rule
    init: str = "model"  # "model": Section 5's N(0, 0.01) weights and unit biases; "kaiming": He et al.
    input_scale: float = 1.0  # 1: the paper's raw 0..255 levels minus the mean image; 64: standardised
    data_variant: str | None = None  # the release, named (a run's identity): "32px", "mirror", "sample"...

    def variant(self) -> str:
        towers = f"{self.towers} tower{'s' if self.towers > 1 else ''}"
        stem = "11×11 stride-4 conv1" if self.crop >= 64 else "5×5 stride-1 conv1"
        init = ", He init" if self.init == "kaiming" else ""
        return f"AlexNet {self.crop} px family ({stem}), width {self.width:g}, {towers}{init}"


@dataclass(frozen=True)
class Scale:
    """Everything one profile trains, notebook by notebook."""

    # Notebook 02 (Fig. 1): the class-balanced subset (None: all of CIFAR-10), the epoch cap, and how many
    # epochs a run goes on after its running training error crosses 25%.
    fig1_train_per_class: int | None
    fig1_val_per_class: int | None
    fig1_epoch_cap: int
    fig1_extra_epochs: int
    # Notebook 03's CIFAR-10 half (Section 3.3's conv-local net): its subset, epochs and learning rate.
    lrn_train_per_class: int | None
    lrn_val_per_class: int | None
    lrn_epochs: int
    lrn_lr: float
    # Notebooks 03 (Tiny ImageNet half), 04 and 05: the families, the first of which all three share.
    families: tuple[Family, ...]
    min_seeds: int  # seeds are extended to at least this many (five nets for the ensemble, five per pooling)
    cifar_variant: str | None = None  # CIFAR-10's release, named: "mirror" (the JPEG copy), "sample" (smoke)
    baselines: tuple[BaselineConfig, ...] = ()
    # Notebook 04's budget check: one more net of the first family (first seed, overlapping pooling)
    # trained this many epochs, to see how the comparison with the baselines moves with training time.
    budget_check_epochs: int | None = None
    # Notebook 03's control arm: the paper's LRN with alpha = 0, i.e. b = a / k^beta, a constant
    # scaling of the two layers' outputs by 2^-0.75 = 0.59 with no normalisation by the neighbouring
    # maps. It separates what LRN does as a normaliser from what it does as a fixed rescaling.
    lrn_scale_control: bool = False

    def family(self, key: str) -> Family | None:
        return next((f for f in self.families if f.key == key), None)


# The ImageNet-protocol nets at the cpu scale. One Tiny ImageNet run is budgeted at ~20 minutes: the
# 28 px family at width 0.25 with the paper's two towers (grouped convolutions; faster here than one
# tower of the same width) trains at ~580 img/s on two shared cores (~720 on two free ones): an epoch
# of 100,000 images is ~2.9 minutes, plus ~0.3 minute to evaluate 10,000 validation and 10,000
# training images; five epochs and the ten-crop test are ~18 minutes. Width 0.5 is ~4x slower.
#
# Initialisation (a known deviation): with Section 5's N(0, 0.01) weights and unit biases on raw
# 0..255 pixels, this narrow net stays at chance (loss ln 200 = 5.30) for epochs: the unit biases
# dominate conv4 onwards and the conv weights' gradients are ~1e-3 of their norm, the long initial
# plateau the paper's 90 epochs can afford and 5 epochs cannot. The cpu and smoke nets therefore use
# He et al.'s initialisation (N(0, 2/fan_in), zero biases) on standardised inputs (mean image
# subtracted, divided by 64). Even so real Tiny ImageNet has a chance plateau of ~450 steps (a
# 5-epoch run has 3,900) with the paper's dropout, which we keep.
MINIATURE = {"init": "kaiming", "input_scale": 64.0}
CPU_TINY = Family("tiny", TINY, "Tiny ImageNet (200 classes, 32 px mirror)", 32, 28, 0.25, 2, 5,
                  train_eval_images=10_000, data_variant="32px", **MINIATURE)
# Imagenette with the 112 px family keeps the paper's 11x11 stride-4 first layer. Width 0.25 trains
# at ~480 img/s: 9,469 images are ~20 s an epoch, ~25 s with the validation pass; 10 epochs and the
# ten-crop test are ~5 minutes a run.
CPU_NETTE = Family("imagenette", NETTE, "Imagenette (10 classes, 128 px mirror)", 128, 112, 0.25, 2, 10,
                   data_variant="mirror", **MINIATURE)

SCALES: dict[str, Scale] = {
    # The committed sample (data/sample/), every image of it, a step or an epoch: the same cells and
    # figures in minutes, with nothing downloaded. CIFAR-10: 30 train and 20 test images a class;
    # Tiny ImageNet: 10 train and 2 val images a class; Imagenette: 16 and 8.
    "smoke": Scale(
        fig1_train_per_class=None, fig1_val_per_class=None, fig1_epoch_cap=2, fig1_extra_epochs=1,
        lrn_train_per_class=None, lrn_val_per_class=None, lrn_epochs=1, lrn_lr=0.001, cifar_variant="sample",
        families=(
            Family("tiny", TINY, "Tiny ImageNet (committed sample, 32 px)", 32, 28, 0.25, 2, 1,
                   train_eval_images=400, data_variant="sample", **MINIATURE),
            Family("imagenette", NETTE, "Imagenette (committed sample, 128 px)", 128, 112, 0.25, 2, 1,
                   data_variant="sample", **MINIATURE),
        ),
        min_seeds=1,
        budget_check_epochs=2,
        lrn_scale_control=True,
        baselines=(
            BaselineConfig("softmax_pixels", TINY, 32, epochs=3, data_variant="sample"),
            BaselineConfig("kmeans_features", TINY, 32, epochs=3, centroids=16, kmeans_patches=4000,
                           kmeans_iters=3, data_variant="sample"),
        ),
    ),
    # About an hour of training a notebook on 2 free cores for CIFAR-10 (fp32, ~1,000 img/s for Fig. 1's
    # net, ~450 img/s for the conv-local net): Fig. 1 on a 10,000-image class-balanced subset, capped at
    # 30 epochs; LRN on all 50,000 for 5 epochs. The ImageNet protocol: notebook 04 ~2.2 hours (5 Tiny
    # ImageNet nets, 5 Imagenette nets, the baselines), notebook 05 ~1.5 hours more (its 5
    # non-overlapping nets; the overlapping ones are 04's).
    "cpu": Scale(
        fig1_train_per_class=1000, fig1_val_per_class=200, fig1_epoch_cap=30, fig1_extra_epochs=2,
        lrn_train_per_class=None, lrn_val_per_class=None, lrn_epochs=5, lrn_lr=0.001, cifar_variant="mirror",
        families=(CPU_TINY, CPU_NETTE),
        min_seeds=5,
        # The 5-epoch nets are still improving ~2 points of top-1 an epoch when they stop, and the
        # k-means baseline is ahead of them: one 12-epoch net shows whether that ordering is a matter
        # of training time.
        budget_check_epochs=12,
        lrn_scale_control=True,
        baselines=(
            BaselineConfig("softmax_pixels", TINY, 32, epochs=10, data_variant="32px"),
            BaselineConfig("kmeans_features", TINY, 32, epochs=20, centroids=256, data_variant="32px"),
        ),
    ),
    # The paper's own scale: all of CIFAR-10, Fig. 1 to 35+ epochs, the conv-local net for cuda-convnet's
    # 350; ILSVRC-2012 with the paper's net, 90 epochs.
    "paper": Scale(
        fig1_train_per_class=None, fig1_val_per_class=None, fig1_epoch_cap=60, fig1_extra_epochs=5,
        lrn_train_per_class=None, lrn_val_per_class=None, lrn_epochs=350, lrn_lr=0.001, cifar_variant="mirror",
        families=(Family("imagenet", IMAGENET, "ILSVRC-2012 (1000 classes, 256 px)", 256, 224, 1.0, 2, 90,
                         train_eval_images=10_000, stream=True, schedule="plateau", data_variant="ilsvrc2012"),),
        min_seeds=1,
    ),
}


def scale_for(profile: str) -> Scale:
    try:
        return SCALES[profile]
    except KeyError:
        raise ValueError(f"no scale for profile {profile!r}; known: {', '.join(SCALES)}") from None


def seeds_for(params: Mapping[str, Any]) -> list[int]:
    """The notebook's seeds, extended with the next unused integers to the profile's minimum
    (five at the cpu scale: five nets to average, five seeds a pooling)."""
    seeds = list(params["seeds"])
    needed = scale_for(params["profile"]).min_seeds
    candidate = 0
    while len(seeds) < needed:
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    return seeds
