"""What each profile trains for Fig. 1 (notebook 02): one ``Scale`` per profile, ``scale_for(profile)``.

The paired protocol's recipes (notebooks 00 and 03-05) live in ``protocol``; Fig. 1's nets are not
ablations of a recipe but a learning-rate sweep per activation, sized here: the class-balanced
subset of CIFAR-10 (None: all of it), the epoch cap, and how many epochs a run goes on after its
running training error crosses 25%.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Fig. 1's nets at one profile's scale."""

    fig1_train_per_class: int | None
    fig1_val_per_class: int | None
    fig1_epoch_cap: int
    fig1_extra_epochs: int
    cifar_variant: str | None = None  # CIFAR-10's release, named: "mirror" (the JPEG copy), "sample" (smoke)


SCALES: dict[str, Scale] = {
    # The committed sample (data/sample/): every cell and figure in a minute, no conclusion.
    "smoke": Scale(fig1_train_per_class=None, fig1_val_per_class=None, fig1_epoch_cap=2, fig1_extra_epochs=1,
                   cifar_variant="sample"),
    # A class-balanced 10,000-image subset, 30 epochs at most: each sweep grows until its best rate is
    # bracketed, and all 50,000 images would put notebook 02 alone beyond a day on 2 cores.
    "cpu": Scale(fig1_train_per_class=1000, fig1_val_per_class=200, fig1_epoch_cap=30, fig1_extra_epochs=2,
                 cifar_variant="mirror"),
    # All of CIFAR-10, up to 60 epochs.
    "paper": Scale(fig1_train_per_class=None, fig1_val_per_class=None, fig1_epoch_cap=60, fig1_extra_epochs=5,
                   cifar_variant="mirror"),
}


def scale_for(profile: str) -> Scale:
    try:
        return SCALES[profile]
    except KeyError:
        raise ValueError(f"no scale for profile {profile!r}; known: {', '.join(SCALES)}") from None
