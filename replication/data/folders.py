"""Your own images (``folder:PATH``): what a folder holds, and whether every image of it is usable.

A folder of your own images has no registered counts to be checked against; instead
``describe_folder`` reports what it holds (each split's images and classes, where the class
names come from, which sizes are decoded) and ``check_folder`` checks that it can be trained
on: both splits have images, they have the same classes, every class has images in each, and
every image decodes (greyscale, CMYK and palette images are converted to RGB, as when the
decode-once cache is built). The layouts are ``layouts.parse_user_tree`` (ImageFolder
``train/`` and ``val/``) and ``layouts.parse_user_split`` (one folder of class folders,
split by ``layouts.SPLIT_SEED``, ``layouts.VAL_FRACTION`` of each class to val).
"""

from __future__ import annotations

import multiprocessing as mp
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from replication.data.cache import _cache_files, _default_workers, _load_cache, _read_meta, folder_fingerprint
from replication.data.layouts import (
    IMAGE_EXTENSIONS,
    LAYOUTS,
    SPLIT_SEED,
    VAL_FRACTION,
    Listing,
    _image_files,
    _subfolders,
    empty_classes,
    parse_image_tree,
    synset_file,
)
from replication.data.registry import DataError, DatasetSpec, _root, get_spec


@dataclass
class FolderSummary:
    """What ``data list folder:PATH`` shows: the layout, each split's listing, names and caches."""

    spec: DatasetSpec
    layout: str                          # in words
    listings: dict[str, Listing] = field(default_factory=dict)  # own split name -> listing
    problems: list[str] = field(default_factory=list)            # why a split could not be listed
    names_from: Path | None = None       # words.txt / LOC_synset_mapping.txt, or None: folder names
    fingerprint: str | None = None       # the runs' data_fingerprint (None when a split is unusable)
    cached: list[str] = field(default_factory=list)  # "128px (train+val)"


def layout_words(spec: DatasetSpec) -> str:
    """How the folder is read, in words (for ``data list`` and messages)."""
    if spec.layout == "user_split":
        return (f"one folder of class folders, split by seed {SPLIT_SEED}: {VAL_FRACTION:.0%} of each "
                "class's images (at least one) to val, the rest to train")
    return f"train/<class>/ and {spec.held_out()}/<class>/ (ImageFolder)"


def _own_splits(spec: DatasetSpec) -> list[str]:
    return [spec.splits["train"], spec.held_out()]


def _cached(root: Path, spec: DatasetSpec, fingerprint: str, rehash: bool = False) -> list[str]:
    """The decoded caches of these contents, "128px (train+val)"; ``rehash`` checks each file's sha256."""
    variant = spec.variants[0]

    def files(split: str, size: int) -> dict[str, Path]:
        return _cache_files(root, variant, split, size, fingerprint)

    found: dict[int, list[str]] = {}
    for meta in sorted(files("train", 1)["meta"].parent.glob("*px.json")):
        match = re.fullmatch(r"(\w+)-(\d+)px\.json", meta.name)
        if not match:
            continue
        split, size = match.group(1), int(match.group(2))
        complete = (_load_cache(spec, variant, split, files(split, size)) if rehash
                    else _read_meta(files(split, size))) is not None
        if complete:
            found.setdefault(size, []).append(split)
    return [f"{size}px ({'+'.join(splits)})" for size, splits in sorted(found.items())]


def describe_folder(name: str, root: str | Path | None = None) -> FolderSummary:
    """The real counts and classes of ``folder:PATH`` (raises DataError when the folder is missing)."""
    spec = get_spec(name)
    if spec.folder is None:
        raise DataError(f"{name!r} is a registered dataset, not a folder of your own (folder:PATH)")
    summary = FolderSummary(spec, layout_words(spec), names_from=synset_file(spec.folder))
    for own in _own_splits(spec):
        try:
            summary.listings[own] = spec_listing(spec, own)
        except DataError as error:
            summary.problems.append(str(error))
    if not summary.problems:
        summary.fingerprint = folder_fingerprint(spec, spec.folder)
        summary.cached = _cached(_root(root), spec, summary.fingerprint)
    return summary


def spec_listing(spec: DatasetSpec, own: str) -> Listing:
    """One split of your folder as training reads it (the layout's checks included)."""
    return LAYOUTS[spec.layout](spec.folder, own)


def class_counts(listing: Listing) -> list[int]:
    return np.bincount(listing.labels, minlength=len(listing.classes)).tolist()


# --------------------------------------------------------------------------- verify


def _unreadable(paths: list[str]) -> list[tuple[str, str]]:
    """(path, why) for each file PIL cannot decode to RGB (a full decode, not just the header)."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.convert("RGB").load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            bad.append((path, f"{type(error).__name__}: {error}"))
    return bad


def unreadable_images(files: list[Path], progress: bool = True, workers: int | None = None,
                      desc: str = "decode") -> list[tuple[str, str]]:
    """Every file of ``files`` that does not decode, with the reason (in a process pool when many)."""
    names = [str(p) for p in files]
    chunk = 256
    jobs = [names[i:i + chunk] for i in range(0, len(names), chunk)]
    workers = workers or _default_workers()
    bad: list[tuple[str, str]] = []
    with tqdm(total=len(names), desc=desc, unit="img", disable=not progress) as bar:
        if workers > 1 and len(jobs) > 4:
            method = "fork" if "fork" in mp.get_all_start_methods() else None
            with mp.get_context(method).Pool(workers) as pool:
                for job, found in zip(jobs, pool.imap(_unreadable, jobs)):
                    bad += found
                    bar.update(len(job))
        else:
            for job in jobs:
                bad += _unreadable(job)
                bar.update(len(job))
    return bad


def _raw_listing(spec: DatasetSpec, own: str) -> Listing:
    """A split's listing without the layout's refusal of empty classes (verify reports them all)."""
    if spec.layout == "user_tree":
        return parse_image_tree(spec.folder, own)
    classes = _subfolders(spec.folder)
    files, labels = [], []
    for label, cls in enumerate(classes):
        found = _image_files(spec.folder / cls)
        files += found
        labels += [label] * len(found)
    return Listing(np.asarray(labels, dtype=np.int64), classes, list(classes), files=files)


def _listed(own: str, listing: Listing, where: Path) -> tuple[bool, str]:
    """Does this part of the folder hold images, in every class folder?"""
    if not len(listing):
        return False, (f"{where} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders <class>/<image>; "
                       "put each class's images in a folder of its own there")
    line = f"{own}: {len(listing):,} images in {len(listing.classes)} classes"
    empty = empty_classes(listing)
    if not empty:
        return True, line + " OK"
    shown = ", ".join(str(where / c) for c in empty[:5]) + (" ..." if len(empty) > 5 else "")
    return False, f"{line}; class folders without images: {shown} (add images or remove them)"


def _classes_agree(train: Listing, held: Listing, held_name: str) -> tuple[bool, str]:
    only_train = sorted(set(train.classes) - set(held.classes))
    only_held = sorted(set(held.classes) - set(train.classes))
    if not only_train and not only_held:
        return True, f"classes agree between train and {held_name} OK"
    sides = [f"{len(only)} only in {where} ({', '.join(only[:5])}{' ...' if len(only) > 5 else ''})"
             for only, where in ((only_train, "train"), (only_held, held_name)) if only]
    return False, f"classes differ: {'; '.join(sides)}; give both splits the same class folders"


def _seeded_split(spec: DatasetSpec) -> list[tuple[bool, str]]:
    results = []
    for own in _own_splits(spec):
        try:
            listing = spec_listing(spec, own)
            line = f"{own} (seeded split): {len(listing):,} images in {len(listing.classes)} classes OK"
            results.append((True, line))
        except DataError as error:
            results.append((False, f"{own} (seeded split): {error}"))
    return results


def check_folder(name: str, root: str | Path | None = None, progress: bool = True,
                 workers: int | None = None) -> list[tuple[bool, str]]:
    """(ok, line) for each check of ``folder:PATH``: images in each split, the same classes in both,
    images in every class folder, every image decodes, the decoded caches of its contents intact."""
    spec = get_spec(name)
    if spec.folder is None:
        raise DataError(f"{name!r} is a registered dataset, not a folder of your own (folder:PATH)")
    results: list[tuple[bool, str]] = [(True, f"layout: {layout_words(spec)}")]
    tree = spec.layout == "user_tree"
    parts = {own: spec.folder / own for own in _own_splits(spec)} if tree else {"the folder": spec.folder}
    raw: dict[str, Listing] = {}
    for own, where in parts.items():
        try:
            raw[own] = _raw_listing(spec, own)
        except (DataError, OSError) as error:
            results.append((False, f"{own}: {error}"))
            continue
        results.append(_listed(own, raw[own], where))
    if tree and len(raw) == 2:
        results.append(_classes_agree(*(raw[own] for own in _own_splits(spec)), spec.held_out()))
    if not tree and len(raw.get("the folder", ())):
        results += _seeded_split(spec)
    files = [path for listing in raw.values() for path in listing.files or []]
    bad = unreadable_images(files, progress, workers, desc=f"decode {spec.folder.name}")
    results += [(False, f"cannot decode {path} ({why}); delete or replace it") for path, why in bad]
    if files and not bad:
        results.append((True, f"all {len(files):,} images decode OK"))
    if all(ok for ok, _ in results):
        fingerprint = folder_fingerprint(spec, spec.folder)
        results += [(True, f"decoded cache {size} of these contents OK")
                    for size in _cached(_root(root), spec, fingerprint, rehash=True)]
    return results
