"""Layout parsers (paper Section 2): what an extracted release holds, in a fixed order.

Each parser turns one split of an extracted folder into a ``Listing`` (image files,
or pixels for the CIFAR python batches) with labels and classes; the class order
is the order of the labels in every cache. Class names are words, not WordNet ids
(words.txt and its relatives). ``_layout_problem`` decides whether a folder is
trusted as a given release (required files present, images of the release's size).

Your own images (``folder:PATH``) have two layouts: ``user_tree``, ImageFolder's
``train/<class>/`` and ``val/<class>/``; and ``user_split``, one folder of class folders
of which each class's images are split by a fixed seed (``SPLIT_SEED``), ``VAL_FRACTION``
of them to val. Both refuse a class folder without images, naming it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from replication.data.registry import ChecksumError, DataError, DatasetSpec, Variant

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")

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


SYNSET_FILES = ("words.txt", "LOC_synset_mapping.txt", "synset_words.txt")


def synset_file(folder: Path) -> Path | None:
    """The first of ``SYNSET_FILES`` in ``folder`` (``<id><tab or space><words>`` lines), or None."""
    return next((folder / name for name in SYNSET_FILES if (folder / name).is_file()), None)


def _read_synset_words(folder: Path, wanted: Iterable[str]) -> dict[str, str]:
    """wnid -> first word, from words.txt / LOC_synset_mapping.txt / synset_words.txt."""
    wanted = set(wanted)
    for name in SYNSET_FILES:
        path = folder / name
        if path.is_file():
            found = {}
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.strip().split(None, 1)
                if len(parts) == 2 and parts[0] in wanted:
                    found[parts[0]] = _first_words(parts[1])
            return found
    meta = folder / "meta.bin"  # written by torchvision.datasets.ImageNet: ({wnid: (words, ...)}, [val wnids])
    if meta.is_file():
        import torch  # lazily: seconds of start-up, and only torchvision's ImageNet folders need it

        try:  # strings, tuples, dicts and lists only: nothing in the file can run code
            wnid_to_classes = torch.load(meta, weights_only=True)[0]
        except Exception as error:
            raise DataError(f"{meta} is not torchvision's ImageNet meta.bin of plain strings ({type(error).__name__}); "
                            "it is not loaded, since it could run code. Delete it, or put a words.txt "
                            "(<wnid><tab><words> lines) beside it") from None
        return {w: wnid_to_classes[w][0] for w in wanted if w in wnid_to_classes}
    return {}


def _class_names(layout_folder: Path, classes: list[str]) -> list[str]:
    if all(c in IMAGENETTE_WORDS for c in classes):
        return [IMAGENETTE_WORDS[c] for c in classes]
    if all(re.fullmatch(r"n\d{8}", c) for c in classes) or synset_file(layout_folder) is not None:
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


# --------------------------------------------------------------------------- your own images

# ``user_split``: the share of each class's images that goes to val, and the seed that picks them
VAL_FRACTION = 0.2
SPLIT_SEED = 0


def _require_images(listing: Listing, split_dir: Path) -> Listing:
    """Refuse a class folder without images: it would be a class the net can never be right on."""
    empty = empty_classes(listing)
    if empty:
        shown = ", ".join(str(split_dir / c) for c in empty[:5]) + (" ..." if len(empty) > 5 else "")
        raise DataError(f"{len(empty)} class folder(s) hold no images ({', '.join(IMAGE_EXTENSIONS)}): {shown}; "
                        "add images to each or remove the empty folders")
    return listing


def empty_classes(listing: Listing) -> list[str]:
    """The classes of a listing that have no image in it."""
    counts = np.bincount(listing.labels, minlength=len(listing.classes))
    return [c for c, n in zip(listing.classes, counts) if n == 0]


def parse_user_tree(folder: Path, split: str) -> Listing:
    """Your ImageFolder ``train/<class>/`` and ``val/<class>/`` (``parse_image_tree``), every class
    folder holding images; class names from words.txt or LOC_synset_mapping.txt when present."""
    return _require_images(parse_image_tree(folder, split), folder / split)


def split_indices(count: int, cls: str, fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED) -> np.ndarray:
    """Which of a class's ``count`` images (in name order) go to val: ``round(fraction * count)``
    of them, at least one and never all, drawn by ``seed`` and the class's name (so a class keeps
    its split when other classes are added or removed). Sorted."""
    if count < 2:
        raise ValueError(f"class {cls!r} has {count} image(s); splitting it needs at least 2")
    n_val = min(count - 1, max(1, round(fraction * count)))
    rng = np.random.default_rng([seed, zlib.crc32(cls.encode("utf-8"))])
    return np.sort(rng.permutation(count)[:n_val])


def parse_user_split(folder: Path, split: str) -> Listing:
    """One folder of class folders, ``<folder>/<class>/<image>``, split into ``train`` and ``val``
    (``split_indices``: ``VAL_FRACTION`` of each class to val by ``SPLIT_SEED``): deterministic,
    disjoint, and together the whole folder. Both splits number the same classes alike."""
    if split not in ("train", "val"):
        raise DataError(f"{folder} is split into 'train' and 'val', not {split!r}")
    classes = _subfolders(folder)
    if not classes:
        raise DataError(f"{folder} has no class folders; expected {folder}/<class>/<image> (one folder a class), "
                        f"or {folder}/train/<class>/ and {folder}/val/<class>/")
    files, labels, short = [], [], []
    for label, cls in enumerate(classes):
        found = _image_files(folder / cls)
        if len(found) < 2:
            short.append(f"{folder / cls} ({len(found)})")
            continue
        val = np.zeros(len(found), dtype=bool)
        val[split_indices(len(found), cls)] = True
        chosen = [path for path, is_val in zip(found, val) if is_val == (split == "val")]
        files += chosen
        labels += [label] * len(chosen)
    if short:
        raise DataError(f"{len(short)} class folder(s) hold fewer than 2 images, too few to split into train "
                        f"and val: {', '.join(short[:5])}{' ...' if len(short) > 5 else ''}; add images to each "
                        "or remove those folders")
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


# The published md5 of every file of the official cifar-10-batches-py (the same table
# torchvision checks). Unpickling runs code named in the file, so a batch is unpickled
# only after its md5 matches: a folder found in a data root or mirror is not trusted.
CIFAR_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


def _unpickle(path: Path) -> dict:
    """One official CIFAR-10 batch, unpickled only after its published md5 matched."""
    payload = Path(path).read_bytes()
    got, want = hashlib.md5(payload).hexdigest(), CIFAR_BATCH_MD5.get(Path(path).name)
    if got != want:
        raise ChecksumError(
            f"{path}: md5 {got} is not the official {Path(path).name}'s ({want}); it is not unpickled, since "
            "unpickling can run code. Delete the folder and let `python -m replication data prepare cifar10` "
            "extract it again from cifar-10-python.tar.gz (whose sha256 is checked)")
    raw = pickle.loads(payload, encoding="bytes")
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
    "user_tree": parse_user_tree,
    "user_split": parse_user_split,
}

# files that must exist for an extracted folder to be trusted
_REQUIRED = {
    "cifar_batches": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
    "tiny_imagenet": ["wnids.txt", "train", "val/val_annotations.txt", "val/images"],
}


def _layout_problem(spec: DatasetSpec, variant: Variant, folder: Path) -> str | None:
    """Why ``folder`` does not hold this variant, or None when it looks right."""
    if spec.folder is not None:  # your own images: registry.folder_spec checked the folder's shape
        return None
    required = _REQUIRED.get(spec.layout) or ["train", spec.held_out()]
    missing = [name for name in required if not (folder / name).exists()]
    if spec.layout == "image_tree" and spec.env_var and missing == ["train"]:
        missing = []  # an ImageNet folder with only val/ is still useful
    if missing:
        return f"{folder} lacks {', '.join(missing)}"
    if variant.native_size and spec.layout != "cifar_batches":
        sample = _first_image(folder, spec)
        if sample is not None:
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
