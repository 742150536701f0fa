"""The dataset registry (paper Section 2): every dataset, its splits and its releases.

A ``DatasetSpec`` names a dataset's layout parser (``layouts.LAYOUTS``), its splits
and image counts, and the ``Variant`` releases it can be read from: the official
archive, a project mirror, another resolution, the committed sample. An ``Archive``
is one file with the sums that identify it. The errors every part of the package
raises live here too, so that each message can name the paths involved and the fix.

Besides the registered names, ``folder:PATH`` names a folder of your own images
(``folder_spec``): ``PATH/train/<class>/`` and ``PATH/val/<class>/`` (ImageFolder), or one
folder of class folders, split into train and val by a fixed seed (``layouts.VAL_FRACTION``,
``layouts.SPLIT_SEED``). Its counts and classes are whatever the folder holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replication.paths import data_root


# --------------------------------------------------------------------------- errors


class DataError(Exception):
    """Any problem with a dataset; the message names the paths involved and the fix."""


class UnknownDatasetError(DataError, KeyError):
    """A dataset name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(DataError):
    """No archive, folder or cache of a dataset was found."""


class ChecksumError(DataError):
    """An archive whose size or checksum differs from the registered one."""


class CorruptArchiveError(DataError):
    """An archive that cannot be read to its end (truncated tar/zip, bad CRC)."""


# --------------------------------------------------------------------------- settings


def _root(root: str | Path | None) -> Path:
    return Path(root).expanduser().absolute() if root is not None else data_root()


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Archive:
    """One downloadable/mirrored file and the sums that identify it."""

    filename: str
    sha256: str | None = None
    md5: str | None = None
    nbytes: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Variant:
    """One release of a dataset (official, a mirror, another resolution).

    ``id`` names the extracted folder's cache directory; ``folder`` is the name the
    extracted dataset gets in the data root (and is looked for in the mirrors).
    ``native_size`` is the square side of every image, or None when sizes vary
    (then ``default_size`` is used unless the caller asks for another).
    """

    id: str
    label: str
    description: str
    folder: str
    archive: Archive | None = None
    native_size: int | None = None
    default_size: int | None = None
    notes: str = ""
    # The committed sample (data/sample/, replication.data.sample): read in place, only when asked
    # for by name (variant "sample"), never picked in place of a missing full release.
    bundled: bool = False
    counts: dict[str, int] | None = None  # per own split, when it differs from the dataset's

    @property
    def size(self) -> int:
        return int(self.native_size or self.default_size or 256)


SAMPLE_LABEL = "sample"


def _sample_variant(dataset: str, folder: str, native_size: int, counts: dict[str, int],
                    per_class: str) -> Variant:
    return Variant(
        id=f"{dataset}-sample", label=SAMPLE_LABEL,
        description=f"the committed sample in data/sample/{folder} ({per_class}; for tests and the smoke profile)",
        folder=folder, native_size=native_size, bundled=True, counts=counts,
        notes="cut from the mirror archive by python -m replication.data.sample; data/sample/MANIFEST.json",
    )


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its layout parser, its splits and the releases it can be read from."""

    name: str
    description: str
    layout: str  # key of LAYOUTS
    splits: dict[str, str]  # requested split -> the dataset's own folder/split name
    counts: dict[str, int]  # own split name -> expected number of images
    num_classes: int
    variants: tuple[Variant, ...]
    citation: str = ""
    env_var: str | None = None  # a folder given by the user (ImageNet)
    folder: Path | None = None  # a folder of your own images (``folder:PATH``): counts are what it holds

    @property
    def supplied(self) -> bool:
        """A folder you supply (ImageNet, ``folder:PATH``): used in place, any subset of images,
        and named in a run's identity by a fingerprint of its contents."""
        return self.env_var is not None or self.folder is not None

    def held_out(self) -> str:
        return self.splits["test"]

    def variant(self, label_or_id: str) -> Variant:
        for variant in self.variants:
            if label_or_id in (variant.label, variant.id):
                return variant
        known = ", ".join(v.label for v in self.variants)
        raise UnknownDatasetError(
            f"dataset {self.name!r} has no variant {label_or_id!r}; its variants: {known}"
        )


_CIFAR_TRAIN_TEST = {"train": "train", "test": "test", "val": "test"}
_TRAIN_VAL = {"train": "train", "test": "val", "val": "val"}
_IMAGENETTE_COUNTS = {"train": 9469, "val": 3925}


def _imagenette_official(px: int, md5: str) -> Variant:
    return Variant(
        id=f"imagenette2-{px}",
        label="official",
        description=f"Imagenette2 by fast.ai, shorter side {px} px (aspect kept)",
        folder=f"imagenette2-{px}",
        archive=Archive(
            f"imagenette2-{px}.tgz", md5=md5,
            url=f"https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-{px}.tgz",
        ),
        default_size=px,
        notes="images are centre-cropped to a square after resizing the shorter side",
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="cifar10",
            description="CIFAR-10, official python batches, 32 px",
            layout="cifar_batches",
            splits=_CIFAR_TRAIN_TEST,
            counts={"train": 50000, "test": 10000},
            num_classes=10,
            citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
            variants=(
                Variant(
                    id="cifar10-official",
                    label="official",
                    description="cifar-10-python.tar.gz (torchvision's CIFAR10 download)",
                    folder="cifar-10-batches-py",
                    archive=Archive(
                        "cifar-10-python.tar.gz",
                        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                        md5="c58f30108f718f92721af3b95e74349a",
                        nbytes=170498071,
                        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    ),
                    native_size=32,
                ),
            ),
        ),
        DatasetSpec(
            name="cifar10-jpeg",
            description="CIFAR-10 re-encoded as JPEG (q75, 4:2:0), official labels/split, 32 px",
            layout="image_tree",
            splits=_CIFAR_TRAIN_TEST,
            counts={"train": 50000, "test": 10000},
            num_classes=10,
            citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
            variants=(
                Variant(
                    id="cifar10-jpeg",
                    label="mirror",
                    description="cifar10-jpeg.tgz (project mirror; JPEG error on every pixel)",
                    folder="cifar10-jpeg",
                    archive=Archive(
                        "cifar10-jpeg.tgz",
                        sha256="ff26949c34c4e67da3fa472a1f142e33365dea058f94f1fa369b14ef3d986968",
                        nbytes=19436983,
                    ),
                    native_size=32,
                ),
                _sample_variant("cifar10-jpeg", "cifar10-jpeg", 32, {"train": 300, "test": 200},
                                "30 train and 20 test images a class"),
            ),
        ),
        DatasetSpec(
            name="tiny-imagenet-200",
            description="Tiny ImageNet: 200 ImageNet classes, 500 train / 50 val a class",
            layout="tiny_imagenet",
            splits=_TRAIN_VAL,
            counts={"train": 100000, "val": 10000},
            num_classes=200,
            citation="Stanford CS231n Tiny ImageNet (a subset of ImageNet)",
            variants=(
                Variant(
                    id="tiny-imagenet-200-64px",
                    label="64px",
                    description="official tiny-imagenet-200.zip from CS231n, 64 px",
                    folder="tiny-imagenet-200",
                    archive=Archive(
                        "tiny-imagenet-200.zip",
                        md5="90528d7ca1a48142e341f4ef8d21d0de",
                        nbytes=248100043,
                        url="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                    ),
                    native_size=64,
                ),
                Variant(
                    id="tiny-imagenet-200-32px",
                    label="32px",
                    description="tiny-imagenet-200-32px.tgz (project mirror, downsampled to 32 px JPEG)",
                    folder="tiny-imagenet-200-32px",
                    archive=Archive(
                        "tiny-imagenet-200-32px.tgz",
                        sha256="b7788bc61a922c707a9a47942ba37067169663d7a98c19d86cdef92e66988a39",
                        nbytes=38140004,
                    ),
                    native_size=32,
                    notes="bounding boxes in the text files stay in 64 px coordinates",
                ),
                _sample_variant("tiny-imagenet-200", "tiny-imagenet-200-32px", 32, {"train": 2000, "val": 400},
                                "10 train and 2 val images a class of the 32 px mirror"),
            ),
        ),
        DatasetSpec(
            name="imagenette2-128",
            description="Imagenette2: 10 easy ImageNet classes, squashed to 128x128",
            layout="image_tree",
            splits=_TRAIN_VAL,
            counts=_IMAGENETTE_COUNTS,
            num_classes=10,
            citation="fast.ai Imagenette (a subset of ImageNet)",
            variants=(
                Variant(
                    id="imagenette2-128",
                    label="mirror",
                    description="imagenette2-128px.tgz (project mirror; aspect not kept)",
                    folder="imagenette2-128",
                    archive=Archive(
                        "imagenette2-128px.tgz",
                        sha256="41d5891ed6ccdb75211107649b9d063fe27502556e0497fdc8ce66157198e4c4",
                        nbytes=83770451,
                    ),
                    native_size=128,
                ),
                _sample_variant("imagenette2-128", "imagenette2-128", 128, {"train": 160, "val": 80},
                                "16 train and 8 val images a class"),
            ),
        ),
        DatasetSpec(
            name="imagenette2-160",
            description="Imagenette2 official fast.ai release, shorter side 160 px",
            layout="image_tree",
            splits=_TRAIN_VAL,
            counts=_IMAGENETTE_COUNTS,
            num_classes=10,
            citation="fast.ai Imagenette (a subset of ImageNet)",
            variants=(_imagenette_official(160, "e793b78cc4c9e9a4ccc0c1155377a412"),),
        ),
        DatasetSpec(
            name="imagenette2-320",
            description="Imagenette2 official fast.ai release, shorter side 320 px",
            layout="image_tree",
            splits=_TRAIN_VAL,
            counts=_IMAGENETTE_COUNTS,
            num_classes=10,
            citation="fast.ai Imagenette (a subset of ImageNet)",
            variants=(_imagenette_official(320, "3df6f0d01a2c9592104656642f5e78a3"),),
        ),
        DatasetSpec(
            name="imagenet",
            description="ILSVRC-2012 (the paper's data), from a folder you supply",
            layout="image_tree",
            splits=_TRAIN_VAL,
            counts={"train": 1281167, "val": 50000},
            num_classes=1000,
            citation="Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, 2015",
            env_var="REPLICATION_IMAGENET",
            variants=(
                Variant(
                    id="imagenet-ilsvrc2012",
                    label="ilsvrc2012",
                    description="train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ImageFolder layout)",
                    folder="imagenet",
                    default_size=256,
                    notes="Section 2: shorter side rescaled to 256, central 256x256 crop",
                ),
            ),
        ),
    ]
}


FOLDER_PREFIX = "folder:"
_FOLDER_LAYOUT_HELP = ("expected PATH/train/<class>/*.jpg and PATH/val/<class>/*.jpg (ImageFolder), or "
                       "PATH/<class>/*.jpg (one folder of class folders, split into train and val by a fixed seed)")


def folder_path(name: str) -> Path:
    """The folder a ``folder:PATH`` name points at, absolute, with ``~`` expanded and links resolved."""
    text = name[len(FOLDER_PREFIX):].strip()
    if not text:
        raise UnknownDatasetError(f"{name!r} names no folder; write folder:PATH, e.g. folder:~/my-images "
                                  f"({_FOLDER_LAYOUT_HELP})")
    return Path(text).expanduser().resolve()


def canonical_name(name: str) -> str:
    """The name a run records: ``folder:PATH`` with PATH absolute; a registered name as it is."""
    return f"{FOLDER_PREFIX}{folder_path(name)}" if name.startswith(FOLDER_PREFIX) else name


def folder_spec(name: str) -> DatasetSpec:
    """The spec of ``folder:PATH``: ImageFolder ``train/`` + ``val/`` (or ``test/``) of class folders
    (layout ``user_tree``), or one folder of class folders split by a seed (layout ``user_split``).

    Images of any size are read (shorter side to the size asked for, then the central square,
    as Section 2 does; default 256 px); their counts and classes are what the folder holds.
    """
    folder = folder_path(name)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DatasetNotFoundError(f"{folder} {what}; give the folder of your images as folder:PATH "
                                   f"({_FOLDER_LAYOUT_HELP})")
    held_out = next((s for s in ("val", "test") if (folder / s).is_dir()), None)
    if (folder / "train").is_dir():
        if held_out is None:
            raise DatasetNotFoundError(
                f"{folder} has train/ but no val/ (or test/) folder; add val/<class>/ folders of held-out "
                f"images, or move the class folders of train/ up into {folder} to have them split by a seed")
        layout, splits, how = "user_tree", {"train": "train", "test": held_out, "val": held_out}, \
            f"train/<class>/ and {held_out}/<class>/ (ImageFolder)"
    else:
        layout, splits, how = "user_split", dict(_TRAIN_VAL), "one folder of class folders, split by a seed"
    return DatasetSpec(
        name=f"{FOLDER_PREFIX}{folder}", description=f"your images in {folder}: {how}", layout=layout,
        splits=splits, counts={}, num_classes=0, folder=folder,
        variants=(Variant(id="folder", label="folder", description=how, folder=str(folder),
                          default_size=DATASETS["imagenet"].variants[0].default_size,  # Section 2's 256 px
                          notes="Section 2: shorter side rescaled to the size, central square crop"),),
    )


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name`` (or ``folder:PATH``, ``folder_spec``); raises
    UnknownDatasetError listing the known names."""
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        return folder_spec(name)
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        hint = (f"; for a folder of your own images write folder:{name}" if isinstance(name, str)
                and ("/" in name or Path(name).expanduser().is_dir()) else
                "; for a folder of your own images write folder:PATH")
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {known} "
            f"(see `python -m replication data list`){hint}"
        ) from None


def _own_split(spec: DatasetSpec, split: str) -> str:
    try:
        return spec.splits[split]
    except KeyError:
        raise DataError(
            f"dataset {spec.name!r} has no split {split!r}; use 'train' or 'test' ('val' is the same "
            f"held-out split, {spec.held_out()!r} for this dataset)"
        ) from None

