"""Datasets (paper Section 2): where they come from, where they go, how they are decoded.

Every dataset is read from an archive or folder, checked, extracted once into the
writable data root, and decoded once into a uint8 array cache [N, H, W, 3]; later
loads memory-map that cache, so no JPEG is decoded twice.

where things live:
  data root   $REPLICATION_DATA (default: <repo>/data), writable: extracted folders,
              decoded caches (<root>/cache/<variant>/<split>-<size>px.npy), checksum stamps
  mirrors     $REPLICATION_MIRRORS, folders of read-only archives separated by ':'
              (e.g. ../shared/data); archives there are never written to
  ImageNet    $REPLICATION_IMAGENET or --path: a folder with train/<wnid>/ and val/<wnid>/
              (ILSVRC-2012, which you obtain from image-net.org; never extracted by us)

examples:
  python -m replication data list                          every dataset, its variants and state
  python -m replication data prepare cifar10-jpeg          extract + cache train and test
  python -m replication data prepare tiny-imagenet-200 --size 32
  python -m replication data prepare cifar10 --download    fetch the official CIFAR-10 (online)
  python -m replication data verify                        re-hash archives, recount images

Images are resized only when a size other than the native one is asked for, the
way Section 2 of the paper does it: shorter side to the size, then the central
square crop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import shutil
import sys
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from replication.paths import (atomic_file, atomic_write_text, data_root, mirror_dirs, partial_name,  # noqa: F401
                               remove_stale_partials, sample_dir)

CACHE_FORMAT = 1
RESIZE_RULE = "shorter side to size (PIL bilinear, antialiased), then central size x size crop"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")


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
    # The committed sample (data/sample/, replication.sample): read in place, only when asked
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
        notes="cut from the mirror archive by python -m replication.sample; data/sample/MANIFEST.json",
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


IMAGENETTE_WORDS = {  # fast.ai's Imagenette: 10 ImageNet classes (same words as torchvision)
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}

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


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``; raises UnknownDatasetError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {known} "
            "(see `python -m replication data list`)"
        ) from None


def _own_split(spec: DatasetSpec, split: str) -> str:
    try:
        return spec.splits[split]
    except KeyError:
        raise DataError(
            f"dataset {spec.name!r} has no split {split!r}; use 'train' or 'test' ('val' is the same "
            f"held-out split, {spec.held_out()!r} for this dataset)"
        ) from None


# --------------------------------------------------------------------------- the result type


@dataclass(eq=False)
class ImageSplit:
    """One split decoded to uint8 pixels.

    images: [N, H, W, 3] uint8 (a read-only memory map when it comes from the cache),
    labels: [N] int64 indices into ``classes`` (ids, e.g. WordNet ids) and
    ``class_names`` (words). ``variant`` names the release it was decoded from.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    class_names: list[str]
    name: str
    split: str
    variant: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])


def subset_per_class(split: ImageSplit, per_class: int, seed: int) -> ImageSplit:
    """``per_class`` images of every class, drawn without replacement (deterministic in seed).

    The chosen indices keep the split's order, so a subset of a subset is stable.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(split.num_classes):
        members = np.flatnonzero(split.labels == label)
        if len(members) < per_class:
            raise ValueError(
                f"class {label} ({split.class_names[label]!r}) of {split.name}/{split.split} has "
                f"{len(members)} images, fewer than per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    index = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return replace(
        split, images=np.ascontiguousarray(split.images[index]), labels=split.labels[index].copy()
    )


# --------------------------------------------------------------------------- layout parsers


@dataclass
class Listing:
    """What a layout parser finds in an extracted folder: files (or pixels) and labels."""

    labels: np.ndarray
    classes: list[str]
    class_names: list[str]
    files: list[Path] | None = None  # decoded with PIL
    pixels: np.ndarray | None = None  # already uint8 [N, H, W, 3] (CIFAR python batches)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _image_files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    return [folder / name for name in sorted(names, key=_natural_key)]


def _subfolders(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _first_words(text: str) -> str:
    return text.split(",")[0].strip()


def _read_synset_words(folder: Path, wanted: Iterable[str]) -> dict[str, str]:
    """wnid -> first word, from words.txt / LOC_synset_mapping.txt / synset_words.txt."""
    wanted = set(wanted)
    for name in ("words.txt", "LOC_synset_mapping.txt", "synset_words.txt"):
        path = folder / name
        if path.is_file():
            found = {}
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.strip().split(None, 1)
                if len(parts) == 2 and parts[0] in wanted:
                    found[parts[0]] = _first_words(parts[1])
            return found
    meta = folder / "meta.bin"  # written by torchvision.datasets.ImageNet
    if meta.is_file():
        import torch

        wnid_to_classes = torch.load(meta, weights_only=False)[0]
        return {w: wnid_to_classes[w][0] for w in wanted if w in wnid_to_classes}
    return {}


def _class_names(layout_folder: Path, classes: list[str]) -> list[str]:
    if all(c in IMAGENETTE_WORDS for c in classes):
        return [IMAGENETTE_WORDS[c] for c in classes]
    if all(re.fullmatch(r"n\d{8}", c) for c in classes):
        words = _read_synset_words(layout_folder, classes)
        return [words.get(c, c) for c in classes]
    return list(classes)  # folder names are already words (CIFAR-10)


def parse_image_tree(folder: Path, split: str) -> Listing:
    """``<folder>/<split>/<class>/<image>``: classes sorted by name (ImageFolder order)."""
    split_dir = folder / split
    classes = _subfolders(split_dir)
    if not classes:
        raise DataError(
            f"{split_dir} has no class folders; expected {split_dir}/<class>/<image> "
            "(for ImageNet's flat val/ folder, sort it into wnid folders first, e.g. with "
            "torchvision.datasets.ImageNet or the valprep.sh script)"
        )
    files, labels = [], []
    for label, cls in enumerate(classes):
        found = _image_files(split_dir / cls)
        files += found
        labels += [label] * len(found)
    return Listing(np.asarray(labels, dtype=np.int64), classes, _class_names(folder, classes), files=files)


def parse_tiny_imagenet(folder: Path, split: str) -> Listing:
    """Tiny ImageNet: ``train/<wnid>/images/*.JPEG``; ``val/images`` + ``val/val_annotations.txt``.

    Classes are the wnids of wnids.txt in sorted order; names are the first words.txt entry.
    """
    classes = sorted((folder / "wnids.txt").read_text().split())
    index = {wnid: i for i, wnid in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    if split == "train":
        for wnid in classes:
            found = _image_files(folder / "train" / wnid / "images")
            files += found
            labels += [index[wnid]] * len(found)
    else:
        rows = []
        for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                rows.append((parts[0], parts[1]))
        for filename, wnid in sorted(rows, key=lambda row: _natural_key(row[0])):
            files.append(folder / "val" / "images" / filename)
            labels.append(index[wnid])
    return Listing(np.asarray(labels, dtype=np.int64), classes, _class_names(folder, classes), files=files)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def parse_cifar_batches(folder: Path, split: str) -> Listing:
    """Official ``cifar-10-batches-py``: pickled rows of 3072 bytes (R, G, B planes of 32x32)."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    batches = [_unpickle(folder / name) for name in names]
    data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
    pixels = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    label_names = [n.decode() if isinstance(n, bytes) else n for n in _unpickle(folder / "batches.meta")["label_names"]]
    return Listing(labels, list(label_names), list(label_names), pixels=np.ascontiguousarray(pixels))


LAYOUTS: dict[str, Callable[[Path, str], Listing]] = {
    "image_tree": parse_image_tree,
    "tiny_imagenet": parse_tiny_imagenet,
    "cifar_batches": parse_cifar_batches,
}

# files that must exist for an extracted folder to be trusted
_REQUIRED = {
    "cifar_batches": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
    "tiny_imagenet": ["wnids.txt", "train", "val/val_annotations.txt", "val/images"],
}


def _layout_problem(spec: DatasetSpec, variant: Variant, folder: Path) -> str | None:
    """Why ``folder`` does not hold this variant, or None when it looks right."""
    required = _REQUIRED.get(spec.layout) or ["train", spec.held_out()]
    missing = [name for name in required if not (folder / name).exists()]
    if spec.layout == "image_tree" and spec.env_var and missing == ["train"]:
        missing = []  # an ImageNet folder with only val/ is still useful
    if missing:
        return f"{folder} lacks {', '.join(missing)}"
    if variant.native_size and spec.layout != "cifar_batches":
        sample = _first_image(folder, spec)
        if sample is not None:
            from PIL import Image

            with Image.open(sample) as image:
                if image.size != (variant.native_size, variant.native_size):
                    return (
                        f"{folder} holds {image.size[0]}x{image.size[1]} images ({sample.name}), "
                        f"not the {variant.native_size} px of variant {variant.label!r}"
                    )
    return None


def _first_image(folder: Path, spec: DatasetSpec) -> Path | None:
    held_out = folder / spec.held_out()
    candidates = [held_out / "images"] if spec.layout == "tiny_imagenet" else [
        held_out / c for c in _subfolders(held_out)[:1]
    ]
    for candidate in candidates:
        with os.scandir(candidate) as entries:
            for entry in entries:
                if entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    return Path(entry.path)
    return None


# --------------------------------------------------------------------------- checksums


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(root: Path, archive: Path) -> Path:
    key = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:12]
    return root / ".verified" / f"{archive.name}.{key}.json"


def _expected_sum(archive: Archive) -> tuple[str, str] | None:
    if archive.sha256:
        return "sha256", archive.sha256
    if archive.md5:
        return "md5", archive.md5
    return None


def _how_to_get(spec: DatasetSpec, variant: Variant) -> str:
    archive = variant.archive
    if spec.env_var:
        return (
            f"obtain ILSVRC-2012 from https://image-net.org (registration), lay it out as "
            f"<dir>/train/<wnid>/*.JPEG and <dir>/val/<wnid>/*.JPEG, then set {spec.env_var}=<dir> "
            f"or pass --path <dir>"
        )
    if archive and archive.url:
        return (
            f"run `python -m replication data prepare {spec.name} --download` (fetches {archive.url}), "
            f"or put {archive.filename} into the data root or a mirror folder"
        )
    if archive:
        return (
            f"copy {archive.filename} from the project's mirror folder (e.g. ../shared/data) into the "
            f"data root, or set REPLICATION_MIRRORS to that folder (e.g. "
            f"REPLICATION_MIRRORS=../shared/data)"
        )
    return "see the project README"


def verify_archive(path: Path, archive: Archive, root: Path | None = None, force: bool = False) -> str:
    """Check ``path`` against the registered size and sha256 (or md5); returns the digest.

    A passing check is remembered in <root>/.verified/ keyed by path, size and mtime,
    so an unchanged archive is hashed once. Raises ChecksumError naming the file.
    """
    expected = _expected_sum(archive)
    stat = path.stat()
    how = ("delete it and copy/download it again" + (f" from {archive.url}" if archive.url else ""))
    if archive.nbytes is not None and stat.st_size != archive.nbytes:
        raise ChecksumError(
            f"{path} is {stat.st_size:,} bytes, expected {archive.nbytes:,} for {archive.filename}: "
            f"the file is incomplete or not the registered archive; {how}"
        )
    if expected is None:
        return ""
    algorithm, want = expected
    stamp = _stamp_path(root, path) if root is not None else None
    record = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "algorithm": algorithm, "digest": want}
    if stamp is not None and not force and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == record:
                return want
        except (OSError, ValueError):
            pass
    got = _file_digest(path, algorithm)
    if got != want:
        raise ChecksumError(
            f"{path}: {algorithm} is {got}, expected {want} ({archive.filename}). "
            f"The file is corrupt or a different release; {how}"
        )
    if stamp is not None:
        try:
            atomic_write_text(stamp, json.dumps(record, indent=1))
        except OSError:
            pass  # a read-only root only costs a re-hash next time
    return got


# --------------------------------------------------------------------------- extraction


_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error)


def _extract_members(archive: Path, dest: Path, progress: bool) -> None:
    from tqdm import tqdm

    desc = f"extract {archive.name}"
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in tqdm(zf.infolist(), desc=desc, unit="file", disable=not progress):
                zf.extract(info, dest)
        return
    with tarfile.open(archive, "r:*") as tf:
        members = tqdm(tf, desc=desc, unit="file", disable=not progress)
        tf.extractall(dest, members=members, filter="data")


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = partial_name(folder / "write-probe")
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise DataError(
            f"cannot write to {folder} ({error.strerror}); point REPLICATION_DATA (or --root) at a "
            "writable folder: archives are extracted and caches written there, never next to a mirror"
        ) from error


def extract_archive(archive: Path, target: Path, progress: bool = True) -> Path:
    """Extract ``archive`` so that its contents end up as the folder ``target``, atomically.

    The archive is unpacked into a hidden temporary folder next to ``target`` and
    renamed into place only after every member was read, so a failure (truncated
    file, full disk, Ctrl-C) leaves no folder that a later call would trust.
    An archive with one top-level folder has that folder renamed to ``target``.
    """
    _ensure_writable(target.parent)
    remove_stale_partials(target.parent, target.name)
    tmp = partial_name(target)
    tmp.mkdir()
    try:
        try:
            _extract_members(archive, tmp, progress)
        except _ARCHIVE_ERRORS as error:
            raise CorruptArchiveError(
                f"cannot extract {archive}: {type(error).__name__}: {error}. The archive is truncated "
                f"or damaged (nothing was extracted into {target.parent}); delete it and fetch it again"
            ) from error
        top = [p for p in tmp.iterdir() if not p.name.startswith("._")]
        source = top[0] if len(top) == 1 and top[0].is_dir() else tmp
        try:
            os.rename(source, target)
        except OSError:
            if not target.is_dir():  # another process winning the race is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- locating data


@dataclass
class Located:
    """Where a variant was found (or, when nothing is found, everywhere we looked)."""

    folder: Path | None = None
    archive: Path | None = None
    looked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _user_folders(spec: DatasetSpec, path: Path | None) -> list[Path]:
    folders = []
    if path is not None:
        folders.append(Path(path).expanduser())
    if spec.env_var and os.environ.get(spec.env_var):
        folders.append(Path(os.environ[spec.env_var]).expanduser())
    return folders


def locate(spec: DatasetSpec, variant: Variant, root: Path, path: Path | None = None) -> Located:
    """Find an extracted folder (trusted when its layout is right) or an archive; no hashing."""
    found = Located()
    if variant.bundled:
        folders = [sample_dir() / variant.folder]
    else:
        folders = _user_folders(spec, path) + [root / variant.folder] + [m / variant.folder for m in mirror_dirs()]
    for folder in folders:
        found.looked.append(f"folder {folder}")
        if folder.is_dir():
            problem = _layout_problem(spec, variant, folder)
            if problem is None:
                found.folder = folder
                return found
            found.problems.append(problem)
    if variant.archive is not None:
        for place in [root] + mirror_dirs():
            candidate = place / variant.archive.filename
            found.looked.append(f"archive {candidate}")
            if candidate.is_file():
                found.archive = candidate
                return found
    return found


def _not_found(spec: DatasetSpec, tried: list[tuple[Variant, Located]]) -> DatasetNotFoundError:
    lines = [f"dataset {spec.name!r} ({spec.description}) was not found. Looked at:"]
    for variant, located in tried:
        lines += [f"  [{variant.label}] {place}" for place in located.looked]
        lines += [f"  [{variant.label}] unusable: {problem}" for problem in located.problems]
    lines.append("To get it:")
    lines += [f"  [{variant.label}] {_how_to_get(spec, variant)}" for variant, _ in tried]
    sample = next((v for v in spec.variants if v.bundled), None)
    if sample is not None and all(v is not sample for v, _ in tried):
        lines.append(f"  (a few images a class ship with the project, enough to try the code but not for "
                     f"results: variant {SAMPLE_LABEL!r}, {sample.description}; e.g. data_variant: "
                     f"{SAMPLE_LABEL} in a training config, as the smoke profile does)")
    if not mirror_dirs():
        lines.append("  (REPLICATION_MIRRORS is not set)")
    hint = Path(__file__).resolve().parents[2] / "shared" / "data"
    for variant, _ in tried:
        if variant.archive and (hint / variant.archive.filename).is_file():
            lines.append(f"  hint: {hint / variant.archive.filename} exists; set REPLICATION_MIRRORS={hint}")
            break
    return DatasetNotFoundError("\n".join(lines))


def _download(spec: DatasetSpec, variant: Variant, root: Path) -> Path:
    """Fetch the variant's public archive into the root (checked before it is renamed)."""
    archive = variant.archive
    if archive is None or archive.url is None:
        raise DatasetNotFoundError(f"{spec.name} [{variant.label}] has no public download; {_how_to_get(spec, variant)}")
    from torchvision.datasets.utils import download_url

    final = root / archive.filename
    with atomic_file(final) as tmp:
        download_url(archive.url, str(root), filename=tmp.name)
        verify_archive(tmp, archive)
    return final


def _variant_order(spec: DatasetSpec, root: Path, size: int | None, variant: str | None,
                   path: Path | None, split: str | None = None) -> list[tuple[Variant, Located, bool]]:
    """Variants to try, best first: ready ones (cached for ``split``, extracted or archived),
    then those whose native size is ``size``, then registry order (official releases first)."""
    # the committed sample only when asked for: never a silent stand-in for a missing release
    candidates = [spec.variant(variant)] if variant else [v for v in spec.variants if not v.bundled]
    splits = [split] if split else sorted(set(spec.splits.values()))
    ranked = []
    for order, v in enumerate(candidates):
        located = locate(spec, v, root, path)
        cached = any(_cache_complete(root, v, s, size or v.size) for s in splits)
        ready = cached or located.folder is not None or located.archive is not None
        matches = size is None or v.native_size == size
        ranked.append(((not ready, not matches, order), v, located, ready))
    ranked.sort(key=lambda item: item[0])
    return [(v, located, ready) for _, v, located, ready in ranked]


def _prepare_variant(spec: DatasetSpec, variant: Variant, located: Located, root: Path,
                     progress: bool) -> Path:
    if located.folder is not None:
        return located.folder
    assert located.archive is not None
    verify_archive(located.archive, variant.archive, root)
    target = root / variant.folder
    if target.is_dir():
        problem = _layout_problem(spec, variant, target)
        if problem is None:  # extracted by a concurrent call meanwhile
            return target
        raise DataError(f"{problem}; move or delete {target} so that {located.archive} can be extracted there")
    folder = extract_archive(located.archive, target, progress=progress)
    problem = _layout_problem(spec, variant, folder)
    if problem is not None:
        shutil.rmtree(folder, ignore_errors=True)
        raise CorruptArchiveError(
            f"{located.archive} extracted, but {problem}; the archive is not the expected "
            f"{variant.archive.filename}. Delete it and fetch it again"
        )
    return folder


def prepare(name: str, root: str | Path | None = None, variant: str | None = None,
            size: int | None = None, download: bool = False, progress: bool = True,
            path: str | Path | None = None) -> Path:
    """Find the dataset (data root, then mirrors), check its archive and extract it into the root.

    Returns the extracted dataset folder. ``variant`` picks a release (see
    ``data list``); ``size`` prefers the release whose native size it is;
    ``download`` fetches a public archive when nothing is found; ``path`` is a
    folder you supply (ImageNet). Raises DatasetNotFoundError, ChecksumError,
    CorruptArchiveError.
    """
    spec = get_spec(name)
    root = _root(root)
    return _prepare_choice(spec, root, variant, size, download, progress, path)[1]


def _prepare_choice(spec, root, variant, size, download, progress, path) -> tuple[Variant, Path]:
    order = _variant_order(spec, root, size, variant, Path(path) if path else None)
    for v, located, _ in order:
        if located.folder is not None or located.archive is not None:
            return v, _prepare_variant(spec, v, located, root, progress)
    if download:
        for v, located, _ in order:
            if v.archive is not None and v.archive.url:
                located.archive = _download(spec, v, root)
                return v, _prepare_variant(spec, v, located, root, progress)
    raise _not_found(spec, [(v, located) for v, located, _ in order])


def list_split(name: str, split: str, root: str | Path | None = None, variant: str | None = None,
               size: int | None = None, path: str | Path | None = None) -> Listing:
    """The layout parser's view of one split: files (or pixels), labels and classes, in cache order."""
    spec = get_spec(name)
    own = _own_split(spec, split)
    _, folder = _prepare_choice(spec, _root(root), variant, size, False, False, path)
    return LAYOUTS[spec.layout](folder, own)


# --------------------------------------------------------------------------- decoding


def cache_dir(root: str | Path | None = None) -> Path:
    """Folder of the decoded caches: <data root>/cache."""
    return _root(root) / "cache"


def _cache_files(root: Path, variant: Variant, split: str, size: int) -> dict[str, Path]:
    stem = cache_dir(root) / variant.id / f"{split}-{size}px"
    return {
        "images": stem.with_name(stem.name + ".npy"),
        "labels": stem.with_name(stem.name + ".labels.npy"),
        "meta": stem.with_name(stem.name + ".json"),
    }


def _read_meta(files: dict[str, Path]) -> dict | None:
    try:
        meta = json.loads(files["meta"].read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT or not files["images"].is_file() or not files["labels"].is_file():
        return None
    return meta


def _cache_complete(root: Path, variant: Variant, split: str, size: int) -> bool:
    return _read_meta(_cache_files(root, variant, split, size)) is not None


def decode_image(path: Path | str, size: int) -> np.ndarray:
    """PIL decode to RGB uint8 [size, size, 3]; shorter side to ``size`` then centre crop."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        return _fit(image, size)


def _fit(image, size: int) -> np.ndarray:
    from PIL import Image

    width, height = image.size
    if (width, height) != (size, size):
        scale = size / min(width, height)
        new = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(new, Image.Resampling.BILINEAR)
        left, top = (new[0] - size) // 2, (new[1] - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def _decode_chunk(job: tuple[list[str], int]) -> np.ndarray:
    paths, size = job
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = decode_image(path, size)
    return out


def _pixel_chunk(job: tuple[np.ndarray, int]) -> np.ndarray:
    from PIL import Image

    pixels, size = job
    if pixels.shape[1] == size and pixels.shape[2] == size:
        return pixels
    return np.stack([_fit(Image.fromarray(p), size) for p in pixels])


def _decode_into(out: np.ndarray, listing: Listing, size: int, workers: int, progress: bool,
                 desc: str) -> None:
    """Fill ``out`` [N, size, size, 3] from the listing, in chunks, in a process pool when large."""
    from tqdm import tqdm

    n = len(listing)
    chunk = 512
    if listing.pixels is not None:
        jobs = [(listing.pixels[i:i + chunk], size) for i in range(0, n, chunk)]
        work = _pixel_chunk
    else:
        names = [str(p) for p in listing.files]
        jobs = [(names[i:i + chunk], size) for i in range(0, n, chunk)]
        work = _decode_chunk
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, smoothing=0.1)
    try:
        if workers > 1 and len(jobs) > 4 and listing.pixels is None:
            import multiprocessing as mp

            method = "fork" if "fork" in mp.get_all_start_methods() else None
            with mp.get_context(method).Pool(workers) as pool:
                for i, block in enumerate(pool.imap(work, jobs)):
                    out[i * chunk:i * chunk + len(block)] = block
                    bar.update(len(block))
        else:
            for i, job in enumerate(jobs):
                block = work(job)
                out[i * chunk:i * chunk + len(block)] = block
                bar.update(len(block))
    finally:
        bar.close()


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _check_space(folder: Path, nbytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise DataError(
            f"the cache needs {nbytes / 2**30:.1f} GiB but {folder} has {free / 2**30:.1f} GiB free; "
            "pick a smaller --size or point REPLICATION_DATA at a bigger disk"
        )


def _build_cache(spec: DatasetSpec, variant: Variant, folder: Path, own: str, size: int,
                 files: dict[str, Path], progress: bool, workers: int) -> None:
    listing = LAYOUTS[spec.layout](folder, own)
    if len(listing) == 0:
        raise DataError(f"{folder} has no images for split {own!r} of {spec.name}")
    target_dir = files["images"].parent
    _ensure_writable(target_dir)
    for final in files.values():
        remove_stale_partials(target_dir, final.name)
    n = len(listing)
    _check_space(target_dir, n * size * size * 3)
    tmp = {key: partial_name(final) for key, final in files.items()}
    try:
        images = np.lib.format.open_memmap(tmp["images"], mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        started = time.perf_counter()
        _decode_into(images, listing, size, workers, progress, f"decode {variant.id} {own} {size}px")
        images.flush()
        del images
        with open(tmp["labels"], "wb") as handle:
            np.save(handle, listing.labels.astype(np.int64))
        meta = {
            "format": CACHE_FORMAT, "dataset": spec.name, "variant": variant.id, "split": own,
            "size": size, "count": n, "classes": listing.classes, "class_names": listing.class_names,
            "source": str(folder), "resize": None if size == variant.native_size else RESIZE_RULE,
            "decoder": "PIL Image.open(...).convert('RGB')",
            "decode_seconds": round(time.perf_counter() - started, 2),
        }
        tmp["meta"].write_text(json.dumps(meta, indent=1))
        os.replace(tmp["images"], files["images"])
        os.replace(tmp["labels"], files["labels"])
        os.replace(tmp["meta"], files["meta"])  # last: its presence marks a complete cache
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)


def _load_cache(spec: DatasetSpec, variant: Variant, own: str, files: dict[str, Path]) -> ImageSplit | None:
    meta = _read_meta(files)
    if meta is None:
        return None
    images = np.load(files["images"], mmap_mode="r")
    labels = np.load(files["labels"])
    if images.shape[0] != meta["count"] or labels.shape[0] != meta["count"]:
        return None
    return ImageSplit(images, labels, list(meta["classes"]), list(meta["class_names"]),
                      spec.name, own, variant.id)


def load_split(name: str, split: str, root: str | Path | None = None, size: int | None = None,
               progress: bool = True, variant: str | None = None, workers: int | None = None,
               path: str | Path | None = None) -> ImageSplit:
    """One split as uint8 [N, size, size, 3], decoded once and memory-mapped afterwards.

    ``split``: "train", or "test"/"val" for the held-out split. ``size``: square
    side (default: the release's native size; Section 2's rescale + centre crop
    otherwise). The first call extracts the archive (see ``prepare``) and writes
    <root>/cache/<variant>/<split>-<size>px.{npy,labels.npy,json} atomically.
    """
    spec = get_spec(name)
    own = _own_split(spec, split)
    root = _root(root)
    order = _variant_order(spec, root, size, variant, Path(path) if path else None, own)
    chosen = next(((v, loc) for v, loc, ready in order if ready), None)
    if chosen is None:
        raise _not_found(spec, [(v, loc) for v, loc, _ in order])
    v, located = chosen
    want = size or v.size
    files = _cache_files(root, v, own, want)
    cached = _load_cache(spec, v, own, files)
    if cached is not None:
        return cached
    folder = _prepare_variant(spec, v, located, root, progress)
    _build_cache(spec, v, folder, own, want, files, progress, workers or _default_workers())
    loaded = _load_cache(spec, v, own, files)
    assert loaded is not None
    return loaded


class FileDataset:
    """A map-style dataset for torch's DataLoader: (PIL RGB image -> transform, label).

    For data too large to cache as arrays (ImageNet at 256 px), stream it with
    DataLoader workers instead: ``DataLoader(image_dataset("imagenet", "train", tf), ...)``.
    """

    def __init__(self, listing: Listing, transform=None):
        self.listing = listing
        self.transform = transform
        self.classes = listing.classes
        self.class_names = listing.class_names

    def __len__(self) -> int:
        return len(self.listing)

    def __getitem__(self, index: int):
        from PIL import Image

        if self.listing.pixels is not None:
            image = Image.fromarray(self.listing.pixels[index])
        else:
            with Image.open(self.listing.files[index]) as raw:
                image = raw.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.listing.labels[index])


def image_dataset(name: str, split: str, transform=None, root: str | Path | None = None,
                  variant: str | None = None, path: str | Path | None = None) -> FileDataset:
    """Stream one split through PIL (labels and class order identical to ``load_split``)."""
    return FileDataset(list_split(name, split, root=root, variant=variant, path=path), transform)


# --------------------------------------------------------------------------- status and CLI


def _cached_sizes(root: Path, variant: Variant) -> list[str]:
    folder = cache_dir(root) / variant.id
    if not folder.is_dir():
        return []
    found: dict[int, list[str]] = {}
    for meta_file in sorted(folder.glob("*px.json")):
        match = re.fullmatch(r"(\w+)-(\d+)px\.json", meta_file.name)
        if match and _cache_complete(root, variant, match.group(1), int(match.group(2))):
            found.setdefault(int(match.group(2)), []).append(match.group(1))
    return [f"{s}px ({'+'.join(splits)})" for s, splits in sorted(found.items())]


def _stamp_ok(root: Path, archive_path: Path, archive: Archive) -> bool:
    expected = _expected_sum(archive)
    stamp = _stamp_path(root, archive_path)
    if expected is None or not stamp.is_file():
        return False
    try:
        record = json.loads(stamp.read_text())
        stat = archive_path.stat()
    except (OSError, ValueError):
        return False
    return (record.get("size"), record.get("mtime_ns"), record.get("digest")) == (
        stat.st_size, stat.st_mtime_ns, expected[1])


def variant_state(spec: DatasetSpec, variant: Variant, root: Path, path: Path | None = None) -> str:
    """One line: cached sizes, extracted folder, archive (and whether verified), or how to get it."""
    located = locate(spec, variant, root, path)
    parts = []
    cached = _cached_sizes(root, variant)
    if cached:
        parts.append("cached " + ", ".join(cached))
    if located.folder is not None:
        parts.append(f"extracted at {located.folder}")
    elif located.archive is not None:
        verified = "checksum verified" if _stamp_ok(root, located.archive, variant.archive) else "not yet verified"
        parts.append(f"archive at {located.archive} ({verified})")
    if not parts:
        return "missing - " + _how_to_get(spec, variant)
    return "; ".join(parts)


def _print_list(root: Path) -> int:
    mirrors = mirror_dirs()
    print(f"data root: {root}  (REPLICATION_DATA)")
    print(f"mirrors:   {os.pathsep.join(map(str, mirrors)) or '(none; set REPLICATION_MIRRORS)'}")
    print()
    header = f"{'NAME':<18} {'TRAIN/TEST':<17} {'CLASSES':>7}  DESCRIPTION"
    print(header)
    print("-" * 100)
    for spec in DATASETS.values():
        counts = "/".join(f"{spec.counts[s]:,}" for s in ("train", spec.held_out()))
        print(f"{spec.name:<18} {counts:<17} {spec.num_classes:>7}  {spec.description}")
        for variant in spec.variants:
            print(f"  variant {variant.label}: {variant.description}")
            print(f"    state: {variant_state(spec, variant, root)}")
    print()
    print("get one ready: python -m replication data prepare NAME [--size S] [--variant V]")
    return 0


def _prepare_cli(args: argparse.Namespace, root: Path) -> int:
    for name in args.names:
        spec = get_spec(name)
        v, folder = _prepare_choice(spec, root, args.variant, args.size, args.download, not args.quiet, args.path)
        print(f"{name} [{v.label}]: extracted at {folder}")
        if spec.env_var and args.size is None:
            print(f"  no cache built (ImageNet is streamed; pass --size S to decode an array cache)")
            continue
        for split in ("train", "test"):
            loaded = load_split(name, split, root=root, size=args.size, progress=not args.quiet,
                                variant=v.label, workers=args.workers, path=args.path)
            files = _cache_files(root, v, loaded.split, loaded.size)
            print(f"  {loaded.split:<5} {len(loaded):>9,} images {loaded.size}px -> {files['images']}")
    return 0


def _verify_variant(spec: DatasetSpec, variant: Variant, root: Path, path: Path | None) -> list[tuple[bool, str]]:
    """(ok, line) for every archive copy, extracted folder and cache of one variant."""
    results = []
    if variant.archive is not None:
        for place in [root] + mirror_dirs():
            archive = place / variant.archive.filename
            if archive.is_file():
                try:
                    verify_archive(archive, variant.archive, root, force=True)
                    results.append((True, f"archive {archive} checksum OK"))
                except DataError as error:
                    results.append((False, f"archive FAILED: {error}"))
    located = locate(spec, variant, root, path)
    results += [(False, f"unusable folder: {problem}") for problem in located.problems]
    if located.folder is not None:
        for own in (spec.splits["train"], spec.held_out()):
            try:
                n, want = len(LAYOUTS[spec.layout](located.folder, own)), (variant.counts or spec.counts)[own]
            except (DataError, OSError) as error:
                results.append((False, f"{own} in {located.folder} FAILED: {error}"))
                continue
            status = "OK" if n == want else f"MISMATCH (expected {want:,})"
            results.append((n == want, f"{own} {n:,} images in {located.folder} {status}"))
    for meta_file in sorted((cache_dir(root) / variant.id).glob("*px.json")):
        match = re.fullmatch(r"(\w+)-(\d+)px\.json", meta_file.name)
        if not match:
            continue
        loaded = _load_cache(spec, variant, match.group(1),
                             _cache_files(root, variant, match.group(1), int(match.group(2))))
        ok = loaded is not None
        results.append((ok, f"cache {meta_file.with_suffix('.npy')} " + (f"{len(loaded):,} images OK" if ok else
                        "INCOMPLETE (delete it; the next load rebuilds it)")))
    return results


def _verify_cli(args: argparse.Namespace, root: Path) -> int:
    failures = 0
    for name in args.names or list(DATASETS):
        spec = get_spec(name)
        for variant in spec.variants:
            results = _verify_variant(spec, variant, root, args.path)
            for ok, line in results or [(True, "not present")]:
                failures += not ok
                print(f"{spec.name} [{variant.label}]: {line}")
    return 1 if failures else 0


def cli_add_arguments(parser: argparse.ArgumentParser) -> None:
    """`python -m replication data {list,prepare,verify}`."""
    root_help = "data root (default: $REPLICATION_DATA or <repo>/data)"
    parser.add_argument("--root", type=Path, default=None, help=root_help)
    common = argparse.ArgumentParser(add_help=False)  # --root also after the subcommand
    common.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=root_help)
    sub = parser.add_subparsers(dest="data_command", metavar="{list,prepare,verify}")
    sub.add_parser("list", parents=[common], help="every dataset and variant: image counts and where it is "
                                "(cached, extracted, archive found) or how to get it")
    prep = sub.add_parser(
        "prepare", parents=[common], help="find, check and extract a dataset, then decode its train and test caches",
        description="Find the archive (data root, then REPLICATION_MIRRORS), check its checksum, "
                    "extract it into the data root and decode train and test into "
                    "<root>/cache/<variant>/<split>-<size>px.npy.")
    prep.add_argument("names", nargs="+", metavar="NAME", help=f"dataset name: {', '.join(DATASETS)}")
    prep.add_argument("--size", type=int, default=None,
                      help="square side in pixels (default: native size; otherwise shorter side "
                           "rescaled to S, central crop, as in Section 2)")
    prep.add_argument("--variant", default=None,
                      help="release to use, e.g. 32px or 64px for tiny-imagenet-200 (default: the "
                           "one present, preferring native size == --size)")
    prep.add_argument("--download", action="store_true",
                      help="download the public archive when nothing is found (needs network)")
    prep.add_argument("--path", type=Path, default=None,
                      help="a dataset folder you supply (ImageNet; or set REPLICATION_IMAGENET)")
    prep.add_argument("--workers", type=int, default=None,
                      help=f"decoding processes (default: {_default_workers()})")
    prep.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ver = sub.add_parser("verify", parents=[common], help="re-hash archives and recount the images of extracted folders")
    ver.add_argument("names", nargs="*", metavar="NAME", help="datasets to check (default: all)")
    ver.add_argument("--path", type=Path, default=None, help="a dataset folder you supply (ImageNet)")


def cli_main(args: argparse.Namespace) -> int:
    root = _root(getattr(args, "root", None))
    command = getattr(args, "data_command", None) or "list"
    try:
        if command == "prepare":
            return _prepare_cli(args, root)
        if command == "verify":
            return _verify_cli(args, root)
        return _print_list(root)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
